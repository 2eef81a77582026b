"""Payloads of extended messages: BEP 10 handshake, BEP 9 ut_metadata, BEP 11 ut_pex.

BEP 10 §handshake message: "The payload of the handshake message is a bencoded dictionary. All
items in the dictionary are optional. Any unknown names should be ignored by the client."
Its ``m`` item "maps names of extensions to an extended message ID for each extension
message. [...] The extension message IDs are the IDs used to send the extension messages to the
peer sending this handshake." So an ``extended`` message (``p2pkit.bittorrent.wire.messages``) carries an
``extended_id`` whose meaning depends on the handshake; once the name is known,
:func:`decode_extended` decodes the payload:

>>> handshake = decode_extended("handshake", b"d1:md11:ut_metadatai2e6:ut_pexi1ee"
...     b"1:pi6882e1:v6:p2pkit6:yourip4:\\x7f\\x00\\x00\\x02e")
>>> dict(handshake.m), handshake.p, handshake.v, handshake.yourip
({'ut_metadata': 2, 'ut_pex': 1}, 6882, 'p2pkit', IPv4Address('127.0.0.2'))
>>> message_names(handshake)
{2: 'ut_metadata', 1: 'ut_pex'}

Real bytes from libtorrent 2.0.8 (tests/data/captures/bt-02…): a BEP 11 message and a BEP 9
request:

>>> pex = decode_extended("ut_pex", bytes.fromhex(
...     "64353a616464656431323a7f0000021ae17f0000041ae3373a61646465642e66323a0a08"
...     "363a616464656436303a383a61646465643"
...     "62e66303a373a64726f70706564303a383a64726f7070656436303a65"))
>>> [(str(peer.ip), peer.port) for peer in pex.added]
[('127.0.0.2', 6881), ('127.0.0.4', 6883)]
>>> [(flags.seed, flags.outgoing) for flags in pex["added.f"]]
[(True, False), (False, False)]
>>> dict(decode_extended("ut_metadata", b"d8:msg_typei0e5:piecei0ee"))
{'msg_type': 'request', 'piece': 0}
>>> encode_extended("ut_metadata", dict(msg_type="data", piece=0, total_size=3, metadata=b"abc"))
b'd8:msg_typei1e5:piecei0e10:total_sizei3eeabc'

Strict schemas (inside a peer) need canonical bencoding; the ``…Lenient`` variants accept
what real clients send (µTorrent's handshake has unsorted keys) for dissection.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import construct
from construct import Container, GreedyBytes, GreedyRange, Int8ub, Int32ub, Struct

from p2pkit.addresses import (
    AnyIPAddress,
    CompactPeer,
    CompactPeer6,
    IPv4Address,
    IPv6Address,
)
from p2pkit.bencode import Bencoded, BencodedLenient
from p2pkit.bittorrent.wire.messages import PROTOCOL
from p2pkit.errors import BuildError, ParseError
from p2pkit.schema import NamedBits, Schema

__all__ = [
    "EXTENSION_MESSAGES",
    "EXTENSION_MESSAGES_LENIENT",
    "CompactPeer",
    "CompactPeer6",
    "ExtendedHandshake",
    "ExtendedHandshakeLenient",
    "LtDonthave",
    "PexFlags",
    "UploadOnly",
    "UtMetadata",
    "UtMetadataLenient",
    "UtPex",
    "UtPexLenient",
    "decode_extended",
    "encode_extended",
    "message_names",
]


# fmt: off
# IPv4/IPv6 addresses and the BEP 11 "contacts in IPv4/IPv6 compact format" (CompactPeer,
# CompactPeer6) are the shared layouts of p2pkit.addresses.
IPv4 = IPv4Address
IPv6 = IPv6Address
#: BEP 11: "bit-flags, 1 byte per added IPv4 peer"; other bits "are reserved for future use".
PexFlags = NamedBits(
    Int8ub,
    encryption=0x01,  # "prefers encryption, as indicated by e field in extension handshake"
    seed=0x02,        # "seed/upload_only"
    utp=0x04,         # "supports uTP"
    holepunch=0x08,   # "peer indicated ut_holepunch support in extension handshake"
    outgoing=0x10,    # "outgoing connection, peer is reachable"
)
# fmt: on


class _Integer:
    """A bencoded integer item."""

    def decode(self, value: Any) -> int:
        if type(value) is not int:
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        return value

    def encode(self, obj: Any) -> int:
        return int(obj)


class _Text:
    """A bencoded string that holds UTF-8 text (BEP 10 ``v``); other bytes stay bytes."""

    def decode(self, value: Any) -> str | bytes:
        if type(value) is not bytes:
            raise ValueError(f"expected a string, got {type(value).__name__}")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value

    def encode(self, obj: Any) -> Any:
        return obj


class _Packed:
    """A bencoded string holding fixed binary records, parsed whole by a construct."""

    def __init__(self, con: construct.Construct) -> None:
        self.con = con

    def decode(self, value: Any) -> Any:
        if type(value) is not bytes:
            raise ValueError(f"expected a string, got {type(value).__name__}")
        stream = io.BytesIO(value)
        obj = self.con.parse_stream(stream)
        if stream.tell() != len(value):
            raise ValueError(f"{len(value) - stream.tell()} bytes left over after the records")
        return obj

    def encode(self, obj: Any) -> bytes:
        return self.con.build(obj)


class _Names:
    """BEP 10 ``m``: extension name -> extended message id (0 = disabled)."""

    def decode(self, value: Any) -> Container:
        if type(value) is not dict:
            raise ValueError(f"expected a dictionary, got {type(value).__name__}")
        names = Container()
        for key, mid in value.items():
            if type(mid) is not int:
                raise ValueError(f"id of {_text_key(key)!r} is not an integer")
            names[_text_key(key)] = mid
        return names

    def encode(self, obj: Any) -> dict:
        return {key: int(mid) for key, mid in obj.items() if not str(key).startswith("_")}


def _text_key(key: bytes) -> str | bytes:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key


#: Key under which a lenient parse lists the items it kept unconverted (hidden from ``==``).
UNCONVERTED = "_unconverted"


class DictItems(construct.Adapter):
    """A bencoded dictionary whose known items are converted; unknown items are kept as is.

    Keys become ``str`` (UTF-8). Strict mode raises on an item of the wrong form; lenient mode
    keeps such an item's bencoded value unconverted and lists its key in ``_unconverted``.
    """

    def __init__(self, subcon: construct.Construct, items: Mapping[str, Any], *,
                 strict: bool) -> None:
        super().__init__(subcon)
        self.items = dict(items)
        self.strict = strict

    def _decode(self, obj: Any, context: Any, path: str) -> Container:
        if type(obj) is not dict:
            raise construct.ExplicitError(f"expected a dictionary, got {type(obj).__name__}",
                                          path=path)
        result = Container()
        unconverted = []
        for raw_key, value in obj.items():
            key = _text_key(raw_key)
            codec = self.items.get(key)
            if codec is not None:
                try:
                    value = codec.decode(value)
                except (ValueError, construct.ConstructError, ParseError) as e:
                    if self.strict:
                        raise construct.ExplicitError(f"{key}: {e}", path=path) from None
                    unconverted.append(key)
            result[key] = value
        if unconverted:
            result[UNCONVERTED] = unconverted
        return result

    def _encode(self, obj: Any, context: Any, path: str) -> dict:
        out = {}
        unconverted = obj.get(UNCONVERTED, ())
        for key, value in obj.items():
            if isinstance(key, str) and key.startswith("_"):
                continue
            codec = self.items.get(key)
            out[key] = value if codec is None or key in unconverted else codec.encode(value)
        return out


_INTEGER = _Integer()
_TEXT = _Text()

#: BEP 10 §handshake message items (and the widely sent ones BEP 9, BEP 21, libtorrent add).
HANDSHAKE_ITEMS: dict[str, Any] = {
    "m": _Names(),
    "p": _INTEGER,                      # "Local TCP listen port"
    "v": _TEXT,                         # "Client name and version (as a utf-8 string)"
    "yourip": _Packed(AnyIPAddress()),  # "either an IPv4 (4 bytes) or an IPv6 (16 bytes)"
    "ipv6": _Packed(IPv6),              # "compact representation of that address (16 bytes)"
    "ipv4": _Packed(IPv4),              # "compact representation of that address (4 bytes)"
    "reqq": _INTEGER,                   # "the number of outstanding request messages"
    "metadata_size": _INTEGER,          # BEP 9: "the number of bytes of the metadata"
    "upload_only": _INTEGER,            # BEP 21: "set to 1 [...] upload only"
    "complete_ago": _INTEGER,           # libtorrent: seconds since the peer was a seed, -1 never
    "e": _INTEGER,                      # MSE: prefers encryption
}

#: BEP 11 items.
PEX_ITEMS: dict[str, Any] = {
    "added": _Packed(GreedyRange(CompactPeer)),
    "added.f": _Packed(GreedyRange(PexFlags)),
    "dropped": _Packed(GreedyRange(CompactPeer)),
    "added6": _Packed(GreedyRange(CompactPeer6)),
    "added6.f": _Packed(GreedyRange(PexFlags)),
    "dropped6": _Packed(GreedyRange(CompactPeer6)),
}

#: BEP 9: "msg_type [...] 0 for request, 1 for data and 2 for reject".
UT_METADATA_MSG_TYPES = {0: "request", 1: "data", 2: "reject"}


class _MsgType:
    """BEP 9 ``msg_type`` as its name."""

    def decode(self, value: Any) -> str:
        if value not in UT_METADATA_MSG_TYPES or type(value) is not int:
            raise ValueError(f"unknown msg_type {value!r}")
        return UT_METADATA_MSG_TYPES[value]

    def encode(self, obj: Any) -> int:
        if isinstance(obj, int):
            return obj
        return {name: n for n, name in UT_METADATA_MSG_TYPES.items()}[obj]


UT_METADATA_ITEMS: dict[str, Any] = {
    "msg_type": _MsgType(),
    "piece": _INTEGER,
    "total_size": _INTEGER,
}


class MetadataMessage(construct.Adapter):
    """BEP 9: a dictionary, then (``data`` only) the metadata piece itself, flat in one Container.

    BEP 9: "The data message adds another entry to the dictionary, "total_size". [...] the
    metadata piece is appended to the bencoded dictionary, it is not a part of the dictionary."
    """

    def __init__(self, items: construct.Construct, *, strict: bool) -> None:
        super().__init__(Struct("items" / items, "metadata" / GreedyBytes))
        self.strict = strict

    def _decode(self, obj: Any, context: Any, path: str) -> Container:
        message = Container(obj["items"])
        if obj["metadata"] or message.get("msg_type") == "data":
            if self.strict and message.get("msg_type") != "data":
                raise construct.ExplicitError(
                    f"{len(obj['metadata'])} bytes after the dictionary of a "
                    f"{message.get('msg_type')!r} message (only data carries a piece)", path=path)
            message["metadata"] = obj["metadata"]
        return message

    def _encode(self, obj: Any, context: Any, path: str) -> Container:
        items = {key: value for key, value in obj.items() if key != "metadata"}
        return Container(items=items, metadata=obj.get("metadata", b""))


def _bencoded_dict(items: Mapping[str, Any], strict: bool) -> construct.Construct:
    return DictItems(Bencoded if strict else BencodedLenient, items, strict=strict)


# fmt: off
#: BEP 10 §handshake message (extended message id 0).
ExtendedHandshake = Schema(_bencoded_dict(HANDSHAKE_ITEMS, True), protocol=PROTOCOL,
                           name="extended_handshake")
ExtendedHandshakeLenient = Schema(_bencoded_dict(HANDSHAKE_ITEMS, False), protocol=PROTOCOL,
                                  name="extended_handshake")
#: BEP 9 §extension message.
UtMetadata = Schema(MetadataMessage(_bencoded_dict(UT_METADATA_ITEMS, True), strict=True),
                    protocol=PROTOCOL, name="ut_metadata")
UtMetadataLenient = Schema(MetadataMessage(_bencoded_dict(UT_METADATA_ITEMS, False),
                                           strict=False), protocol=PROTOCOL, name="ut_metadata")
#: BEP 11 §"The extension message itself".
UtPex = Schema(_bencoded_dict(PEX_ITEMS, True), protocol=PROTOCOL, name="ut_pex")
UtPexLenient = Schema(_bencoded_dict(PEX_ITEMS, False), protocol=PROTOCOL, name="ut_pex")
#: libtorrent's lt_donthave: the 4-byte index of a piece the peer no longer has.
LtDonthave = Schema(Struct("index" / Int32ub, construct.Terminated), protocol=PROTOCOL,
                    name="lt_donthave")
#: libtorrent's upload_only message (BEP 21 names the state): one byte, 1 = upload only.
UploadOnly = Schema(Struct("upload_only" / Int8ub, construct.Terminated), protocol=PROTOCOL,
                    name="upload_only")
# fmt: on

#: Extension name (as in BEP 10 ``m``; ``handshake`` for id 0) -> strict payload schema.
EXTENSION_MESSAGES: dict[str, Schema] = {
    "handshake": ExtendedHandshake,
    "ut_metadata": UtMetadata,
    "ut_pex": UtPex,
    "lt_donthave": LtDonthave,
    "upload_only": UploadOnly,
}
#: The same for dissection.
EXTENSION_MESSAGES_LENIENT: dict[str, Schema] = {
    "handshake": ExtendedHandshakeLenient,
    "ut_metadata": UtMetadataLenient,
    "ut_pex": UtPexLenient,
    "lt_donthave": LtDonthave,
    "upload_only": UploadOnly,
}


def _schema(name: str, strict: bool, error: type[Exception]) -> Schema:
    table = EXTENSION_MESSAGES if strict else EXTENSION_MESSAGES_LENIENT
    schema = table.get(name)
    if schema is None:
        raise error(f"no schema for extension {name!r} (known: {', '.join(table)})",
                    protocol=PROTOCOL, path=name)
    return schema


def decode_extended(name: str, payload: bytes, *, strict: bool = True) -> Container:
    """Decode an ``extended`` message's payload, given the extension's name.

    ``name`` is ``"handshake"`` for extended id 0, otherwise the name that id maps to in the
    receiving side's handshake ``m`` (see :func:`message_names`). Raises
    :class:`~p2pkit.errors.ParseError` for an unknown name or bad payload.

    >>> decode_extended("lt_donthave", b"\\x00\\x00\\x00\\x07").index
    7
    """
    return _schema(name, strict, ParseError).parse(payload)


def encode_extended(name: str, message: Mapping[str, Any]) -> bytes:
    """The payload of an ``extended`` message for extension ``name`` (see :func:`decode_extended`).

    >>> encode_extended("handshake", {"m": {"ut_pex": 1}, "p": 6881})
    b'd1:md6:ut_pexi1ee1:pi6881ee'
    """
    return _schema(name, True, BuildError).build(message)


def message_names(handshake: Mapping[str, Any]) -> dict[int, str]:
    """Extended message id -> extension name from a decoded handshake's ``m`` (0 = disabled).

    These are the ids to use when sending *to* the peer that sent ``handshake``, and the ids
    that peer receives.
    """
    names = handshake.get("m", {})
    return {mid: name for name, mid in names.items() if isinstance(mid, int) and mid > 0}
