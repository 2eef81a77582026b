"""Creating .torrent files: BEP 3 (v1), BEP 52 (v2 and hybrid), BEP 47 padding, BEP 12, BEP 19.

* v1 (BEP 3 §info dictionary): "``pieces`` maps to a string whose length is a multiple of 20.
  It is to be subdivided into strings of length 20, each of which is the SHA1 hash of the piece";
  files are laid end to end in the order listed.
* v2 (BEP 52 §file tree): each file gets the root of a SHA-256 merkle tree "constructed from
  16KiB blocks of the file", leaves beyond the end of the file set to zero; files larger than a
  piece also get their hashes at piece level in ``piece layers``.
* hybrid (BEP 52 §Upgrade Path): both, in the same order, with BEP 47 padding files
  (``attr`` ``p``, path ``.pad/N``) after every file that does not end on a piece boundary, so v1
  pieces line up with v2 pieces. As libtorrent 2.x does, the last file is padded too, which makes
  the info-hashes equal to libtorrent's for the same content.

Output is deterministic: files sorted by path (the order of a v2 file tree), no ``creation
date`` unless one is given.

>>> data = create_from_contents("hello.txt", b"hello world", version="hybrid")
>>> from p2pkit.bittorrent.wire.metainfo import Metainfo
>>> meta = Metainfo.parse(data)
>>> meta.version, meta.piece_length, [f.length for f in meta.files]
('hybrid', 16384, [11])
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from p2pkit.bencode import encode
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, merkle_root, piece_layer_root
from p2pkit.errors import BuildError

__all__ = [
    "MAX_PIECE_LENGTH",
    "MIN_PIECE_LENGTH",
    "choose_piece_length",
    "create_from_contents",
    "create_torrent",
]

PROTOCOL = "metainfo"
#: BEP 52: piece length "must be a power of two and at least 16KiB" (used for v1 too).
MIN_PIECE_LENGTH = BLOCK_SIZE
#: Largest piece length offered (a piece is held in memory while it is hashed).
MAX_PIECE_LENGTH = 64 * 1024 * 1024
#: :func:`choose_piece_length` aims for at most this many pieces.
TARGET_PIECES = 2048

TorrentVersion = Literal["v1", "v2", "hybrid"]
Trackers = Sequence[str | Sequence[str]]


@dataclass(frozen=True, kw_only=True)
class SourceFile:
    """One file to put in a torrent: its path inside the torrent and how to read it."""

    path: tuple[str, ...]
    length: int
    open: Callable[[], BinaryIO]


def choose_piece_length(total_length: int) -> int:
    """The smallest power of two >= 16 KiB that keeps the piece count at most 2048.

    >>> choose_piece_length(1), choose_piece_length(2 * 1024 * 1024 * 1024)
    (16384, 1048576)
    """
    length = MIN_PIECE_LENGTH
    while length < MAX_PIECE_LENGTH and -(-total_length // length) > TARGET_PIECES:
        length *= 2
    return length


def create_torrent(
    path: str | os.PathLike[str],
    *,
    version: TorrentVersion = "v1",
    piece_length: int | None = None,
    trackers: Trackers = (),
    web_seeds: Sequence[str] = (),
    comment: str | None = None,
    created_by: str | None = None,
    creation_date: int | None = None,
    private: bool = False,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The bytes of a .torrent for the file or directory at ``path``.

    A directory becomes a multi-file torrent named after it (its regular files, recursively;
    symbolic links are not followed). ``trackers`` lists tiers: a string is a tier of one URL.
    ``progress`` is called with the number of bytes hashed as hashing goes.
    """
    root = Path(path)
    try:
        st = root.stat()
    except OSError as e:
        raise BuildError(f"{path}: {e.strerror or e}", protocol=PROTOCOL) from None
    if stat.S_ISDIR(st.st_mode):
        files = list(_directory_files(root))
        multi_file = True
    elif stat.S_ISREG(st.st_mode):
        files = [SourceFile(path=(name or root.name,), length=st.st_size,
                            open=lambda: root.open("rb"))]
        multi_file = False
    else:
        raise BuildError(f"{path}: not a regular file or directory", protocol=PROTOCOL)
    return _build(name or root.resolve().name, files, multi_file, version=version,
                  piece_length=piece_length, trackers=trackers, web_seeds=web_seeds,
                  comment=comment, created_by=created_by, creation_date=creation_date,
                  private=private, progress=progress)


