"""uTP packets: the uTorrent transport protocol header and its extension chain (BEP 29).

BEP 29 §header format: "All fields are in network byte order (big endian)." The version 1
header is 20 bytes (type and version nibbles, the first extension's type, connection_id,
timestamp_microseconds, timestamp_difference_microseconds, wnd_size, seq_nr, ack_nr), followed
by the extension chain and the payload.

BEP 29 §extension: "Extensions are linked, just like TCP options. If the extension field is
non-zero, immediately following the uTP header are two bytes [extension, len] where extension
specifies the type of the next extension in the linked list, 0 terminates the list. [...]
Unknown extensions can be skipped by simply advancing len bytes."

A parsed packet keeps the chain as a list of extensions, each with its own ``type``; the
header's ``extension`` byte and each record's "next" byte are rebuilt from that list, so a
packet cannot be built with a broken chain. Selective ACKs (type 1) expose the acknowledged
packets as offsets to add to ``ack_nr`` (BEP 29 §Selective ACK: "The first bit in the mask
therefore represents ack_nr + 2"); other extensions keep their bytes.

A selective ACK from the nDPI capture (``tests/data/captures/ndpi-bittorrent_utp.pcap``):

>>> pkt = UtpPacket.parse(bytes.fromhex(
...     "21015302070760ecf61114480000f00049c9e7f7000401000000"))
>>> pkt.type, pkt.version, pkt.connection_id, pkt.wnd_size, pkt.seq_nr, pkt.ack_nr
('st_state', 1, 21250, 61440, 18889, 59383)
>>> pkt.extensions
ListContainer([Container(type=1, len=4, acked=[2])])
>>> acked_sequence_numbers(pkt)
[59385]
>>> UtpPacket.build(pkt).hex()
'21015302070760ecf61114480000f00049c9e7f7000401000000'
"""

from __future__ import annotations

import io
import struct
from typing import Any

import construct
from construct import (
    BitsInteger,
    BitStruct,
    Computed,
    Const,
    Container,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    ListContainer,
    Mapping,
    Rebuild,
    Struct,
    this,
)

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.schema import FixedLayout, Schema

__all__ = [
    "HEADER_SIZE",
    "MAX_EXTENSIONS",
    "PROTOCOL",
    "SELECTIVE_ACK",
    "ST_DATA_V1",
    "ExtensionChain",
    "SelectiveAckBitmask",
    "UtpPacket",
    "UtpType",
    "acked_sequence_numbers",
    "build_plain_packet",
    "looks_like_utp",
    "split_segmented",
    "unpack_header",
]

PROTOCOL = "bt-utp"
#: Longest extension chain accepted (BEP 29 defines one extension; real packets carry at most 2).
MAX_EXTENSIONS = 16
#: BEP 29 §extension: "1. Selective acks".
SELECTIVE_ACK = 1
#: The type byte of the extension BEP 29 removed in 2012 ("Removed 'bitfield' extension header");
#: libutp still sends it, as 8 bytes of extension bits.
EXTENSION_BITS = 2

# fmt: off
#: BEP 29 §type: ST_DATA = 0, ST_FIN = 1, ST_STATE = 2, ST_RESET = 3, ST_SYN = 4.
UtpType = Mapping(BitsInteger(4), {
    "st_data": 0,
    "st_fin": 1,
    "st_state": 2,
    "st_reset": 3,
    "st_syn": 4,
})

#: "type | ver": the high nibble is the type, the low nibble the version ("The current version
#: is 1").
TypeAndVersion = BitStruct(
    "type" / UtpType,
    "version" / Const(1, BitsInteger(4)),
)
# fmt: on


