"""Piece storage: pieces <-> files on disk, hash checks, re-check for resume.

Specs: BEP 3 §metainfo files (``pieces``, ``files``), BEP 47 §padding files, BEP 52 §file tree,
§piece layers and §upgrade path.

**Piece space.** BEP 3: "the file list [...] is treated as one long file, the concatenation of
each file in the order listed". A piece ``i`` covers ``[i * piece_length, (i + 1) *
piece_length)`` of that space; a :class:`PieceMap` gives, for every piece, the
:class:`FileSpan` s it covers (file, offset in the file, length). v1 and hybrid torrents lay the
files of the v1 ``files`` list end to end (a piece may cross file boundaries). In a v2-only
torrent "each non-empty file is aligned to a piece boundary" (BEP 52), so a piece lies inside one
file and the last piece of each file may be short; the offsets come from
``FileEntry.offset``. BEP 47 padding files
(``attr`` ``p``) "the content of padding file is all zeros": they are never created on disk and
read as zeros. Zero-length files are created empty with the first piece written; files marked
executable (``attr`` ``x``) are created so; symbolic links (``attr`` ``l``) are not created.

**Hash checks** (:meth:`Storage.verify`). v1: the SHA-1 of the whole piece against ``pieces``.
v2: the root of the SHA-256 merkle tree over the piece's 16 KiB blocks; for a file larger than
a piece it is compared with the file's ``piece layers`` hash (the tree padded to
``piece_length / 16 KiB`` leaves with zero hashes), for a file of at most one piece with its
``pieces root`` itself (padded to the next power of two). Hybrid: both, and both must pass.

**Crash safety.** A piece counts as had only when its bytes were hashed: either read back
from disk by :meth:`Storage.check`, or received complete, passed to :meth:`Storage.verify`, and
only then handed to :meth:`Storage.write`. Nothing is recorded while pieces are written, so a
crash in the middle of a write leaves bytes on disk that fail the next :meth:`Storage.check`:
it can never leave a piece marked good that is not. The one exception is opt-in: the fast-resume
record of :meth:`Storage.save_resume` is written only after ``fsync`` of the data it vouches for,
replaced atomically, and :meth:`Storage.load_resume` trusts it only while every file still has
the size and modification time it recorded; any later write (or outside change) to a file
invalidates it, and a full :meth:`Storage.check` runs instead.

**I/O.** Synchronous and clock-free (the asyncio client runs it in a thread executor): ``pread``
/ ``pwrite`` on file descriptors kept in a small LRU (:data:`MAX_OPEN_FILES`), files and
directories created lazily, existing data never truncated. One lock guards the descriptors;
hashing runs outside it.

>>> import tempfile
>>> from pathlib import Path
>>> from p2pkit.bittorrent.wire.create import create_from_contents
>>> from p2pkit.bittorrent.wire.metainfo import Metainfo
>>> content = {"a.txt": b"A" * 20000, "b.txt": b"B" * 30000}
>>> meta = Metainfo.parse(create_from_contents("demo", content, piece_length=16384))
>>> [(s.file.path, s.offset, s.length) for s in PieceMap(meta).spans(1)]
[(('a.txt',), 16384, 3616), (('b.txt',), 0, 12768)]
>>> with tempfile.TemporaryDirectory() as tmp, Storage(meta, Path(tmp)) as storage:
...     stream = content["a.txt"] + content["b.txt"]
...     for index in range(storage.piece_count):
...         piece = stream[index * 16384:(index + 1) * 16384]
...         assert storage.verify(index, piece)
...         storage.write(index, piece)
...     (Path(tmp) / "demo" / "b.txt").read_bytes() == content["b.txt"], all(storage.check())
(True, True)
"""

from __future__ import annotations

import hashlib
import os
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from p2pkit.bencode import decode, encode
from p2pkit.bittorrent.wire.metainfo import (
    BLOCK_SIZE,
    FileEntry,
    Metainfo,
    merkle_root,
    piece_layer_root,
)
from p2pkit.errors import P2PKitError

__all__ = [
    "MAX_OPEN_FILES",
    "Block",
    "FileSpan",
    "PieceMap",
    "Storage",
    "StorageError",
]

#: Most file descriptors one :class:`Storage` keeps open (least recently used ones are closed).
MAX_OPEN_FILES = 64
#: Largest fast-resume file read (checked before reading): a byte per piece, two integers per
#: file.
MAX_RESUME_SIZE = 64 * 1024 * 1024

Progress = Callable[[int, int], None]


