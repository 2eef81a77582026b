"""Kad2 packets over UDP: the Kad header, packed (zlib) packets and every Kad2 opcode.

Source of the layouts (eMule Kad has no written specification; aMule's sources are the
reference): ``src/include/protocol/kad2/Client2Client/UDP.h`` (Kad2 opcodes),
``src/include/protocol/kad/Client2Client/UDP.h`` (Kad 1 opcodes Kad2 still uses: firewall
checks and buddies), ``src/kademlia/net/KademliaUDPListener.cpp`` (what each opcode carries)
and ``src/ClientUDPSocket.cpp`` (the header).

A packet is ``<protocol 1><opcode 1><body>``: protocol ``0xE4`` (``OP_KADEMLIAHEADER``) or
``0xE5`` (``OP_KADEMLIAPACKEDPROT``), whose body after the opcode is a zlib stream
(``CPacket::PackPacket``: packets over 200 bytes are sent compressed). All integers are
little-endian. A Kad id (``CUInt128``) is written as four little-endian 32-bit words, most
significant word first; :data:`KadId` turns it into the 16-byte big-endian number, on which
:func:`p2pkit.kademlia.ids.distance` works directly and which aMule prints as hex.

Inflating is bounded as aMule bounds it (``ClientUDPSocket.cpp``: ``packetLen * 10 + 300``
bytes, "should be enough"); more is a :class:`~p2pkit.errors.LimitExceeded`.

A bootstrap response recorded from aMule 2.3.3 (``tests/data/captures/kad2-amule.pcap``):

>>> m = KadPacket.parse(bytes.fromhex("e409ce805bf184a23f0c9bc520281ed22830" "3e12" "08" "0000"))
>>> str(m.protocol), m.message.opcode, m.message.client_id.hex(), m.message.tcp_port
('kad', 'bootstrap_res', 'f15b80ce0c3fa2842820c59b3028d21e', 4670)
>>> KadPacket.build(m).hex()
'e409ce805bf184a23f0c9bc520281ed228303e12080000'
"""

from __future__ import annotations

import io
import ipaddress
import threading
import zlib

import construct
from construct import (
    Adapter,
    BitsInteger,
    BitStruct,
    Bytes,
    ByteSwapped,
    Flag,
    If,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    Optional,
    PascalString,
    PrefixedArray,
    Struct,
    Switch,
    this,
)

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.kad2.tags import MAX_TAG_VALUE, PROTOCOL, TagList, _length
from p2pkit.kademlia.ids import id_bytes
from p2pkit.schema import MessageTable, Schema

__all__ = ["KAD_ID_BITS", "MAX_SEARCH_DEPTH", "MESSAGES", "OPCODES", "OP_KADEMLIAHEADER",
           "OP_KADEMLIAPACKEDPROT", "PROTOCOL", "Contact", "KadId", "KadPacket",
           "KadPacketLenient", "SearchExpression", "inflate_bound"]

#: Kad ids are 128 bits (``CUInt128``).
KAD_ID_BITS = 128
#: ``OP_KADEMLIAHEADER``: a plain Kad packet.
OP_KADEMLIAHEADER = 0xE4
#: ``OP_KADEMLIAPACKEDPROT``: a Kad packet whose body is zlib-compressed.
OP_KADEMLIAPACKEDPROT = 0xE5
#: ``CreateSearchExpressionTree``: "the max. depth has to match our own limit" (24).
MAX_SEARCH_DEPTH = 24


class _KadIdAdapter(Adapter):
    """``CUInt128`` on the wire (four little-endian 32-bit words) <-> the 16-byte big-endian id."""

    def _decode(self, obj, context, path):
        return b"".join(obj[i:i + 4][::-1] for i in range(0, 16, 4))

    def _encode(self, obj, context, path):
        return b"".join(bytes(obj[i:i + 4])[::-1] for i in range(0, 16, 4))


class _IPv4LittleEndian(Adapter):
    """aMule's Kad addresses: the IPv4 address as a host-order 32-bit number, little-endian."""

    def _decode(self, obj, context, path):
        return ipaddress.IPv4Address(obj)

    def _encode(self, obj, context, path):
        return int(ipaddress.IPv4Address(obj))


class _DepthLimited(construct.Subconstruct):
    """A recursive construct that refuses to nest deeper than :data:`MAX_SEARCH_DEPTH`."""

    _nesting = threading.local()

    def _parse(self, stream, context, path):
        depth = getattr(self._nesting, "depth", 0)
        if depth >= MAX_SEARCH_DEPTH:
            raise LimitExceeded(f"search expression deeper than {MAX_SEARCH_DEPTH} levels",
                                protocol=PROTOCOL, path=path,
                                offset=construct.stream_tell(stream, path))
        self._nesting.depth = depth + 1
        try:
            return self.subcon._parsereport(stream, context, path)
        finally:
            self._nesting.depth = depth