def create_from_contents(
    name: str,
    contents: bytes | Mapping[str | tuple[str, ...], bytes],
    **options: Any,
) -> bytes:
    """A .torrent for in-memory content: ``bytes`` for one file, or a mapping of paths
    (``"dir/file"`` or a tuple of components) to bytes for a multi-file torrent named ``name``.

    Takes the same keyword options as :func:`create_torrent`.

    >>> from p2pkit.bittorrent.wire.metainfo import Metainfo
    >>> meta = Metainfo.parse(create_from_contents("d", {"a": b"x", "b/c": b"yz"}, version="v2"))
    >>> [f.path for f in meta.files]
    [('a',), ('b', 'c')]
    """
    if isinstance(contents, (bytes, bytearray)):
        blob = bytes(contents)
        files = [SourceFile(path=(name,), length=len(blob), open=lambda: io.BytesIO(blob))]
        return _build(name, files, False, **options)
    files = []
    for key, blob in contents.items():
        parts = tuple(key.split("/")) if isinstance(key, str) else tuple(key)
        files.append(SourceFile(path=parts, length=len(blob),
                                open=lambda blob=bytes(blob): io.BytesIO(blob)))
    return _build(name, files, True, **options)


def _directory_files(root: Path) -> Iterable[SourceFile]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for filename in filenames:
            full = base / filename
            st = full.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            parts = full.relative_to(root).parts
            yield SourceFile(path=parts, length=st.st_size,
                             open=lambda full=full: full.open("rb"))


def _raw(component: str) -> bytes:
    """Path components as the bytes the file system gave (``os.fsdecode`` round trip)."""
    return component.encode("utf-8", "surrogateescape")