class StorageError(P2PKitError):
    """Storage cannot do what was asked: an unsafe path, a range outside the torrent, a missing
    piece layer, or an operating system error (the message names the file)."""


class Block(NamedTuple):
    """A block of a piece as requested on the wire (BEP 3 ``request``: begin and length)."""

    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class FileSpan:
    """The part of one file that a piece covers.

    ``offset`` is where the span starts in the file, ``piece_offset`` where it starts in the
    piece; ``file_index`` indexes :attr:`Metainfo.files <p2pkit.bittorrent.wire.metainfo.Metainfo>`.
    """

    file_index: int
    file: FileEntry
    offset: int
    length: int
    piece_offset: int


class PieceMap:
    """Pieces -> file spans for one torrent (no I/O; see the module docstring).

    Attributes: ``metainfo``, ``files`` (its files, padding included), ``piece_count`` and
    ``piece_size`` (the torrent's ``piece length``; :meth:`piece_length` gives each piece's).

    >>> from p2pkit.bittorrent.wire.create import create_from_contents
    >>> meta = Metainfo.parse(create_from_contents(
    ...     "d", {"a": bytes(1000), "b": bytes(40000)}, version="v2", piece_length=32768))
    >>> pieces = PieceMap(meta)
    >>> pieces.piece_count, [pieces.piece_length(i) for i in range(3)]
    (3, [1000, 32768, 7232])
    >>> [(s.file.path, s.offset, s.length) for s in pieces.spans(2)]
    [(('b',), 32768, 7232)]
    """

    def __init__(self, metainfo: Metainfo) -> None:
        self.metainfo = metainfo
        self.files = metainfo.files
        self.piece_size = metainfo.piece_length
        self.piece_count = metainfo.piece_count
        # File starts and ends in piece space never decrease (files are laid end to end, or
        # aligned upwards in v2), so the files around a position are found by bisection.
        self._starts = [f.offset for f in self.files]
        self._ends = [f.offset + f.length for f in self.files]
        if any(f.offset < end for f, end in zip(self.files[1:], self._ends)):
            raise StorageError("files overlap in piece space")
        self._check_coverage()
        #: Pieces holding less than ``piece_size`` bytes of content (short, or with padding):
        #: index -> content bytes. Every other piece is ``piece_size`` bytes of content.
        self._partial = self._partial_pieces()

    def _check_coverage(self) -> None:
        """Every piece must hold data and the last piece must reach the end of the data."""
        end = max(self._ends, default=0)
        count, size = self.piece_count, self.piece_size
        if count == 0 and end == 0:
            return
        if count == 0 or not (count - 1) * size < end <= count * size:
            raise StorageError(f"{count} pieces of {size} bytes do not cover "
                               f"{end} bytes of files")

    def _partial_pieces(self) -> dict[int, int]:
        """Only a piece where a file ends can be short, only one padding overlaps can hold
        padding: measure those and no other (a torrent has far fewer files than pieces)."""
        size = self.piece_size
        candidates = set()
        for f in self.files:
            if f.length:
                last = (f.offset + f.length - 1) // size
                first = f.offset // size if f.is_padding else last
                candidates.update(range(first, last + 1))
        partial = {}
        for index in sorted(candidates):
            content = sum(s.length for s in self.spans(index) if not s.file.is_padding)
            if content < size:
                partial[index] = content
        return partial

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.piece_count:
            raise StorageError(f"piece {index} is out of range (0 to {self.piece_count - 1})")

    def spans(self, index: int) -> list[FileSpan]:
        """The file spans piece ``index`` covers, in order; they tile the piece exactly."""
        self._check_index(index)
        start = index * self.piece_size
        stop = start + self.piece_size
        spans = []
        i = bisect_right(self._ends, start)
        while i < len(self.files) and self.files[i].offset < stop:
            f = self.files[i]
            begin, end = max(start, f.offset), min(stop, self._ends[i])
            if end > begin:
                spans.append(FileSpan(i, f, begin - f.offset, end - begin, begin - start))
            i += 1
        return spans

    def piece_length(self, index: int) -> int:
        """Bytes in piece ``index`` (the last piece, and in v2 the last of each file, may be
        short); the sum of its spans' lengths."""
        self._check_index(index)
        start = index * self.piece_size
        # The piece ends where the last file starting before its end stops, or at its end.
        last = bisect_left(self._starts, start + self.piece_size) - 1
        return min(self.piece_size, self._ends[last] - start)

    def content_length(self, index: int) -> int:
        """Bytes of piece ``index`` that are not BEP 47 padding."""
        self._check_index(index)
        return self._partial.get(index, self.piece_size)

    def blocks(self, index: int) -> list[Block]:
        """The 16 KiB blocks of piece ``index`` (the last one may be shorter).

        >>> meta = Metainfo.parse_info(b"d6:lengthi40000e4:name1:x12:piece lengthi32768e"
        ...                            b"6:pieces40:" + bytes(40) + b"e")
        >>> PieceMap(meta).blocks(1)
        [Block(begin=0, length=7232)]
        """
        length = self.piece_length(index)
        return [Block(b, min(BLOCK_SIZE, length - b)) for b in range(0, length, BLOCK_SIZE)]

    def have_bytes(self, have: Sequence[int]) -> int:
        """Bytes of content (padding excluded) in the pieces marked in ``have``."""
        if len(have) != self.piece_count:
            raise StorageError(f"{len(have)} pieces given for {self.piece_count}")
        missing = sum(self.piece_size - n for index, n in self._partial.items() if have[index])
        return sum(map(bool, have)) * self.piece_size - missing

    def left(self, have: Sequence[int]) -> int:
        """Bytes still to download (tracker ``left``, BEP 3 §trackers), padding excluded."""
        return self.metainfo.total_length - self.have_bytes(have)