# fmt: off
#: A Kad id (``CUInt128``), as the 16-byte big-endian number.
KadId = _KadIdAdapter(Bytes(id_bytes(KAD_ID_BITS)))
#: An aMule Kad IPv4 address (host-order number, little-endian).
KadIPv4 = _IPv4LittleEndian(Int32ul)
#: A 16-byte MD4 hash (file hashes, user hashes): bytes as they are.
Md4Hash = Bytes(16)

#: ``<id 16><ip 4><udp port 2><tcp port 2><version 1>`` (25 bytes; ``ProcessKademlia2Request``).
Contact = Struct(
    "client_id" / KadId,
    "ip" / KadIPv4,
    "udp_port" / Int16ul,
    "tcp_port" / Int16ul,
    "version" / Int8ul,
)

_Text = PascalString(_length(Int16ul, MAX_TAG_VALUE, "search string"), "utf8")
_Name = PascalString(_length(Int16ul, MAX_TAG_VALUE, "tag name"), "latin-1")

#: ``CreateSearchExpressionTree``: 0x00 boolean (AND, OR, NOT) over two terms, 0x01 a string,
#: 0x02 a meta tag, 0x03 / 0x08 a 32- / 64-bit numeric relation.
SearchExpression = Struct(
    "op" / construct.Enum(Int8ul, boolean=0x00, string=0x01, meta_tag=0x02, numeric32=0x03,
                          numeric64=0x08),
    "term" / Switch(this.op, {
        "boolean":   Struct(
            "operator" / construct.Enum(Int8ul, AND=0, OR=1, NOT=2),
            "left" / _DepthLimited(construct.LazyBound(lambda: SearchExpression)),
            "right" / _DepthLimited(construct.LazyBound(lambda: SearchExpression)),
        ),
        "string":    Struct("text" / _Text),
        "meta_tag":  Struct("value" / _Text, "tag_name" / _Name),
        "numeric32": Struct("value" / Int32ul, "relation" / construct.Enum(
            Int8ul, equal=0, greater=1, less=2, greater_equal=3, less_equal=4, not_equal=5),
            "tag_name" / _Name),
        "numeric64": Struct("value" / Int64ul, "relation" / construct.Enum(
            Int8ul, equal=0, greater=1, less=2, greater_equal=3, less_equal=4, not_equal=5),
            "tag_name" / _Name),
    }, default=construct.Error),
)

#: ``<start position 2>``, its top bit saying a search expression follows (``restrictive``).
_StartPosition = ByteSwapped(BitStruct("restrictive" / Flag, "start_position" / BitsInteger(15)))

#: ``<my details>``: what ``SendMyDetails`` writes (HELLO_REQ, HELLO_RES).
_MyDetails = Struct(
    "client_id" / KadId, "tcp_port" / Int16ul, "version" / Int8ul, "tags" / TagList)

#: One search result or published entry: ``<id 16><tag list>``.
_Entry = Struct("id" / KadId, "tags" / TagList)

