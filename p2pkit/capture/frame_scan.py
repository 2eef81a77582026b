"""Frames of a capture read from large blocks: the dissector's per-frame reader.

:class:`~p2pkit.capture.readers.CaptureReader` reads a pcap record in two calls (its 16-byte
header, then its bytes) and makes a :class:`~p2pkit.capture.readers.Frame` per packet. The
dissector reads hundreds of thousands of frames and needs neither: :meth:`FrameScanner.scan`
reads a plain pcap file (draft-ietf-opsawg-pcap §5 "Packet Record") 256 KiB at a time and
unpacks each record header with ``unpack_from`` at its place in the block, with the
:class:`struct.Struct` derived from the same record-header schema
(``PcapRecordHeaderLE`` / ``BE`` in :mod:`p2pkit.capture.readers`), and yields
``(number, time, linktype, block, start, end, original_length)``: the frame is
``block[start:end]``, sliced only by whoever needs it. The limits, errors (message, field
path, offset) and the frames before damage are those of ``CaptureReader``, which tests check
on every committed capture and on random and truncated files.

pcapng files and gzip-compressed files go through ``CaptureReader``'s own readers (a
decompression error must stop at the record it damaged, not at the block around it), their
frames turned into the same tuples.

>>> import io, struct
>>> head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
>>> rec = struct.pack("<IIII", 1, 500000, 3, 3) + b"abc"
>>> scanner = FrameScanner(io.BytesIO(head + rec + rec[:5]))
>>> [(n, t, bytes(block[start:end])) for n, t, _, block, start, end, _ in scanner.scan()]
[(1, 1.5, b'abc')]
>>> print(scanner.error)
pcap, field record, offset 43: truncated: record header needs 16 bytes, 5 left
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import construct

from p2pkit.capture.readers import (
    _BIG,
    _LITTLE,
    MAX_RECORD_LENGTH,
    PCAP_MAGIC_MICROSECONDS,
    PCAP_MAGIC_NANOSECONDS,
    CaptureReader,
    _Layouts,
)
from p2pkit.errors import LimitExceeded, ParseError

__all__ = ["BLOCK_SIZE", "FrameScanner", "ScannedFrame"]

#: Bytes read at a time (a record longer than this is read whole: at most
#: :data:`~p2pkit.capture.readers.MAX_RECORD_LENGTH` plus its header).
BLOCK_SIZE = 1 << 18

#: ``(number, time, linktype, block, start, end, original_length)``: frame ``number``
#: (1-based) is ``block[start:end]``.
ScannedFrame = tuple[int, float, int, bytes, int, int, int]


class FrameScanner(CaptureReader):
    """A :class:`CaptureReader` that also reads frames as tuples over large blocks.

    ``error`` and ``offset`` behave as ``CaptureReader``'s (``offset``, for progress bars, is
    the start of the block being read on the block path).
    """

    #: Bytes read at a time (tests make it small, so that records straddle blocks).
    block_size = BLOCK_SIZE

    def scan(self) -> Iterator[ScannedFrame]:
        """Every frame as ``(number, time, linktype, block, start, end, original_length)``;
        damage ends the iteration and is left in ``error``, as iterating the reader does."""
        try:
            magic = self._read_exact(4, "file header")
            if magic == b"\x0a\x0d\x0d\x0a":
                self.format = "pcapng"
                frames = self._pcapng(magic)
            else:
                self.format = "pcap"
                if not isinstance(self._file, gzip.GzipFile):
                    yield from self._pcap_blocks(magic)
                    return
                frames = self._pcap(magic)
            for f in frames:
                yield f.number, f.time, f.linktype, f.data, 0, len(f.data), f.original_length
        except ParseError as e:
            self.error = e
        except (OSError, EOFError, gzip.BadGzipFile, construct.ConstructError) as e:
            self.error = ParseError(f"unreadable: {e}", protocol=self.format or "capture",
                                    offset=self.offset)

    def _pcap_blocks(self, magic: bytes) -> Iterator[ScannedFrame]:
        """pcap §4 file header, then §5 packet records read from blocks of the file."""
        layouts = self._byte_order(magic)
        header = layouts.file_header.parse(magic + self._read_exact(20, "file header"))
        scale = 1e-9 if header.magic_number == PCAP_MAGIC_NANOSECONDS else 1e-6
        linktype = header.linktype & 0x0FFFFFFF  # upper bits: FCS length (pcap §4)
        unpack_from = layouts.record.unpack_from
        read = self._file.read
        block_size = self.block_size
        block = b""
        size = pos = 0
        base = self.offset  # file offset of block[0]
        number = 0
        while True:
            if size - pos < 16:
                block = block[pos:] + read(block_size)
                base += pos
                self.offset = base
                size, pos = len(block), 0
                if size < 16:
                    if size:
                        raise ParseError(f"truncated: record header needs 16 bytes, {size} left",
                                         protocol="pcap", path="record", offset=base)
                    return
            seconds, fraction, captured, original = unpack_from(block, pos)
            if captured > MAX_RECORD_LENGTH:
                raise LimitExceeded(
                    f"record claims {captured} captured bytes (limit {MAX_RECORD_LENGTH})",
                    protocol="pcap", path="record -> captured_length", offset=base + pos + 8)
            start = pos + 16
            end = start + captured
            if end > size:
                block = block[pos:] + read(max(block_size, end - size))
                base += pos
                self.offset = base
                size, start, end = len(block), 16, 16 + captured
                if end > size:
                    self.offset = base + size
                    raise ParseError(f"truncated: record of {captured} bytes has {size - 16}",
                                     protocol="pcap", path="record -> data", offset=base + 16)
            number += 1
            yield number, seconds + fraction * scale, linktype, block, start, end, original
            pos = end

    def _byte_order(self, magic: bytes) -> _Layouts:
        """The layouts of the byte order the magic number says (pcap §4)."""
        if int.from_bytes(magic, "little") in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS):
            return _LITTLE
        if int.from_bytes(magic, "big") in (PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS):
            return _BIG
        raise ParseError(f"not a pcap or pcapng file (magic {magic.hex()})",
                         protocol="capture", path="magic_number", offset=0)
