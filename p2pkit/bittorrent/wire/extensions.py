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
what real clients send (µTorrent's handshake has unsorted keys) for dissection. What they
accepted is listed in the value's deviations (:func:`~p2pkit.deviations.deviations_of`); an item
of the wrong type is kept as it was sent, and builds back as it is:

>>> from p2pkit.deviations import deviations_of
>>> odd = decode_extended("handshake", b"d1:pi-1e6:yourip3:abce", strict=False)
>>> odd.yourip, [d.rule for d in deviations_of(odd)]
(b'abc', ['bittorrent/extended/wrong-type'])
>>> ExtendedHandshakeLenient.build(odd)
b'd1:pi-1e6:yourip3:abce'
"""

from __future__ import annotations

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
from p2pkit.bencode import (
    BencodedDict,
    Choice,
    Field,
    Integer,
    MapOf,
    Packed,
    Records,
    Rules,
    Text,
)
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


#: How departures from these declarations are reported (BEP 10: "Any unknown names should be
#: ignored by the client": unknown keys are kept as they are, never reported).
RULES = Rules(spec="BEP 10 §handshake message", malformed="bittorrent/extended/wrong-type",
              missing="bittorrent/extended/missing-key")
PEX_RULES = Rules(spec="BEP 11 §ut_pex", malformed="bittorrent/ut_pex/wrong-type",
                  missing="bittorrent/ut_pex/missing-key")
METADATA_RULES = Rules(spec="BEP 9 §extension message",
                       malformed="bittorrent/ut_metadata/wrong-type",
                       missing="bittorrent/ut_metadata/missing-key")

# fmt: off
#: BEP 10 §handshake message items (and the widely sent ones BEP 9, BEP 21, libtorrent add).
HandshakeItems = BencodedDict([
    # "Dictionary of supported extension messages which maps names of extensions to an
    # extended message ID for each extension message" (0 = disabled).
    Field("m", MapOf(Integer(), keys="text")),
    Field("p", Integer()),                            # "Local TCP listen port"
    Field("v", Text()),                               # "Client name and version (as a utf-8
                                                      # string)"
    Field("yourip", Packed(AnyIPAddress(), "4 or 16 address bytes")),  # "either an IPv4 (4
                                                      # bytes) or an IPv6 (16 bytes)"
    Field("ipv6", Packed(IPv6, "16 address bytes")),  # "compact representation of that address"
    Field("ipv4", Packed(IPv4, "4 address bytes")),   # "compact representation of that address"
    Field("reqq", Integer()),                         # "the number of outstanding request
                                                      # messages"
    Field("metadata_size", Integer(), spec="BEP 9"),  # "the number of bytes of the metadata"
    Field("upload_only", Integer(), spec="BEP 21"),   # "set to 1 [...] upload only"
    Field("complete_ago", Integer()),                 # libtorrent: seconds since it was a seed,
                                                      # -1 never
    Field("e", Integer()),                            # MSE: prefers encryption
], unknown="keep", rules=RULES, whole=True, protocol=PROTOCOL, name="extended_handshake")

#: BEP 11 items: "added", "added.f", "dropped" and their IPv6 twins.
PexItems = BencodedDict([
    Field("added", Records(CompactPeer, "compact peers")),
    Field("added.f", Packed(GreedyRange(PexFlags), "1 flag byte per added peer")),
    Field("dropped", Records(CompactPeer, "compact peers")),
    Field("added6", Records(CompactPeer6, "compact peers")),
    Field("added6.f", Packed(GreedyRange(PexFlags), "1 flag byte per added peer")),
    Field("dropped6", Records(CompactPeer6, "compact peers")),
], unknown="keep", rules=PEX_RULES, whole=True, protocol=PROTOCOL, name="ut_pex")

#: BEP 9: "msg_type [...] 0 for request, 1 for data and 2 for reject".
UT_METADATA_MSG_TYPES = {0: "request", 1: "data", 2: "reject"}

MetadataItems = BencodedDict([
    Field("msg_type", Choice(UT_METADATA_MSG_TYPES)),
    Field("piece", Integer()),       # "the piece index"
    Field("total_size", Integer()),  # data: "the length of the metadata"
], unknown="keep", rules=METADATA_RULES, protocol=PROTOCOL, name="ut_metadata")
# fmt: on

#: The declared items, by name (kept for callers of the former tables).
HANDSHAKE_ITEMS = {f.attr: f.type for f in HandshakeItems.fields}
PEX_ITEMS = {f.attr: f.type for f in PexItems.fields}
UT_METADATA_ITEMS = {f.attr: f.type for f in MetadataItems.fields}


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


# fmt: off
#: BEP 10 §handshake message (extended message id 0).
ExtendedHandshake = Schema(HandshakeItems, protocol=PROTOCOL, name="extended_handshake")
ExtendedHandshakeLenient = Schema(HandshakeItems.lenient(), protocol=PROTOCOL,
                                  name="extended_handshake")
#: BEP 9 §extension message.
UtMetadata = Schema(MetadataMessage(MetadataItems, strict=True), protocol=PROTOCOL,
                    name="ut_metadata")
UtMetadataLenient = Schema(MetadataMessage(MetadataItems.lenient(), strict=False),
                           protocol=PROTOCOL, name="ut_metadata")
#: BEP 11 §"The extension message itself".
UtPex = Schema(PexItems, protocol=PROTOCOL, name="ut_pex")
UtPexLenient = Schema(PexItems.lenient(), protocol=PROTOCOL, name="ut_pex")
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
