"""The peer wire protocol: handshake and length-prefixed messages.

Specs: BEP 3 §peer protocol (handshake, keep-alive, choke … cancel), BEP 5 §BitTorrent protocol
extension (``port``), BEP 6 §Fast Extension (``suggest_piece`` … ``allowed_fast``), BEP 10
§extension protocol (``extended``), BEP 52 §peer protocol (``hash_request``, ``hashes``,
``hash_reject``, the v2 upgrade bit).

BEP 3: "The handshake starts with character ninteen (decimal) followed by the string
'BitTorrent protocol'. [...] After the fixed headers come eight reserved bytes [...] Next comes
the 20 byte sha1 hash of the bencoded form of the info value from the metainfo file. [...] After
the download hash comes the 20-byte peer id". "All later integers sent in the protocol are
encoded as four bytes big-endian." "messages [...] take the form of length prefix. The length
prefix is a four byte big-endian value. A length prefix of zero is a keep-alive message".

:data:`PeerMessage` is one schema for every message: its name is in ``type`` and its fields sit
flat beside it; the id -> body switch is the shared :class:`~p2pkit.schema.MessageTable`
shape. Strict parsing rejects unknown message ids; :data:`PeerMessageLenient` (for dissection)
returns them as ``type="unknown"`` with ``id``, raw ``payload`` and a Deviation.

A request libtorrent 2.0.8 sent (tests/data/captures/bt-02…):

>>> msg = PeerMessage.parse(bytes.fromhex("0000000d06" "00000022" "00000000" "00004000"))
>>> msg.type, msg.index, msg.begin, msg.length
('request', 34, 0, 16384)
>>> PeerMessage.build(dict(type="have", index=3)).hex()
'000000050400000003'

A handshake, as libtorrent 2.0.8 sent it (tests/data/captures/bt-02…):

>>> hs = Handshake.parse(bytes.fromhex(
...     "13426974546f7272656e742070726f746f636f6c0000000000100005"
...     "8e3f4515b630cdb09dfc315577611036fc7ac773") + b"-LT2080-cQtjXnhSGAbC")
>>> hs.reserved.extension_protocol, hs.reserved.fast, hs.reserved.dht, hs.reserved.v2_upgrade
(True, True, True, False)
>>> hs.info_hash.hex()
'8e3f4515b630cdb09dfc315577611036fc7ac773'
>>> Handshake.build(hs)[20:28].hex()
'0000000000100005'

Strict parsing names what is wrong and where:

>>> PeerMessage.parse(bytes.fromhex("0000001310" "00000003" "00004000" "00004000" "000000000000"))
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: bittorrent, field reject_request, offset 17: 6 bytes after the fields of a reject_request message
>>> PeerMessage.parse(bytes.fromhex("0000000163"))
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: bittorrent, field type, offset 4: unknown message id 99
>>> from p2pkit.deviations import deviations_of
>>> unknown = PeerMessageLenient.parse(bytes.fromhex("0000000263ff"))
>>> unknown == dict(type="unknown", id=99, payload=bytes([255])), len(deviations_of(unknown))
(True, 1)
>>> str(deviations_of(unknown)[0])
'offset 4: unknown message id 99 [bittorrent/message/unknown-id; BEP 3 §peer messages, MAY]'

Fixed-size messages take a fast path derived from the same schema objects (a
:class:`~p2pkit.schema.FixedLayout` per message body); ``parse_stream`` always takes the
generic construct path, and the tests compare both.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from construct import (
    Bytes,
    Const,
    Container,
    GreedyBytes,
    GreedyRange,
    Int8ub,
    Int16ub,
    Int32ub,
    Int64ub,
    Prefixed,
    Struct,
)

from p2pkit.schema import FixedLayout, MessageTable, NamedBits, Schema

__all__ = [
    "MESSAGE_IDS",
    "MESSAGES",
    "MESSAGE_TABLE",
    "PROTOCOL",
    "PSTR",
    "Handshake",
    "InfoHash",
    "NamedBits",
    "PeerId",
    "PeerMessage",
    "PeerMessageLenient",
    "Reserved",
]

PROTOCOL = "bittorrent"
#: BEP 3: the protocol string that follows the length byte 19.
PSTR = b"BitTorrent protocol"


# fmt: off
PeerId = Bytes(20)
#: BEP 3 (v1: SHA-1 of the info dictionary); BEP 52: "the 32-byte SHA-256 [...] truncated to 20".
InfoHash = Bytes(20)
#: BEP 52: a SHA-256 node of a file's merkle tree.
MerkleHash = Bytes(32)

#: The eight reserved bytes as one big-endian integer with the bits the BEPs name.
Reserved = NamedBits(
    Int64ub,
    extension_protocol=0x10 << 16,  # BEP 10: "reserved_byte[5] & 0x10"
    v2_upgrade=0x10,                # BEP 52: "the 4th most significant bit in the last byte"
    fast=0x04,                      # BEP 6: "reserved[7] |= 0x04"
    dht=0x01,                       # BEP 5: "the last bit in the 8 byte reserved flags"
)

HandshakeBody = Struct(
    Const(19, Int8ub),
    Const(PSTR),
    "reserved" / Reserved,
    "info_hash" / InfoHash,
    "peer_id" / PeerId,
)

#: choke, unchoke, interested, not_interested, have_all, have_none: "no payload".
Empty = Struct()
#: BEP 3: "'have' messages have a single number, the index which that downloader just
#: completed and checked the hash of."
Have = Struct("index" / Int32ub)
#: BEP 3: "'bitfield' [...] is a bitfield with each index that downloader has sent set to one".
Bitfield = Struct("bitfield" / GreedyBytes)
#: BEP 3: "'request' messages contain an index, begin, and length."
Request = Struct("index" / Int32ub, "begin" / Int32ub, "length" / Int32ub)
#: BEP 3: "'piece' messages contain an index, begin, and piece."
Piece = Struct("index" / Int32ub, "begin" / Int32ub, "piece" / GreedyBytes)
#: BEP 3: "'cancel' messages have the same payload as request messages."
Cancel = Request
#: BEP 5: "a two byte payload containing the UDP port of the DHT node".
Port = Struct("port" / Int16ub)
#: BEP 6: "Suggest Piece: <len=0x0005><op=0x0D><index>".
SuggestPiece = Struct("index" / Int32ub)
#: BEP 6: "Reject Request: <len=0x000D><op=0x10><index><begin><length>".
RejectRequest = Request
#: BEP 6: "Allowed Fast: <len=0x0005><op=0x11><index>".
AllowedFast = Struct("index" / Int32ub)
#: BEP 10: "extended message ID. 0 = handshake, >0 = extended message as specified by the
#: handshake", followed by the extension's payload (see p2pkit.bittorrent.wire.extensions).
Extended = Struct("extended_id" / Int8ub, "payload" / GreedyBytes)
#: BEP 52: "'hash request' messages contain a pieces root, base layer, index, length, and
#: proof layers."
HashRequest = Struct(
    "pieces_root" / MerkleHash,
    "base_layer" / Int32ub,
    "index" / Int32ub,
    "length" / Int32ub,
    "proof_layers" / Int32ub,
)
#: BEP 52: "'hashes' messages contain a pieces root, base layer, index, length, proof layers,
#: and hashes."
Hashes = Struct(*HashRequest.subcons, "hashes" / GreedyRange(MerkleHash))
#: BEP 52: "'hash reject' messages have the same payload as 'hash request' messages."
HashReject = HashRequest

#: Message id -> (name, body). The one table every other view of the messages derives from.
MESSAGES: dict[int, tuple[str, Struct]] = {
    0: ("choke", Empty),
    1: ("unchoke", Empty),
    2: ("interested", Empty),
    3: ("not_interested", Empty),
    4: ("have", Have),
    5: ("bitfield", Bitfield),
    6: ("request", Request),
    7: ("piece", Piece),
    8: ("cancel", Cancel),
    9: ("port", Port),
    0x0D: ("suggest_piece", SuggestPiece),
    0x0E: ("have_all", Empty),
    0x0F: ("have_none", Empty),
    0x10: ("reject_request", RejectRequest),
    0x11: ("allowed_fast", AllowedFast),
    20: ("extended", Extended),
    21: ("hash_request", HashRequest),
    22: ("hashes", Hashes),
    23: ("hash_reject", HashReject),
}
# fmt: on

#: The messages as a :class:`~p2pkit.schema.MessageTable`: id/name maps, strict and lenient
#: switches. BEP 3 lists the ids it knows and no rule for others; a lenient parse notes one.
MESSAGE_TABLE = MessageTable(MESSAGES, rule="bittorrent/message/unknown-id",
                             spec="BEP 3 §peer messages", level="MAY")
#: Message name -> id (``MESSAGE_IDS["request"] == 6``).
MESSAGE_IDS: dict[str, int] = MESSAGE_TABLE.ids


def _fixed_messages() -> dict[str, tuple[int, FixedLayout]]:
    """Messages whose body is all fixed-size fields, with their derived layouts."""
    fixed = {}
    for mid, (name, body) in MESSAGES.items():
        try:
            fixed[name] = (mid, FixedLayout(body))
        except TypeError:
            continue
    return fixed


def _tail_messages() -> dict[str, tuple[int, FixedLayout, str]]:
    """Messages of fixed-size fields followed by one ``GreedyBytes`` (piece, bitfield …)."""
    tails = {}
    for mid, (name, body) in MESSAGES.items():
        if not body.subcons:
            continue
        *head, last = body.subcons
        if getattr(last, "subcon", None) is GreedyBytes:
            tails[name] = (mid, FixedLayout(Struct(*head)), last.name)
    return tails


_LENGTH = struct.Struct(">I")


def _fast_paths() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes | None]]:
    """``fast_parse``/``fast_build`` for :data:`PeerMessage`, derived from :data:`MESSAGES`.

    A fixed-size message is recognised by its first five bytes (length prefix and id, both
    constant); a message ending in raw bytes (``piece`` …) by its id, its head fields taking the
    fixed path. Anything else returns ``None`` and the generic construct parser takes over.
    """
    parsers: dict[bytes, Callable[[bytes], Any]] = {}
    builders: dict[str, Callable[[Any], bytes | None]] = {}
    for name, (mid, layout) in _fixed_messages().items():
        prefix = _LENGTH.pack(1 + layout.size) + bytes([mid])
        parsers[prefix] = layout.unpacker(offset=5, head=[("type", name)])
        builders[name] = layout.packer(prefix=prefix)
    tail_parsers: dict[int, Callable[[bytes], Any]] = {}
    for name, (mid, layout, tail) in _tail_messages().items():
        tail_parsers[mid] = _tail_parser(name, layout, tail)
        builders[name] = _tail_builder(mid, layout, tail)
    keep_alive = b"\x00\x00\x00\x00"
    builders["keep_alive"] = lambda obj: keep_alive
    get_parser = parsers.get
    get_tail_parser = tail_parsers.get
    get_builder = builders.get

    def fast_parse(data: bytes) -> Any:
        try:
            parse = get_parser(data[:5])
            if parse is not None:
                return parse(data)
            if len(data) > 4:
                parse = get_tail_parser(data[4])
                if parse is not None:
                    return parse(data)
            elif data == keep_alive:
                return Container(type="keep_alive")
        except (TypeError, struct.error):  # not bytes: the generic parser reports it
            pass
        return None

    def fast_build(obj: Any) -> bytes | None:
        try:
            build = get_builder(obj["type"])
        except (KeyError, TypeError, IndexError):
            return None
        return None if build is None else build(obj)

    return fast_parse, fast_build


def _tail_parser(name: str, layout: FixedLayout, tail: str) -> Callable[[bytes], Any]:
    parse_head = layout.unpacker(offset=5, head=[("type", name)])
    start = 5 + layout.size
    unpack_length = _LENGTH.unpack_from

    def parse(data: bytes) -> Any:
        (length,) = unpack_length(data)
        end = 4 + length
        if end < start or len(data) < end:
            return None
        message = parse_head(data)
        message[tail] = data[start:end]
        return message

    return parse


def _tail_builder(mid: int, layout: FixedLayout, tail: str) -> Callable[[Any], bytes | None]:
    build_head = layout.packer(prefix=bytes([mid]))
    pack_length = _LENGTH.pack

    def build(obj: Any) -> bytes | None:
        raw = obj.get(tail) if isinstance(obj, Mapping) else None
        if type(raw) is not bytes:
            return None
        head = build_head(obj)
        if head is None:
            return None
        return pack_length(len(head) + len(raw)) + head + raw

    return build


def _peer_message(strict: bool) -> Schema:
    # BEP 3: "A length prefix of zero is a keep-alive message"; then the id byte and the body.
    switch = MESSAGE_TABLE.switch(Int8ub, strict=strict, empty="keep_alive")
    schema = Schema(Prefixed(Int32ub, switch), protocol=PROTOCOL, name="peer_message")
    schema.fast_parse, schema.fast_build = _fast_paths()
    return schema


#: BEP 3 §handshake (see the module docstring for real bytes).
Handshake = Schema(HandshakeBody, protocol=PROTOCOL, name="handshake")
_handshake_layout = FixedLayout(HandshakeBody)
Handshake.fast_parse = _handshake_layout.unpacker()
Handshake.fast_build = _handshake_layout.packer()

#: BEP 3 §peer messages, strict (inside a peer): an unknown message id is a ParseError.
PeerMessage = _peer_message(strict=True)
#: The same messages for dissection: an unknown id parses as ``type="unknown"``.
PeerMessageLenient = _peer_message(strict=False)