class SelectiveAckBitmask(construct.Adapter):
    """The selective ACK bitmask (BEP 29 §Selective ACK) as a list of offsets from ``ack_nr``.

    "The bitmask has reverse byte order. The first byte represents packets [ack_nr + 2,
    ack_nr + 2 + 7] in reverse order. The least significant bit in the byte represents
    ack_nr + 2". So bit ``j`` of byte ``i`` acknowledges ``ack_nr + 2 + 8 * i + j``.

    >>> SelectiveAckBitmask(construct.Bytes(4)).parse(b"\\x05\\x00\\x00\\x80")
    [2, 4, 33]
    """

    def __init__(self, subcon: construct.Construct, length: Any = 4) -> None:
        super().__init__(subcon)
        self.length = length

    def _decode(self, obj: bytes, context: Any, path: str) -> list[int]:
        return [2 + 8 * i + j for i, byte in enumerate(obj) for j in range(8) if byte >> j & 1]

    def _encode(self, obj: list[int], context: Any, path: str) -> bytes:
        size = construct.evaluate(self.length, context)
        mask = bytearray(size)
        for offset in obj:
            bit = offset - 2
            if not 0 <= bit < 8 * size:
                raise construct.ExplicitError(
                    f"selective ACK offset {offset} outside a {size}-byte bitmask", path=path
                )
            mask[bit // 8] |= 1 << (bit % 8)
        return bytes(mask)


def _selective_ack_length(acked: list[int]) -> int:
    """Smallest legal bitmask for ``acked``: "at least 4, and in multiples of 4" bytes."""
    highest = max(acked, default=2) - 2
    return max(4, (highest // 32 + 1) * 4)


class ExtensionChain(construct.Construct):
    """The linked list of extensions after the header (BEP 29 §extension).

    Each item is a ``Container(type=..., len=..., ...)``: a selective ACK (``type=1``) carries
    ``acked`` (offsets to add to ``ack_nr``), any other type carries its raw ``data``. The type of
    the first item is the header's ``extension`` field (read from the context); the chain ends
    at a record whose "next extension" byte is 0. At most :data:`MAX_EXTENSIONS` items.
    """

    def __init__(self, first_type: Any) -> None:
        super().__init__()
        self.first_type = first_type
        self.flagbuildnone = True

    def _parse(self, stream: io.BufferedIOBase, context: Any, path: str) -> list[Container]:
        items = ListContainer()
        kind = construct.evaluate(self.first_type, context)
        while kind != 0:
            if len(items) >= MAX_EXTENSIONS:
                offset = construct.stream_tell(stream, path)
                raise LimitExceeded(f"more than {MAX_EXTENSIONS} extensions", protocol=PROTOCOL,
                                    path="extensions", offset=offset)
            start = construct.stream_tell(stream, path)
            following, length = construct.stream_read(stream, 2, path)
            data = construct.stream_read(stream, length, path)
            if kind == SELECTIVE_ACK:
                # "the len field of extensions refer to bytes, which in this extension must be
                # at least 4, and in multiples of 4". libtorrent 2.0 sends other lengths (27,
                # 29 bytes: as many as the bits it reports need) and libutp reads them, so only
                # an empty bitmask is refused here.
                if length == 0:
                    raise ParseError("selective ACK of 0 bytes", protocol=PROTOCOL,
                                     path=f"extensions[{len(items)}] -> len", offset=start + 1)
                bitmask = SelectiveAckBitmask(construct.Bytes(length), length)
                items.append(Container(type=kind, len=length, acked=bitmask.parse(data)))
            else:
                items.append(Container(type=kind, len=length, data=data))
            kind = following
        return items

    def _build(self, obj: Any, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        items = list(obj or [])
        if len(items) > MAX_EXTENSIONS:
            raise construct.ExplicitError(f"more than {MAX_EXTENSIONS} extensions", path=path)
        for i, item in enumerate(items):
            following = items[i + 1]["type"] if i + 1 < len(items) else 0
            if item["type"] == SELECTIVE_ACK:
                length = item.get("len") or _selective_ack_length(item["acked"])
                data = SelectiveAckBitmask(construct.Bytes(length), length).build(item["acked"])
            else:
                data = bytes(item["data"])
                length = len(data)
            if not 0 < item["type"] < 256 or not 0 <= following < 256 or length > 255:
                raise construct.ExplicitError(
                    f"extension {i}: type and len must fit in a byte", path=path)
            construct.stream_write(stream, bytes((following, length)) + data, 2 + length, path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("the extension chain has no fixed size", path=path)


def _first_extension(this: Container) -> int:
    return this.extensions[0]["type"] if this.get("extensions") else 0


# fmt: off
#: One uTP datagram (BEP 29 §header format), with the extension chain and the payload.
UtpPacket = Schema(Struct(
    # "type | ver" share the first byte: read once, exposed as the two fields below.
    "_type_version" / Rebuild(TypeAndVersion, lambda this: {"type": this.type, "version": 1}),
    "type" / Computed(this._type_version.type),
    "version" / Computed(this._type_version.version),
    "extension" / Rebuild(Int8ub, _first_extension),
    "connection_id" / Int16ub,
    "timestamp_microseconds" / Int32ub,
    "timestamp_difference_microseconds" / Int32ub,
    "wnd_size" / Int32ub,
    "seq_nr" / Int16ub,
    "ack_nr" / Int16ub,
    "extensions" / ExtensionChain(this.extension),
    "payload" / GreedyBytes,
), protocol=PROTOCOL, name="UtpPacket")
# fmt: on

#: Size of the fixed header.
HEADER_SIZE = 20
_TYPE_NAMES = {code: name for name, code in UtpType.encmapping.items()}


def _header_layout() -> FixedLayout:
    """The 20-byte header as one struct format, derived from :data:`UtpPacket`'s own fields.

    The type/version ``BitStruct`` is one byte (read whole, split below); ``Rebuild`` fields
    contribute their inner integer; ``Computed`` fields take no bytes; the chain and the
    payload are not part of the fixed header.
    """
    fields = []
    for sub in UtpPacket.subcon.subcons:
        if sub.name == "extensions":
            break
        inner = sub.subcon
        if isinstance(inner, construct.Computed):
            continue
        if isinstance(inner, construct.Rebuild):
            inner = inner.subcon
        if sub.name == "_type_version":
            inner = Int8ub if inner.sizeof() == 1 else None
        fields.append(sub.name / inner)
    layout = FixedLayout(Struct(*fields))
    assert layout.size == HEADER_SIZE
    return layout


_HEADER = _header_layout()


def _fast_parse(data: bytes) -> Container | None:
    """Packets without extensions (nearly all of them) or with one selective ACK (every ack
    during a loss), straight from the derived struct."""
    try:
        if len(data) < HEADER_SIZE or data[1] not in (0, SELECTIVE_ACK):
            return None
        (type_version, extension, connection_id, timestamp, difference, wnd_size, seq_nr,
         ack_nr) = _HEADER.struct.unpack_from(data)
    except (TypeError, struct.error):
        return None
    name = _TYPE_NAMES.get(type_version >> 4)
    if name is None or type_version & 0x0F != 1:
        return None
    extensions = ListContainer()
    start = HEADER_SIZE
    if extension:
        # One selective ACK ending the chain: [next=0, len, bitmask] (BEP 29 §Selective ACK).
        if len(data) < HEADER_SIZE + 2 or data[HEADER_SIZE] != 0:
            return None
        length = data[HEADER_SIZE + 1]
        start = HEADER_SIZE + 2 + length
        if length == 0 or len(data) < start:
            return None
        mask = data[HEADER_SIZE + 2:start]
        extensions.append(Container(type=SELECTIVE_ACK, len=length, acked=[
            2 + 8 * i + j for i, byte in enumerate(mask) if byte for j in range(8)
            if byte >> j & 1]))
    return Container(
        _type_version=Container(type=name, version=1), type=name, version=1,
        extension=extension, connection_id=connection_id, timestamp_microseconds=timestamp,
        timestamp_difference_microseconds=difference, wnd_size=wnd_size, seq_nr=seq_nr,
        ack_nr=ack_nr, extensions=extensions, payload=bytes(data[start:]))


def _fast_build(obj: Any) -> bytes | None:
    """The inverse of :func:`_fast_parse`; anything unusual goes to the generic builder."""
    try:
        if obj.get("extensions") or obj.get("version", 1) != 1:
            return None
        header = _HEADER.struct.pack(
            UtpType.encmapping[obj["type"]] << 4 | 1, 0, obj["connection_id"],
            obj["timestamp_microseconds"], obj["timestamp_difference_microseconds"],
            obj["wnd_size"], obj["seq_nr"], obj["ack_nr"])
        payload = obj["payload"]
        if not isinstance(payload, (bytes, bytearray)):
            return None
        return header + payload
    except (AttributeError, KeyError, TypeError, struct.error):
        return None


UtpPacket.fast_parse = _fast_parse
UtpPacket.fast_build = _fast_build

_TYPE_VERSION = {name: code << 4 | 1 for name, code in UtpType.encmapping.items()}
_pack_header = _HEADER.struct.pack
#: The fixed header's fields as one tuple, straight from the struct derived from the schema
#: (``type_version, extension, connection_id, timestamp_microseconds,
#: timestamp_difference_microseconds, wnd_size, seq_nr, ack_nr``): the socket core's path for
#: a plain ST_DATA packet (:data:`ST_DATA_V1`, no extension), which needs no Container.
unpack_header = _HEADER.struct.unpack_from
#: The first byte of an ST_DATA packet of version 1.
ST_DATA_V1 = _TYPE_VERSION["st_data"]


def build_plain_packet(kind: str, connection_id: int, timestamp: int, difference: int,
                       wnd_size: int, seq_nr: int, ack_nr: int, payload: bytes,
                       sack: list[int] | None = None) -> bytes:
    """A packet in one call: what :data:`UtpPacket` builds from the same fields (the header's
    struct is derived from the schema, ``_header_layout``; a test holds the two equal).
    The socket core sends all its packets this way (BEP 29 §header format). ``sack``: the
    offsets of a selective ACK (BEP 29 §Selective ACK), in a bitmask of the smallest legal
    length.

    >>> build_plain_packet("st_state", 1, 2, 3, 4, 5, 6, b"") == UtpPacket.build(dict(
    ...     type="st_state", version=1, extensions=[], connection_id=1, timestamp_microseconds=2,
    ...     timestamp_difference_microseconds=3, wnd_size=4, seq_nr=5, ack_nr=6, payload=b""))
    True
    """
    if not sack:
        return _pack_header(_TYPE_VERSION[kind], 0, connection_id, timestamp, difference,
                            wnd_size, seq_nr, ack_nr) + payload
    length = _selective_ack_length(sack)
    mask = bytearray(length)
    for offset in sack:
        bit = offset - 2
        if not 0 <= bit < 8 * length:
            raise ValueError(f"selective ACK offset {offset} below 2")
        mask[bit >> 3] |= 1 << (bit & 7)
    return (_pack_header(_TYPE_VERSION[kind], SELECTIVE_ACK, connection_id, timestamp,
                         difference, wnd_size, seq_nr, ack_nr)
            + bytes((0, length)) + mask + payload)


def split_segmented(datagram: bytes) -> list[bytes]:
    """The uTP packets of a datagram captured before UDP segmentation offload cut it (Linux
    GSO, ``UDP_SEGMENT``: a capture on the sending host, or on loopback, shows the N
    datagrams one ``sendmsg`` carried as one UDP payload): ``[datagram]`` when it is one packet.

    BEP 29 packets carry no length, so the cut is found from the headers: a segment size ``s``
    at which every ``s`` bytes a version 1 header of the same ``connection_id`` starts, its
    ``seq_nr`` the previous one's or the next (ST_DATA packets count up; an ST_STATE carries
    the number the next packet will have). The p2pkit core sends runs of equal-size packets
    so, the last one possibly shorter. Random payload matches by chance with odds near 2**-37
    per candidate size.

    >>> one = [build_plain_packet("st_data", 9, 0, 0, 0, 7 + i, 1, bytes([i]) * 30)
    ...        for i in range(3)]
    >>> ack = build_plain_packet("st_state", 9, 0, 0, 0, 10, 1, b"")
    >>> [len(p) for p in split_segmented(b"".join(one) + ack)]
    [50, 50, 50, 20]
    >>> len(split_segmented(one[0]))
    1
    """
    size = len(datagram)
    if size < 2 * HEADER_SIZE or not looks_like_utp(datagram):
        return [datagram]
    first = unpack_header(datagram)
    ident = datagram[_CONNECTION_ID_AT:_CONNECTION_ID_AT + 2]
    find = datagram.find
    at = find(ident, HEADER_SIZE + _CONNECTION_ID_AT)
    while at != -1 and at - _CONNECTION_ID_AT + HEADER_SIZE <= size:
        step = at - _CONNECTION_ID_AT
        if _segments_line_up(datagram, step, first[_CONNECTION_ID], first[_SEQ_NR]):
            return [datagram[i:i + step] for i in range(0, size, step)]
        at = find(ident, at + 1)
    return [datagram]


#: Positions in :func:`unpack_header`'s tuple, and where ``connection_id`` starts in the
#: header (the 2-byte field after ``type_version`` and ``extension``), from the derived layout.
_CONNECTION_ID = _HEADER.names.index("connection_id")
_SEQ_NR = _HEADER.names.index("seq_nr")
_CONNECTION_ID_AT = struct.calcsize(_HEADER.format[0] + "".join(_HEADER.codes[:_CONNECTION_ID]))


def _segments_line_up(datagram: bytes, step: int, connection_id: int, seq: int) -> bool:
    size = len(datagram)
    for start in range(step, size, step):
        if size - start < HEADER_SIZE or not looks_like_utp(datagram[start:start + HEADER_SIZE]):
            return False
        fields = unpack_header(datagram, start)
        if fields[_CONNECTION_ID] != connection_id:
            return False
        following = fields[_SEQ_NR]
        if following != seq and following != (seq + 1) & 0xFFFF:
            return False
        seq = following
    return True


def looks_like_utp(datagram: bytes) -> bool:
    """Whether ``datagram`` can be a uTP version 1 packet (a cheap test for demultiplexing).

    uTP shares its UDP port with the DHT (bencoded, starting with ``d``) and others; a version 1
    header starts with a byte ``0xT1`` where ``T`` is a known type.

    >>> looks_like_utp(bytes.fromhex("4100") + bytes(18)), looks_like_utp(b"d1:ad2:id20:")
    (True, False)
    """
    return len(datagram) >= HEADER_SIZE and datagram[0] & 0x0F == 1 and datagram[0] >> 4 <= 4


def acked_sequence_numbers(packet: Container) -> list[int]:
    """Sequence numbers a packet acknowledges selectively (modulo 2**16, as seq_nr wraps).

    >>> pkt = Container(ack_nr=65534, extensions=[Container(type=1, len=4, acked=[2, 3])])
    >>> acked_sequence_numbers(pkt)
    [0, 1]
    """
    return [
        (packet.ack_nr + offset) & 0xFFFF
        for ext in packet.extensions
        if ext["type"] == SELECTIVE_ACK
        for offset in ext["acked"]
    ]