#: opcode -> (name, body). Kad2 opcodes (``kad2/Client2Client/UDP.h``) and the Kad 1 opcodes
#: Kad2 clients still send (``kad/Client2Client/UDP.h``: firewall checks, buddies, callbacks).
OPCODES: dict[int, tuple[str, construct.Construct]] = {
    0x01: ("bootstrap_req",       Struct()),
    0x09: ("bootstrap_res",       Struct("client_id" / KadId, "tcp_port" / Int16ul,
                                         "version" / Int8ul,
                                         "contacts" / PrefixedArray(Int16ul, Contact))),
    0x11: ("hello_req",           _MyDetails),
    0x19: ("hello_res",           _MyDetails),
    0x21: ("req",                 Struct("type" / Int8ul, "target" / KadId,
                                         "receiver" / KadId)),
    0x22: ("hello_res_ack",       Struct("client_id" / KadId, "tags" / TagList)),
    0x29: ("res",                 Struct("target" / KadId,
                                         "contacts" / PrefixedArray(Int8ul, Contact))),
    0x33: ("search_key_req",      Struct("target" / KadId, "start" / _StartPosition,
                                         "expression" / If(this.start.restrictive,
                                                           SearchExpression))),
    0x34: ("search_source_req",   Struct("target" / KadId, "start" / _StartPosition,
                                         "file_size" / Int64ul)),
    0x35: ("search_notes_req",    Struct("target" / KadId, "file_size" / Int64ul)),
    0x3B: ("search_res",          Struct("sender" / KadId, "target" / KadId,
                                         "results" / PrefixedArray(Int16ul, _Entry))),
    0x43: ("publish_key_req",     Struct("keyword" / KadId,
                                         "entries" / PrefixedArray(Int16ul, _Entry))),
    0x44: ("publish_source_req",  Struct("file" / KadId, "source" / KadId, "tags" / TagList)),
    0x45: ("publish_notes_req",   Struct("file" / KadId, "source" / KadId, "tags" / TagList)),
    0x4B: ("publish_res",         Struct("target" / KadId, "load" / Int8ul,
                                         "options" / Optional(Int8ul))),
    0x4C: ("publish_res_ack",     Struct()),
    0x50: ("firewalled_req",      Struct("tcp_port" / Int16ul)),
    0x51: ("findbuddy_req",       Struct("buddy_id" / KadId, "user_id" / KadId,
                                         "tcp_port" / Int16ul)),
    0x52: ("callback_req",        Struct("buddy_id" / KadId, "file" / KadId,
                                         "tcp_port" / Int16ul)),
    0x53: ("firewalled2_req",     Struct("tcp_port" / Int16ul, "user_id" / KadId,
                                         "connect_options" / Int8ul)),
    0x58: ("firewalled_res",      Struct("ip" / KadIPv4)),
    0x59: ("firewalled_ack_res",  Struct()),
    0x5A: ("findbuddy_res",       Struct("buddy_id" / KadId, "user_id" / KadId,
                                         "tcp_port" / Int16ul,
                                         "connect_options" / Optional(Int8ul))),
    0x60: ("ping",                Struct()),
    0x61: ("pong",                Struct("udp_port" / Int16ul)),
    0x62: ("firewall_udp",        Struct("error_code" / Int8ul, "udp_port" / Int16ul)),
}
#: The message table of :data:`OPCODES` (strict and lenient switches, names, ids).
MESSAGES = MessageTable(OPCODES, rule="kad2/unknown-opcode", spec="aMule KademliaUDPListener.cpp",
                        key="opcode", id_key="opcode_id", what="Kad opcode")
# fmt: on


def inflate_bound(packed_length: int) -> int:
    """How large a packed packet may inflate: ``ClientUDPSocket.cpp``, ``packetLen * 10 + 300``.

    >>> inflate_bound(1000)
    10300
    """
    return packed_length * 10 + 300


class _Packed(construct.Construct):
    """``<opcode 1><zlib stream>``: the opcode, then the body inflated (bounded) and parsed."""

    def __init__(self, strict: bool) -> None:
        super().__init__()
        self.strict = strict
        self.by_id = MESSAGES.messages
        self.key = MESSAGES.key

    def _parse(self, stream, context, path):
        start = construct.stream_tell(stream, path)
        opcode = construct.stream_read(stream, 1, path)[0]
        packed = stream.read()
        limit = inflate_bound(len(packed) + 2)
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(packed, limit)
        except zlib.error as e:
            raise ParseError(f"packed body does not inflate: {e}", protocol=PROTOCOL,
                             path=path, offset=start + 1) from None
        if inflater.unconsumed_tail:
            raise LimitExceeded(f"packed body inflates beyond {limit} bytes", protocol=PROTOCOL,
                                path=path, offset=start + 1)
        if not inflater.eof:
            raise ParseError("truncated: packed body ends inside the zlib stream",
                             protocol=PROTOCOL, path=path, offset=start + 1 + len(packed))
        try:
            out = MESSAGES.parse_body(opcode, io.BytesIO(body), context, path,
                                      strict=self.strict, offset=start)
        except ParseError as e:  # offsets into the inflated body, said so
            raise ParseError(f"{e.reason} (at byte {e.offset} of the inflated body)",
                             protocol=PROTOCOL, path=e.path, offset=start + 1) from None
        out["packed_size"] = len(packed)
        out["inflated_size"] = len(body)
        return out

    def _build(self, obj, stream, context, path):
        body = io.BytesIO()
        opcode = MESSAGES.build_body(obj, body, context, path)
        data = bytes([opcode]) + zlib.compress(body.getvalue(), 9)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context, path):
        raise construct.SizeofError("packed packets have no fixed size", path=path)


def _packet(strict: bool) -> Schema:
    # fmt: off
    return Schema(Struct(
        "protocol" / construct.Enum(Int8ul, kad=OP_KADEMLIAHEADER, kad_packed=OP_KADEMLIAPACKEDPROT),
        "message" / Switch(this.protocol, {
            "kad":        MESSAGES.switch(strict=strict),
            "kad_packed": _Packed(strict),
        }, default=construct.Error),
    ), protocol=PROTOCOL, name="KadPacket")
    # fmt: on


#: A Kad packet (strict: an unknown opcode is a :class:`~p2pkit.errors.ParseError`).
KadPacket = _packet(strict=True)
#: The dissector's form: an unknown opcode parses as ``opcode="unknown"`` with a deviation.
KadPacketLenient = _packet(strict=False)
