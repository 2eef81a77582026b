"""Streaming readers for pcap and pcapng files, plain or gzip-compressed.

Formats: libpcap's file format (draft-ietf-opsawg-pcap §4 file header, §5 packet record: magic
0xA1B2C3D4 for microseconds, 0xA1B23C4D for nanoseconds, either byte order) and pcapng
(draft-ietf-opsawg-pcapng §4.1 Section Header Block, §4.2 Interface Description Block, §4.3
Enhanced Packet Block, §4.4 Simple Packet Block). Headers are construct schemas; records are read
one at a time, so memory does not grow with the file.

A damaged file never raises out of :func:`read_frames`: the frames before the damage are yielded
and a :class:`~p2pkit.errors.ParseError` describing the damage is left in ``reader.error``::

    >>> import io, struct
    >>> head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    >>> rec = struct.pack("<IIII", 1, 500000, 3, 3) + b"abc"
    >>> reader = CaptureReader(io.BytesIO(head + rec + rec[:5]))
    >>> [(f.number, f.time, f.data) for f in reader]
    [(1, 1.5, b'abc')]
    >>> print(reader.error)
    pcap, field record, offset 43: truncated: record header needs 16 bytes, 5 left
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import construct
from construct import Int16ub, Int16ul, Int32sb, Int32sl, Int32ub, Int32ul, Struct

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.schema import FixedLayout

__all__ = [
    "CaptureReader",
    "Frame",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_LOOP",
    "LINKTYPE_RAW",
    "MAX_BLOCK_LENGTH",
    "MAX_RECORD_LENGTH",
    "read_frames",
]

#: Largest captured packet accepted (libpcap's MAXIMUM_SNAPLEN is 262144).
MAX_RECORD_LENGTH = 262_144
#: Largest pcapng block accepted (a packet of MAX_RECORD_LENGTH plus options).
MAX_BLOCK_LENGTH = MAX_RECORD_LENGTH + 65_536

# Link-layer header types (tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in host byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

PCAP_MAGIC_MICROSECONDS = 0xA1B2C3D4
PCAP_MAGIC_NANOSECONDS = 0xA1B23C4D
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D

# fmt: off
def _pcap_schemas(u16, u32, s32):
    # draft-ietf-opsawg-pcap §4: "File Header"
    file_header = Struct(
        "magic_number" / u32,
        "major_version" / u16,
        "minor_version" / u16,
        "thiszone" / s32,
        "sigfigs" / u32,
        "snaplen" / u32,
        "linktype" / u32,
    )
    # §5: "Packet Record": timestamp seconds, (micro|nano)seconds, captured and original length
    record_header = Struct(
        "ts_seconds" / u32,
        "ts_fraction" / u32,
        "captured_length" / u32,
        "original_length" / u32,
    )
    return file_header, record_header


def _pcapng_schemas(u16, u32):
    block_header = Struct("block_type" / u32, "block_total_length" / u32)
    # pcapng §4.2 Interface Description Block body (options follow)
    interface_description = Struct("linktype" / u16, "reserved" / u16, "snaplen" / u32)
    # §4.3 Enhanced Packet Block body (packet data and options follow)
    enhanced_packet = Struct(
        "interface_id" / u32,
        "timestamp_high" / u32,
        "timestamp_low" / u32,
        "captured_length" / u32,
        "original_length" / u32,
    )
    # §4.4 Simple Packet Block body (packet data follows)
    simple_packet = Struct("original_length" / u32)
    option = Struct("code" / u16, "length" / u16)
    return block_header, interface_description, enhanced_packet, simple_packet, option
# fmt: on


PcapFileHeaderLE, PcapRecordHeaderLE = _pcap_schemas(Int16ul, Int32ul, Int32sl)
PcapFileHeaderBE, PcapRecordHeaderBE = _pcap_schemas(Int16ub, Int32ub, Int32sb)
(PcapngBlockHeaderLE, PcapngInterfaceLE, PcapngEnhancedPacketLE, PcapngSimplePacketLE,
 PcapngOptionLE) = _pcapng_schemas(Int16ul, Int32ul)
(PcapngBlockHeaderBE, PcapngInterfaceBE, PcapngEnhancedPacketBE, PcapngSimplePacketBE,
 PcapngOptionBE) = _pcapng_schemas(Int16ub, Int32ub)


@dataclass(slots=True, frozen=True)
class Frame:
    """One captured packet: 1-based frame number, time (seconds), link type, bytes."""

    number: int
    time: float
    linktype: int
    data: bytes
    #: Length on the wire; larger than ``len(data)`` when the snaplen cut the packet.
    original_length: int
    #: Offset of the record in the (decompressed) file, for error messages.
    file_offset: int


#: pcapng block type -> smallest body its fixed fields need (IDB, SPB, EPB).
_BLOCK_BODY_MINIMUM = {1: 8, 3: 4, 6: 20}


class _Layouts:
    """struct fast paths derived from the header schemas of one byte order."""

    def __init__(self, little: bool) -> None:
        if little:
            self.record = FixedLayout(PcapRecordHeaderLE).struct
            self.block = FixedLayout(PcapngBlockHeaderLE).struct
            self.interface = FixedLayout(PcapngInterfaceLE).struct
            self.epb = FixedLayout(PcapngEnhancedPacketLE).struct
            self.option = FixedLayout(PcapngOptionLE).struct
            self.simple = FixedLayout(PcapngSimplePacketLE).struct
            self.file_header = PcapFileHeaderLE
        else:
            self.record = FixedLayout(PcapRecordHeaderBE).struct
            self.block = FixedLayout(PcapngBlockHeaderBE).struct
            self.interface = FixedLayout(PcapngInterfaceBE).struct
            self.epb = FixedLayout(PcapngEnhancedPacketBE).struct
            self.option = FixedLayout(PcapngOptionBE).struct
            self.simple = FixedLayout(PcapngSimplePacketBE).struct
            self.file_header = PcapFileHeaderBE


_LITTLE = _Layouts(True)
_BIG = _Layouts(False)


def _open(source: str | Path | BinaryIO) -> tuple[BinaryIO, list[BinaryIO]]:
    """The file to read (gunzipped when it starts with gzip's magic) and what to close later."""
    owned: list[BinaryIO] = []
    if isinstance(source, (str, Path)):
        raw: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed by CaptureReader.close
        owned.append(raw)
    else:
        raw = source
    if hasattr(raw, "peek"):
        head = raw.peek(2)[:2]
    else:
        pos = raw.tell()
        head = raw.read(2)
        raw.seek(pos)
    if head == b"\x1f\x8b":
        unzipped: BinaryIO = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
        return unzipped, [unzipped, *owned]
    return raw, owned


class CaptureReader:
    """Iterate over the frames of a pcap or pcapng file (optionally gzip-compressed).

    After iteration, ``error`` holds the :class:`ParseError` that stopped it early (a damaged or
    truncated file), or ``None``. ``format`` is ``"pcap"`` or ``"pcapng"``.
    """

    def __init__(self, source: str | Path | BinaryIO) -> None:
        self.name = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "-")
        self._file, self._owned = _open(source)
        self.error: ParseError | None = None
        self.format = ""
        self.offset = 0

    def close(self) -> None:
        for f in self._owned:
            f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        try:
            magic = self._read_exact(4, "file header")
            if magic == b"\x0a\x0d\x0d\x0a":
                self.format = "pcapng"
                yield from self._pcapng(magic)
            else:
                self.format = "pcap"
                yield from self._pcap(magic)
        except ParseError as e:
            self.error = e
        except (OSError, EOFError, gzip.BadGzipFile, construct.ConstructError) as e:
            self.error = ParseError(f"unreadable: {e}", protocol=self.format or "capture",
                                    offset=self.offset)

    # -- helpers ---------------------------------------------------------------------------

    def _read_exact(self, n: int, what: str, *, eof_ok: bool = False) -> bytes:
        data = self._file.read(n)
        if len(data) != n:
            if eof_ok and not data:
                return b""
            raise ParseError(f"truncated: {what} needs {n} bytes, {len(data)} left",
                             protocol=self.format or "capture", path=what.split()[0],
                             offset=self.offset)
        self.offset += n
        return data

    # -- pcap ------------------------------------------------------------------------------

    def _pcap(self, magic: bytes) -> Iterator[Frame]:
        value_le = int.from_bytes(magic, "little")
        value_be = int.from_bytes(magic, "big")
        if value_le in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS):
            layouts, value = _LITTLE, value_le
        elif value_be in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS):
            layouts, value = _BIG, value_be
        else:
            raise ParseError(f"not a pcap or pcapng file (magic {magic.hex()})",
                             protocol="capture", path="magic_number", offset=0)
        header = layouts.file_header.parse(magic + self._read_exact(20, "file header"))
        scale = 1e-9 if value == PCAP_MAGIC_NANOSECONDS else 1e-6
        linktype = header.linktype & 0x0FFFFFFF  # upper bits: FCS length (pcap §4)
        unpack = layouts.record.unpack
        number = 0
        read = self._file.read
        while True:
            at = self.offset
            head = read(16)
            if len(head) < 16:
                if head:
                    raise ParseError(
                        f"truncated: record header needs 16 bytes, {len(head)} left",
                        protocol="pcap", path="record", offset=at)
                return
            seconds, fraction, captured, original = unpack(head)
            if captured > MAX_RECORD_LENGTH:
                raise LimitExceeded(
                    f"record claims {captured} captured bytes (limit {MAX_RECORD_LENGTH})",
                    protocol="pcap", path="record -> captured_length", offset=at + 8)
            data = read(captured)
            self.offset = at + 16 + len(data)
            if len(data) != captured:
                raise ParseError(f"truncated: record of {captured} bytes has {len(data)}",
                                 protocol="pcap", path="record -> data", offset=at + 16)
            number += 1
            yield Frame(number, seconds + fraction * scale, linktype, data, original, at)

    # -- pcapng ----------------------------------------------------------------------------

    def _pcapng(self, first: bytes) -> Iterator[Frame]:
        interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
        layouts = _LITTLE
        number = 0
        pending = first
        while True:
            if pending:
                at = self.offset - len(pending)
                head = pending + self._read_exact(4, "block header")
                pending = b""
            else:
                at = self.offset
                head = self._read_exact(8, "block header", eof_ok=True)
                if not head:
                    return
            if head[:4] == b"\x0a\x0d\x0d\x0a":  # a new section may switch byte order
                order = self._read_exact(4, "section header")
                if order == b"\x4d\x3c\x2b\x1a":
                    layouts = _LITTLE
                elif order == b"\x1a\x2b\x3c\x4d":
                    layouts = _BIG
                else:
                    raise ParseError(f"bad byte-order magic {order.hex()}", protocol="pcapng",
                                     path="section_header -> byte_order_magic", offset=at + 8)
                interfaces = []
                _, total = layouts.block.unpack(head)
                self._check_block_length(total, at)
                self._read_exact(total - 12, "section header")
                continue
            block_type, total = layouts.block.unpack(head)
            self._check_block_length(total, at)
            body = self._read_exact(total - 8, "block body")[:-4]
            need = _BLOCK_BODY_MINIMUM.get(block_type, 0)
            if len(body) < need:
                raise ParseError(f"block of type {block_type} has a {len(body)}-byte body, "
                                 f"needs {need}", protocol="pcapng", path="block",
                                 offset=at + 8)
            if block_type == 1:  # Interface Description Block
                linktype, _, _ = layouts.interface.unpack_from(body)
                interfaces.append((linktype, self._tsresol(body[8:], layouts)))
            elif block_type == 6:  # Enhanced Packet Block
                iface, high, low, captured, original = layouts.epb.unpack_from(body)
                if captured > min(MAX_RECORD_LENGTH, len(body) - 20):
                    raise LimitExceeded(f"packet claims {captured} captured bytes",
                                        protocol="pcapng",
                                        path="enhanced_packet -> captured_length", offset=at + 20)
                if iface >= len(interfaces):
                    raise ParseError(f"packet names interface {iface}, which is not described",
                                     protocol="pcapng", path="enhanced_packet -> interface_id",
                                     offset=at + 8)
                linktype, tick = interfaces[iface]
                number += 1
                yield Frame(number, ((high << 32) | low) * tick, linktype,
                            body[20:20 + captured], original, at)
            elif block_type == 3:  # Simple Packet Block: interface 0, no timestamp
                if not interfaces:
                    raise ParseError("simple packet before any interface", protocol="pcapng",
                                     path="simple_packet", offset=at)
                (original,) = layouts.simple.unpack_from(body)
                linktype, _ = interfaces[0]
                number += 1
                captured = min(original, len(body) - 4)
                yield Frame(number, 0.0, linktype, body[4:4 + captured], original, at)
            # other blocks (name resolution, statistics, custom…) carry no packets

    def _check_block_length(self, total: int, at: int) -> None:
        if total < 12 or total % 4:
            raise ParseError(f"block length {total} is not a multiple of 4 >= 12",
                             protocol="pcapng", path="block -> block_total_length", offset=at + 4)
        if total > MAX_BLOCK_LENGTH:
            raise LimitExceeded(f"block claims {total} bytes (limit {MAX_BLOCK_LENGTH})",
                                protocol="pcapng", path="block -> block_total_length",
                                offset=at + 4)

    @staticmethod
    def _tsresol(options: bytes, layouts: _Layouts) -> float:
        """pcapng §4.2 if_tsresol (option 9): 10^-n, or 2^-n when the high bit is set."""
        pos = 0
        while pos + 4 <= len(options):
            code, length = layouts.option.unpack_from(options, pos)
            if code == 0:
                break
            if code == 9 and length >= 1 and pos + 5 <= len(options):
                value = options[pos + 4]
                return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value
            pos += 4 + ((length + 3) & ~3)
        return 1e-6


def read_frames(source: str | Path | BinaryIO) -> Iterator[Frame]:
    """Yield the frames of a capture file; stop quietly at damage (see :class:`CaptureReader`)."""
    with CaptureReader(source) as reader:
        yield from reader


def is_capture(head: bytes) -> bool:
    """Whether the first bytes look like pcap, pcapng or gzip (for CLI input checks)."""
    return head[:4] in (
        b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
        b"\x0a\x0d\x0d\x0a",
    ) or head[:2] == b"\x1f\x8b"