def _build(
    name: str,
    files: list[SourceFile],
    multi_file: bool,
    *,
    version: TorrentVersion = "v1",
    piece_length: int | None = None,
    trackers: Trackers = (),
    web_seeds: Sequence[str] = (),
    comment: str | None = None,
    created_by: str | None = None,
    creation_date: int | None = None,
    private: bool = False,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    if version not in ("v1", "v2", "hybrid"):
        raise BuildError(f"unknown torrent version {version!r}", protocol=PROTOCOL)
    if not files:
        raise BuildError("no files to put in the torrent", protocol=PROTOCOL)
    for f in files:
        if not f.path or any(p in ("", ".", "..") or "/" in p for p in f.path):
            raise BuildError(f"unsafe path {f.path!r}", protocol=PROTOCOL)
    # Sorted by raw path components: the order of a v2 file tree (BEP 52 §file tree).
    files = sorted(files, key=lambda f: [_raw(p) for p in f.path])
    paths = {f.path for f in files}
    if len(paths) != len(files):
        raise BuildError("two files have the same path", protocol=PROTOCOL)
    for f in files:
        for depth in range(1, len(f.path)):
            if f.path[:depth] in paths:
                # BEP 52: a file entry "must not have any sibling entries".
                raise BuildError(f"{'/'.join(f.path[:depth])} is both a file and a directory",
                                 protocol=PROTOCOL)
    total = sum(f.length for f in files)
    if piece_length is None:
        piece_length = choose_piece_length(total)
    if (piece_length < MIN_PIECE_LENGTH or piece_length > MAX_PIECE_LENGTH
            or piece_length & (piece_length - 1)):
        raise BuildError(f"piece length {piece_length} is not a power of two between "
                         f"{MIN_PIECE_LENGTH} and {MAX_PIECE_LENGTH}", protocol=PROTOCOL,
                         path="piece length")
    hasher = _Hasher(piece_length, v1=version != "v2", v2=version != "v1",
                     pad=version == "hybrid" and multi_file, progress=progress)
    for f in files:
        hasher.add_file(f)
    info: dict[str, Any] = {"name": name, "piece length": piece_length}
    if private:
        info["private"] = 1
    top: dict[str, Any] = {}
    if version != "v1":
        info["meta version"] = 2
        info["file tree"] = hasher.file_tree()
        if hasher.layers:
            top["piece layers"] = hasher.layers
    if version != "v2":
        info["pieces"] = hasher.v1_pieces()
        if multi_file:
            info["files"] = hasher.v1_files
        else:
            info["length"] = files[0].length
    tiers = [[t] if isinstance(t, str) else list(t) for t in trackers]
    tiers = [t for t in tiers if t]
    if tiers:
        top["announce"] = tiers[0][0]
        if len(tiers) > 1 or len(tiers[0]) > 1:
            top["announce-list"] = tiers
    if web_seeds:
        top["url-list"] = list(web_seeds)
    if comment is not None:
        top["comment"] = comment
    if created_by is not None:
        top["created by"] = created_by
    if creation_date is not None:
        top["creation date"] = creation_date
    top["info"] = info
    return encode(top)


def _read_piece(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes, short only at the end (raw streams may return less per read)."""
    parts = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


class _Hasher:
    """Hashes files in piece order: v1 SHA-1 pieces, v2 merkle roots and piece layers."""

    def __init__(self, piece_length: int, *, v1: bool, v2: bool, pad: bool,
                 progress: Callable[[int], None] | None) -> None:
        self.piece_length = piece_length
        self.v1, self.v2, self.pad = v1, v2, pad
        self.progress = progress
        self.pieces: list[bytes] = []
        self.piece = hashlib.sha1()
        self.piece_fill = 0
        self.v1_files: list[dict[str, Any]] = []
        self.roots: list[tuple[SourceFile, bytes | None]] = []
        self.layers: dict[bytes, bytes] = {}

    def _feed_v1(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = min(len(view), self.piece_length - self.piece_fill)
            self.piece.update(view[:n])
            self.piece_fill += n
            view = view[n:]
            if self.piece_fill == self.piece_length:
                self.pieces.append(self.piece.digest())
                self.piece = hashlib.sha1()
                self.piece_fill = 0

    def v1_pieces(self) -> bytes:
        if self.piece_fill:
            self.pieces.append(self.piece.digest())
            self.piece = hashlib.sha1()
            self.piece_fill = 0
        return b"".join(self.pieces)

    def add_file(self, f: SourceFile) -> None:
        pl = self.piece_length
        layer: list[bytes] = []
        blocks: list[bytes] = []
        done = 0
        try:
            with f.open() as stream:
                while True:
                    chunk = _read_piece(stream, pl)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > f.length:
                        break
                    if self.v1:
                        self._feed_v1(chunk)
                    if self.v2:
                        blocks = [hashlib.sha256(chunk[i:i + BLOCK_SIZE]).digest()
                                  for i in range(0, len(chunk), BLOCK_SIZE)]
                        if f.length > pl:
                            # One piece-layer hash: the piece's blocks padded to a full piece.
                            layer.append(merkle_root(blocks, width=pl // BLOCK_SIZE))
                    if self.progress is not None:
                        self.progress(len(chunk))
        except OSError as e:
            raise BuildError(f"{'/'.join(f.path)}: {e.strerror or e}",
                             protocol=PROTOCOL) from None
        if done != f.length:
            raise BuildError(f"{'/'.join(f.path)}: changed while hashing "
                             f"({done} bytes read, {f.length} expected)", protocol=PROTOCOL)
        raw_path = [_raw(p) for p in f.path]
        self.v1_files.append({"length": f.length, "path": raw_path})
        root = None
        if self.v2 and f.length:
            if f.length > pl:
                root = piece_layer_root(layer, pl)
                self.layers[root] = b"".join(layer)
            else:
                root = merkle_root(blocks)
        self.roots.append((f, root))
        remainder = f.length % pl
        if self.pad and remainder:
            # BEP 47: "Padding files are synthetic files inserted into the file list to let the
            # following file start at a piece boundary [...] the content of padding file is all
            # zeros"; recommended path [".pad", "N"].
            n = pl - remainder
            self.v1_files.append({"attr": b"p", "length": n, "path": [b".pad", b"%d" % n]})
            self._feed_v1(bytes(n))

    def file_tree(self) -> dict[bytes, Any]:
        tree: dict[bytes, Any] = {}
        for f, root in self.roots:
            node = tree
            for part in f.path:
                node = node.setdefault(_raw(part), {})
            entry: dict[str, Any] = {"length": f.length}
            if root is not None:
                entry["pieces root"] = root
            node[b""] = entry
        return tree