class _Handle(NamedTuple):
    fd: int
    writable: bool


class Storage(PieceMap):
    """The torrent's files under ``root``: ``root/name`` for a single-file torrent,
    ``root/name/path...`` for a multi-file one (see the module docstring for an example).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, metainfo: Metainfo, root: str | os.PathLike[str]) -> None:
        super().__init__(metainfo)
        self.root = Path(root)
        base = self.root / _safe_component(metainfo.name)
        self.paths = [base if not metainfo.multi_file
                      else base.joinpath(*(_safe_component(p) for p in f.path or ("",)))
                      for f in self.files]
        if metainfo.has_v2:
            self._check_v2_alignment()
        self.piece_layers = dict(metainfo.piece_layers)
        self._open: OrderedDict[int, _Handle] = OrderedDict()
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self._empty_files_created = False
        #: Pieces known to be on disk intact: checked, or written (and so verified by the
        #: caller); what :meth:`save_resume` records.
        self._good = bytearray(self.piece_count)

    def _check_v2_alignment(self) -> None:
        """BEP 52: "each non-empty file is aligned to a piece boundary"; without that the v2
        hashes cannot be checked piece by piece."""
        for f in self.files:
            if f.length and not f.is_padding and f.offset % self.piece_size:
                raise StorageError(f"{f.path_text!r} does not start on a piece boundary")

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- hash checks -----------------------------------------------------------------------

    def add_piece_layer(self, pieces_root: bytes, hashes: Sequence[bytes]) -> None:
        """Accept the piece layer of a file (BEP 52 ``hashes`` message, or a magnet's
        metadata lacking ``piece layers``) once it hashes up to the file's ``pieces root``."""
        sizes = {f.length for f in self.files
                 if f.pieces_root == pieces_root and f.length > self.piece_size}
        if not sizes:
            raise StorageError("no file larger than a piece has this pieces root")
        count = -(-sizes.pop() // self.piece_size)
        if len(hashes) != count or any(len(h) != 32 for h in hashes):
            raise StorageError(f"a piece layer of this file is {count} hashes of 32 bytes")
        if piece_layer_root(hashes, self.piece_size) != pieces_root:
            raise StorageError("piece layer does not hash to its pieces root")
        self.piece_layers[pieces_root] = tuple(hashes)

    def verify(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """True when ``data`` is piece ``index``: right length, and every hash the torrent has
        for it (v1 SHA-1, v2 merkle, both for hybrid) matches."""
        spans = self.spans(index)
        if len(data) != sum(span.length for span in spans):
            return False
        if self.metainfo.has_v1 and hashlib.sha1(data).digest() != self.metainfo.pieces[index]:
            return False
        if self.metainfo.has_v2:
            view = memoryview(data)
            for span in spans:
                if span.file.pieces_root is not None and not self._verify_v2(span, view):
                    return False
        return True

    def _verify_v2(self, span: FileSpan, view: memoryview) -> bool:
        data = view[span.piece_offset:span.piece_offset + span.length]
        leaves = [hashlib.sha256(data[b:b + BLOCK_SIZE]).digest()
                  for b in range(0, len(data), BLOCK_SIZE)]
        root = span.file.pieces_root
        assert root is not None
        if span.file.length <= self.piece_size:
            return merkle_root(leaves) == root
        layer = self.piece_layers.get(root)
        if layer is None:
            if self.metainfo.has_v1:
                # A hybrid torrent from a magnet link: BEP 9 metadata has no piece layers. The
                # v1 SHA-1 (checked first) already binds the piece to the info-hash.
                return True
            raise StorageError(f"no piece layer for {span.file.path_text!r}")
        expected = layer[span.offset // self.piece_size]
        return merkle_root(leaves, width=self.piece_size // BLOCK_SIZE) == expected

    # -- reading and writing ---------------------------------------------------------------

    def read(self, index: int, begin: int, length: int) -> bytes:
        """``length`` bytes of piece ``index`` from ``begin`` (a block to upload)."""
        spans = self.spans(index)
        piece_length = sum(span.length for span in spans)
        if begin < 0 or length < 0 or begin + length > piece_length:
            raise StorageError(f"bytes {begin}..{begin + length} are outside piece {index} "
                               f"({piece_length} bytes)")
        out = bytearray(length)
        view = memoryview(out)
        stop = begin + length
        with self._lock:
            for span in spans:
                a = max(begin, span.piece_offset)
                b = min(stop, span.piece_offset + span.length)
                if b <= a or span.file.is_padding:
                    continue  # out was allocated as zeros: padding needs nothing
                offset = span.offset + a - span.piece_offset
                try:
                    got = _pread_into(self._fd(span.file_index), view[a - begin:b - begin],
                                      offset)
                except OSError as e:
                    raise self._error(span.file_index, e) from None
                if got < b - a:
                    raise StorageError(f"{self.paths[span.file_index]}: ends before byte "
                                       f"{offset + b - a}")
        return bytes(out)

    def read_piece(self, index: int) -> bytes:
        """The whole of piece ``index`` as it is on disk."""
        return self.read(index, 0, self.piece_length(index))

    def write(self, index: int, data: bytes | bytearray | memoryview) -> None:
        """Write piece ``index`` (already checked with :meth:`verify`) into its files."""
        spans = self.spans(index)
        if len(data) != sum(span.length for span in spans):
            raise StorageError(f"piece {index} is {sum(s.length for s in spans)} bytes, "
                               f"not {len(data)}")
        view = memoryview(data)
        with self._lock:
            if not self._empty_files_created:
                self._create_empty_files()
            for span in spans:
                if span.file.is_padding:
                    continue
                try:
                    fd = self._fd(span.file_index, write=True)
                    _pwrite_all(fd, view[span.piece_offset:span.piece_offset + span.length],
                                span.offset)
                except OSError as e:
                    raise self._error(span.file_index, e) from None
                self._dirty.add(span.file_index)
            self._good[index] = 1

    def _create_empty_files(self) -> None:
        """Zero-length files have no piece; they appear with the torrent's first write."""
        for i, f in enumerate(self.files):
            if f.length == 0 and not f.is_padding and "l" not in f.attr:
                try:
                    self._fd(i, write=True)
                except OSError as e:
                    raise self._error(i, e) from None
        self._empty_files_created = True

    def flush(self) -> None:
        """Make every write so far durable (``fsync`` of each file written to)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        for i in sorted(self._dirty):
            try:
                os.fsync(self._fd(i, write=True))
            except OSError as e:
                raise self._error(i, e) from None
        self._dirty.clear()

    def close(self) -> None:
        """Close every open file (without ``fsync``: call :meth:`flush` for durability)."""
        with self._lock:
            while self._open:
                _, handle = self._open.popitem()
                os.close(handle.fd)

    # -- resume ----------------------------------------------------------------------------

    def check(self, progress: Progress | None = None) -> bytearray:
        """Re-read the files and verify every piece: ``have[i]`` is 1 when piece ``i`` on disk
        passes its hash check, else 0 (one byte per piece, as
        :mod:`p2pkit.bittorrent.wire.bitfield`). Missing or short files make their pieces missing,
        and so does a missing piece layer (the piece cannot be checked yet).

        Reads one piece at a time into one buffer. ``progress(done, total)`` is called after
        each piece.
        """
        sizes = [f.length if f.is_padding else stat.st_size if stat else -1
                 for f, stat in zip(self.files, self._file_stats())]
        buffer = bytearray(self.piece_size)
        have = bytearray(self.piece_count)
        for index in range(self.piece_count):
            have[index] = self._check_piece(index, buffer, sizes)
            if progress is not None:
                progress(index + 1, self.piece_count)
        self._good = bytearray(have)
        return have

    def _file_stats(self) -> list[os.stat_result | None]:
        """Each file's status; ``None`` for a missing file and for padding (never on disk)."""
        stats: list[os.stat_result | None] = []
        for f, path in zip(self.files, self.paths):
            try:
                stats.append(None if f.is_padding else os.stat(path))
            except OSError:
                stats.append(None)
        return stats

    def _fingerprint(self) -> list[list[int]]:
        """Size and modification time (ns) of every file, ``[-1, -1]`` when absent."""
        return [[s.st_size, s.st_mtime_ns] if s else [-1, -1] for s in self._file_stats()]

    def save_resume(self, path: str | os.PathLike[str]) -> None:
        """Record the pieces known good (checked or written) for a fast restart.

        The data is ``fsync`` ed first, then the record is written to a temporary file,
        ``fsync`` ed and renamed over ``path``: a crash leaves the old record or the new one.
        """
        with self._lock:  # no write may slip in between the fsync and the snapshot
            self._flush_locked()
            record = encode({
                b"info-hash": self.metainfo.info_hash,
                b"pieces": bytes(self._good),
                b"files": self._fingerprint(),
            })
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        try:
            with open(temporary, "wb") as out:
                out.write(record)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as e:
            raise StorageError(f"{target}: {e.strerror or e}") from None

    def load_resume(self, path: str | os.PathLike[str]) -> bytearray | None:
        """The pieces a :meth:`save_resume` record vouches for, or ``None`` when it is missing,
        unreadable, for another torrent, or any file's size or modification time has changed
        since (then run :meth:`check`)."""
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_RESUME_SIZE + 1)
            record = decode(data)
        except (OSError, P2PKitError):
            return None
        if len(data) > MAX_RESUME_SIZE or not isinstance(record, dict):
            return None
        pieces = record.get(b"pieces")
        if (record.get(b"info-hash") != self.metainfo.info_hash
                or not isinstance(pieces, bytes) or len(pieces) != self.piece_count
                or pieces.strip(b"\x00\x01") or record.get(b"files") != self._fingerprint()):
            return None
        self._good = bytearray(pieces)
        return bytearray(pieces)

    def _check_piece(self, index: int, buffer: bytearray, sizes: list[int]) -> bool:
        spans = self.spans(index)
        if any(sizes[s.file_index] < s.offset + s.length for s in spans):
            return False
        length = sum(span.length for span in spans)
        view = memoryview(buffer)[:length]
        with self._lock:
            for span in spans:
                target = view[span.piece_offset:span.piece_offset + span.length]
                if span.file.is_padding:
                    target[:] = bytes(span.length)
                    continue
                try:
                    if _pread_into(self._fd(span.file_index), target, span.offset) < span.length:
                        return False
                except OSError:
                    return False
        try:
            return self.verify(index, view)
        except StorageError:  # no piece layer for this file yet
            return False

    # -- file descriptors ------------------------------------------------------------------

    def _fd(self, file_index: int, *, write: bool = False) -> int:
        """An open descriptor for a file (created, with its directories, when writing)."""
        handle = self._open.get(file_index)
        if handle is not None and (handle.writable or not write):
            self._open.move_to_end(file_index)
            return handle.fd
        if handle is not None:
            del self._open[file_index]
            os.close(handle.fd)
        path = self.paths[file_index]
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            # BEP 47: "x = executable" (the umask still applies).
            mode = 0o777 if "x" in self.files[file_index].attr else 0o666
            fd = os.open(path, os.O_RDWR | os.O_CREAT, mode)
        else:
            fd = os.open(path, os.O_RDONLY)
        self._open[file_index] = _Handle(fd, write)
        while len(self._open) > MAX_OPEN_FILES:
            _, evicted = self._open.popitem(last=False)
            os.close(evicted.fd)
        return fd

    def _error(self, file_index: int, error: OSError) -> StorageError:
        return StorageError(f"{self.paths[file_index]}: {error.strerror or error}")


def _safe_component(component: str) -> str:
    """A path component that stays inside the torrent's directory (BEP 52: "path components
    exactly matching '.' and '..' must be sanitized since they could lead to directory
    traversal attacks"); rejected rather than renamed."""
    if (component in ("", ".", "..") or "/" in component or "\\" in component
            or "\x00" in component or os.path.isabs(component)):
        raise StorageError(f"unsafe path component {component!r}")
    return component


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``; fewer bytes than asked only at the end of the file."""
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            break
        done += n
    return done


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
