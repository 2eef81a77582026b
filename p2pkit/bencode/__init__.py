"""Bencoding, the serialisation of BitTorrent (BEP 3 §bencoding) and of KRPC (BEP 5).

Two modules: :mod:`p2pkit.bencode.codec` decodes and encodes values (strict inside peers,
lenient with :class:`~p2pkit.deviations.Deviation` records for dissection), and
:mod:`p2pkit.bencode.schema` holds :class:`BencodedDict`, the one declarative schema type for
bencoded dictionaries (KRPC messages, BEP 10 handshakes, BEP 9 and BEP 11 payloads, tracker
responses, .torrent files). Their public names are imported here:

>>> decode(b"d3:bar4:spam3:fooi42ee")
{b'bar': b'spam', b'foo': 42}
>>> encode({"foo": 42, "bar": b"spam"})
b'd3:bar4:spam3:fooi42ee'
"""

from __future__ import annotations

from p2pkit.bencode.codec import (
    MAX_DEPTH,
    MAX_INTEGER_DIGITS,
    MAX_LENGTH_DIGITS,
    BencodedValue,
    DecodeResult,
    decode,
    decode_lenient,
    decode_prefix,
    encode,
    top_level_spans,
)
from p2pkit.bencode.schema import (
    ENCODE_ERRORS,
    LENGTH_PREFIX,
    AnyValue,
    Bencoded,
    BencodedConstruct,
    BencodedDict,
    BencodedLenient,
    Choice,
    Context,
    Field,
    Integer,
    ListOf,
    MapOf,
    Mismatch,
    Packed,
    PathStep,
    Records,
    Rules,
    String,
    Text,
    Value,
    bencoded_leaf,
    locate,
    path_label,
    type_name,
)

__all__ = [
    "ENCODE_ERRORS",
    "LENGTH_PREFIX",
    "MAX_DEPTH",
    "MAX_INTEGER_DIGITS",
    "MAX_LENGTH_DIGITS",
    "AnyValue",
    "Bencoded",
    "BencodedConstruct",
    "BencodedDict",
    "BencodedLenient",
    "BencodedValue",
    "Choice",
    "Context",
    "DecodeResult",
    "Field",
    "Integer",
    "ListOf",
    "MapOf",
    "Mismatch",
    "Packed",
    "PathStep",
    "Records",
    "Rules",
    "String",
    "Text",
    "Value",
    "bencoded_leaf",
    "decode",
    "decode_lenient",
    "decode_prefix",
    "encode",
    "locate",
    "path_label",
    "top_level_spans",
    "type_name",
]
