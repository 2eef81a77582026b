"""Metainfo (.torrent) files: BEP 3 §metainfo files, BEP 52 §metainfo files, BEP 47, 12, 19.

A metainfo file is a bencoded dictionary whose ``info`` value names the content and hashes it:

* **v1** (BEP 3): ``pieces`` holds the SHA-1 of each ``piece length`` bytes of the files laid end
  to end, described by ``length`` (one file) or ``files`` (a list of ``length``/``path``);
* **v2** (BEP 52): ``meta version`` 2 and a ``file tree`` whose files carry the root of a SHA-256
  merkle tree over 16 KiB blocks (``pieces root``); the hashes at piece level live outside the
  info dictionary in ``piece layers``;
* **hybrid** (BEP 52 §Upgrade Path): both, with BEP 47 padding files in the v1 ``files`` list so
  that both describe "the same data in the same order".

BEP 52 §infohash: "The info-hash must be the hash of the encoded form as found in the .torrent
file". Info-hashes here are computed over the exact bytes of the ``info`` value, found with
:func:`p2pkit.bencode.top_level_spans` (never over a re-encoding).

>>> from pathlib import Path
>>> data = (Path(__file__).parents[2] / "data" / "libtorrent-v2.torrent").read_bytes()
>>> meta = Metainfo.parse(data)
>>> meta.name, meta.version, meta.piece_length, meta.piece_count
('payload-v2.bin', 'v2', 32768, 64)
>>> meta.info_hash_v2.hex()
'53a4c27da212ea02bba649b6bc62c681e0ba1a49bb46cf5e3ff543eee19398a9'

Strict parsing (:meth:`Metainfo.parse`) raises :class:`~p2pkit.errors.ParseError` (protocol
``"metainfo"``, the field path and the byte offset of the bad value); lenient parsing
(:meth:`Metainfo.parse_lenient`) reports each rule a file bends as a
:class:`~p2pkit.deviations.Deviation` and fails only when the file cannot be understood.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from p2pkit.bencode import decode_lenient, decode_prefix, top_level_spans
from p2pkit.deviations import Deviation, Level
from p2pkit.errors import LimitExceeded, ParseError

__all__ = [
    "BLOCK_SIZE",
    "MAX_DEVIATIONS",
    "MAX_FILES",
    "MAX_METAINFO_SIZE",
    "FileEntry",
    "Metainfo",
    "MetainfoDissection",
    "merkle_root",
    "pad_hash",
    "piece_layer_root",
]

PROTOCOL = "metainfo"
#: Largest .torrent accepted, checked before decoding (real ones with 100k files are ~20 MiB).
MAX_METAINFO_SIZE = 64 * 1024 * 1024
#: Most files (including padding files) accepted in one torrent.
MAX_FILES = 1_000_000
#: Most deviations a lenient parse lists (the rest are counted in one last deviation).
MAX_DEVIATIONS = 1000
#: BEP 52: "a merkle tree with a branching factor of 2, constructed from 16KiB blocks".
BLOCK_SIZE = 16 * 1024
#: BEP 52: "The remaining leaf hashes beyond the end of the file [...] are set to zero."
ZERO_HASH = bytes(32)

BEP3 = "BEP 3 §metainfo files"
BEP12 = "BEP 12 §announce-list"
BEP19 = "BEP 19 §metadata extension"
BEP47 = "BEP 47 §padding files"
BEP52 = "BEP 52 §metainfo files"
BEP52_TREE = "BEP 52 §file tree"
BEP52_LAYERS = "BEP 52 §piece layers"
BEP52_UPGRADE = "BEP 52 §upgrade path"

Version = Literal["v1", "v2", "hybrid"]
PathStep = bytes | int


# ---------------------------------------------------------------------------------------------
# BEP 52 merkle trees


def pad_hash(level: int) -> bytes:
    """The root of a subtree of ``2**level`` zero leaves (BEP 52: padding beyond the file's end).

    >>> pad_hash(0) == ZERO_HASH
    True
    >>> pad_hash(1) == hashlib.sha256(bytes(64)).digest()
    True
    """
    h = ZERO_HASH
    for _ in range(level):
        h = hashlib.sha256(h + h).digest()
    return h


def merkle_root(leaves: Sequence[bytes], *, pad: bytes = ZERO_HASH, width: int | None = None
                ) -> bytes:
    """The root of a binary SHA-256 tree over ``leaves``, padded to ``width`` leaves with ``pad``.

    ``width`` defaults to the next power of two (BEP 52: "a merkle tree with a branching factor
    of 2"); a single leaf is its own root.

    >>> a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    >>> merkle_root([a, b]) == hashlib.sha256(a + b).digest()
    True
    >>> merkle_root([a]) == a
    True
    """
    if width is None:
        width = 1 << max(len(leaves) - 1, 0).bit_length()
    layer = list(leaves)
    while width > 1:
        if len(layer) % 2:
            layer.append(pad)
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        pad = hashlib.sha256(pad + pad).digest()
        width //= 2
    return layer[0] if layer else pad


def piece_layer_root(layer: Sequence[bytes], piece_length: int) -> bytes:
    """The ``pieces root`` that a piece layer hashes up to (BEP 52 §piece layers).

    Each layer hash covers ``piece_length`` bytes; the tree above them is padded with the hash
    of a piece-sized run of zero blocks.

    >>> leaves = [hashlib.sha256(bytes([i]) * BLOCK_SIZE).digest() for i in range(4)]
    >>> layer = [merkle_root(leaves[:2]), merkle_root(leaves[2:])]
    >>> piece_layer_root(layer, 2 * BLOCK_SIZE) == merkle_root(leaves)
    True
    """
    level = (piece_length // BLOCK_SIZE).bit_length() - 1
    return merkle_root(layer, pad=pad_hash(level))


# ---------------------------------------------------------------------------------------------
# Parsed values


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One file of a torrent, in the order of the piece address space.

    ``path`` is relative to the torrent's root directory (BEP 3 ``path``; in a single-file v1
    torrent it is ``(name,)``). ``offset`` is where the file starts in the piece address space.

    >>> FileEntry(path=(".pad", "7"), length=7, offset=9, attr="p").is_padding
    True
    """

    path: tuple[str, ...]
    length: int
    offset: int = 0
    #: BEP 47 ``attr``: p = padding file, x = executable, h = hidden, l = symlink.
    attr: str = ""
    #: BEP 52 ``pieces root`` (SHA-256 merkle root), ``None`` for empty files and in v1 torrents.
    pieces_root: bytes | None = None
    #: BEP 47 ``sha1`` of the file's content, a deduplication hint.
    sha1: bytes | None = None
    #: BEP 47 ``symlink path`` when ``attr`` has ``l``.
    symlink_path: tuple[str, ...] | None = None

    @property
    def is_padding(self) -> bool:
        """BEP 47: "p = padding file"."""
        return "p" in self.attr

    @property
    def path_text(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, kw_only=True)
class Metainfo:
    """A parsed .torrent: v1, v2 or hybrid (see the module docstring for an example)."""

    name: str
    piece_length: int
    #: Every file in piece-space order, BEP 47 padding files included (v1 ``files`` order for v1
    #: and hybrid torrents, ``file tree`` order for v2-only ones).
    files: tuple[FileEntry, ...]
    #: v1 ``pieces``: the SHA-1 of each piece (empty for a v2-only torrent).
    pieces: tuple[bytes, ...] = ()
    #: v2 ``piece layers``: pieces root -> SHA-256 hash of each piece of that file.
    piece_layers: dict[bytes, tuple[bytes, ...]] = field(default_factory=dict, hash=False)
    #: BEP 52 ``meta version`` (2), ``None`` for a v1 torrent.
    meta_version: int | None = None
    #: True when the content is a directory (v1 ``files``, or a v2 tree that is not one file).
    multi_file: bool = False
    #: BEP 27 ``private`` flag.
    private: bool = False
    announce: str | None = None
    #: BEP 12 ``announce-list``: tiers of tracker URLs.
    announce_list: tuple[tuple[str, ...], ...] = ()
    #: BEP 19 ``url-list``: web seeds.
    web_seeds: tuple[str, ...] = ()
    creation_date: int | None = None
    comment: str | None = None
    created_by: str | None = None
    #: SHA-1 of the info dictionary's bytes (v1 and hybrid torrents).
    info_hash_v1: bytes | None = None
    #: SHA-256 of the info dictionary's bytes (v2 and hybrid torrents).
    info_hash_v2: bytes | None = None
    #: The info dictionary exactly as found in the file (what BEP 9 transfers as metadata).
    info_bytes: bytes = field(default=b"", repr=False)

    @property
    def has_v1(self) -> bool:
        return self.info_hash_v1 is not None

    @property
    def has_v2(self) -> bool:
        return self.info_hash_v2 is not None

    @property
    def version(self) -> Version:
        if self.has_v1 and self.has_v2:
            return "hybrid"
        return "v2" if self.has_v2 else "v1"

    @property
    def info_hash_v2_truncated(self) -> bytes | None:
        """BEP 52: "For some uses as torrent identifier it is truncated to 20 bytes"."""
        return None if self.info_hash_v2 is None else self.info_hash_v2[:20]

    @property
    def info_hash(self) -> bytes:
        """The 20 bytes a handshake, tracker or DHT uses: v1, else the truncated v2 hash."""
        if self.info_hash_v1 is not None:
            return self.info_hash_v1
        assert self.info_hash_v2 is not None
        return self.info_hash_v2[:20]

    @property
    def total_length(self) -> int:
        """Bytes of content (padding files excluded)."""
        return sum(f.length for f in self.files if not f.is_padding)

    @property
    def piece_count(self) -> int:
        if self.pieces:
            return len(self.pieces)
        return sum(_ceil_div(f.length, self.piece_length) for f in self.files if not f.is_padding)

    @property
    def trackers(self) -> tuple[tuple[str, ...], ...]:
        """Tracker tiers: BEP 12 ``announce-list`` when present, else ``announce`` alone."""
        if self.announce_list:
            return self.announce_list
        return ((self.announce,),) if self.announce else ()

    @classmethod
    def parse(cls, data: bytes) -> Metainfo:
        """Parse a .torrent strictly: any broken MUST of BEP 3/12/47/52 raises ParseError."""
        return _Reader(data, strict=True).metainfo()

    @classmethod
    def parse_lenient(cls, data: bytes) -> MetainfoDissection:
        """Parse what real files contain, listing each deviation (for dissection)."""
        reader = _Reader(data, strict=False)
        meta = reader.metainfo()
        if reader.untold:
            reader.deviations.append(Deviation(
                offset=0, rule="metainfo/deviations/truncated", spec=BEP3, level="MAY",
                message=f"{reader.untold} more deviations not listed"))
        return MetainfoDissection(metainfo=meta, deviations=tuple(reader.deviations))

    @classmethod
    def parse_info(cls, info_bytes: bytes) -> Metainfo:
        """Parse a bare info dictionary (BEP 9 metadata): no trackers, no piece layers needed.

        >>> info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
        >>> meta = Metainfo.parse_info(info)
        >>> meta.files[0].path, meta.info_hash_v1 == hashlib.sha1(info).digest()
        (('x',), True)
        """
        return _Reader(info_bytes, strict=True, info_only=True).metainfo()


@dataclass(frozen=True, kw_only=True)
class MetainfoDissection:
    """A lenient parse: the metainfo and every deviation found (bencoding included)."""

    metainfo: Metainfo
    deviations: tuple[Deviation, ...] = ()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# The reader: decoded bencoding -> Metainfo, with field paths and byte offsets for errors


def path_label(path: Sequence[PathStep]) -> str:
    """``("info", "files", 3, "path")`` as ``info -> files[3] -> path``."""
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            if out:
                out[-1] += f"[{step}]"
            else:
                out.append(f"[{step}]")
        else:
            out.append(_key_text(step))
    return " -> ".join(out)


def _key_text(key: bytes) -> str:
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + key.hex()
    return text if text.isprintable() else "0x" + key.hex()


def locate(data: bytes, path: Sequence[PathStep]) -> int:
    """Byte offset of the value at ``path`` (or of the deepest container found on the way).

    Uses the bencode codec itself (``top_level_spans`` for dictionaries, ``decode_prefix`` to
    step over list items), so offsets agree with what the decoder saw.

    >>> locate(b"d4:infod5:filesld6:lengthi1eeeee", [b"info", b"files", 0, b"length"])
    25
    """
    return _Locator(data).locate(path)


class _Locator:
    """Offsets of values inside one input; each container is scanned once, then remembered,
    so locating many deviations in a large torrent stays linear."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.children: dict[int, dict[bytes, int] | list[int]] = {}

    def locate(self, path: Sequence[PathStep]) -> int:
        pos = 0
        for step in path:
            children = self.children.get(pos)
            if children is None:
                children = self.children[pos] = self._scan(pos)
            if isinstance(step, int):
                if not isinstance(children, list) or step >= len(children):
                    break
                pos = children[step]
            else:
                if not isinstance(children, dict) or step not in children:
                    break
                pos = children[step]
        return pos

    def _scan(self, pos: int) -> dict[bytes, int] | list[int]:
        data = self.data
        try:
            if data[pos:pos + 1] == b"d":
                return {k: pos + start for k, (start, _) in top_level_spans(data[pos:]).items()}
            if data[pos:pos + 1] == b"l":
                starts = []
                p = pos + 1
                while data[p:p + 1] not in (b"e", b""):
                    starts.append(p)
                    _, p = decode_prefix(data, p, strict=False)
                return starts
        except ParseError:
            pass
        return []


class _Reader:
    """One parse: the input, the mode and the deviations found so far."""

    def __init__(self, data: bytes, *, strict: bool, info_only: bool = False) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ParseError(f"expected bytes, got {type(data).__name__}", protocol=PROTOCOL)
        self.data = bytes(data)
        self.strict = strict
        self.info_only = info_only
        self.locator = _Locator(self.data)
        self.deviations: list[Deviation] = []
        #: Deviations past MAX_DEVIATIONS, counted but not recorded.
        self.untold = 0
        # In info-only mode the input is the info dictionary itself.
        self.info_prefix: tuple[PathStep, ...] = () if info_only else (b"info",)

    # -- reporting ---------------------------------------------------------------------------

    def fail(self, reason: str, path: Sequence[PathStep]) -> ParseError:
        return ParseError(reason, protocol=PROTOCOL, path=path_label(path),
                          offset=self.locator.locate(path))

    def deviate(self, rule: str, message: str, path: Sequence[PathStep], spec: str,
                level: Level = "MUST") -> None:
        """Strict mode raises on a broken MUST; lenient mode records every deviation."""
        if self.strict:
            if level == "MUST":
                raise self.fail(message, path)
            return
        if len(self.deviations) >= MAX_DEVIATIONS:
            # Locating each of a million bad paths would take quadratic time: count the rest.
            self.untold += 1
            return
        self.deviations.append(Deviation(offset=self.locator.locate(path), rule=rule,
                                         message=f"{path_label(path)}: {message}", spec=spec,
                                         level=level))

    # -- typed access ------------------------------------------------------------------------

    def get(self, d: dict, key: bytes, path: tuple[PathStep, ...], kind: type, *,
            required: bool = False, spec: str = BEP3) -> Any:
        """``d[key]`` checked to be of ``kind``; ``None`` when absent (or wrong, when lenient)."""
        if key not in d:
            if required:
                raise self.fail(f"missing required key {_key_text(key)!r}", path)
            return None
        value = d[key]
        if not isinstance(value, kind):
            want = {bytes: "a string", int: "an integer", list: "a list", dict: "a dictionary"}
            message = f"must be {want[kind]}, not {_type_name(value)}"
            if required:
                raise self.fail(message, (*path, key))
            self.deviate("metainfo/type", message, (*path, key), spec)
            return None
        return value

    def text(self, value: bytes, path: Sequence[PathStep], *, spec: str = BEP3,
             level: Level = "MUST") -> str:
        """BEP 3: "All strings in a .torrent file that contains text must be UTF-8 encoded"."""
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            self.deviate("metainfo/text/not-utf-8", "text is not valid UTF-8", path, spec, level)
            return value.decode("utf-8", "replace")

    # -- top level ---------------------------------------------------------------------------

    def metainfo(self) -> Metainfo:
        data = self.data
        if len(data) > MAX_METAINFO_SIZE:
            raise LimitExceeded(f"{len(data)} bytes is more than {MAX_METAINFO_SIZE}",
                                protocol=PROTOCOL, offset=0)
        try:  # one pass: the value, its deviations and where "info" lies
            result = decode_lenient(data, strict=self.strict, spans=True)
        except ParseError as e:
            raise e.relocated(protocol=PROTOCOL) from None
        root = result.value
        self.deviations.extend(result.deviations)
        if not isinstance(root, dict):
            raise self.fail(f"must be a dictionary, not {_type_name(root)}", ())
        if self.info_only:
            return self.info_dict({}, root, data)
        info = self.get(root, b"info", (), dict, required=True)
        start, end = result.spans[b"info"]
        return self.info_dict(root, info, data[start:end])

    def info_dict(self, top: dict, info: dict, info_bytes: bytes) -> Metainfo:
        ip = self.info_prefix
        meta_version = self.get(info, b"meta version", ip, int, spec=BEP52)
        # BEP 52: "Implementations must check this field first and indicate that a torrent is of
        # a newer version than they can handle before performing other validations".
        if meta_version is not None and meta_version != 2:
            raise self.fail(f"meta version {meta_version} is not supported (only 2)",
                            (*ip, b"meta version"))
        has_v2 = meta_version == 2
        has_v1 = b"pieces" in info
        if not has_v1 and not has_v2:
            raise self.fail("neither v1 'pieces' nor v2 'meta version' 2", ip)

        raw_name = self.get(info, b"name", ip, bytes)
        if raw_name is None:
            self.deviate("metainfo/info/name-missing", "missing required key 'name'", ip, BEP3)
            name = ""
        else:
            name = self.text(raw_name, (*ip, b"name"))
            # The name is the file name (single file) or the directory the files go in.
            self.path_component(raw_name, (*ip, b"name"), BEP3)
        piece_length = self.get(info, b"piece length", ip, int, required=True)
        if piece_length <= 0:
            raise self.fail(f"piece length {piece_length} is not positive",
                            (*ip, b"piece length"))
        if has_v2 and (piece_length < BLOCK_SIZE or piece_length & (piece_length - 1)):
            # BEP 52: "It must be a power of two and at least 16KiB."
            raise self.fail(f"piece length {piece_length} is not a power of two >= 16 KiB",
                            (*ip, b"piece length"))

        v2_files: list[FileEntry] = []
        if has_v2:
            tree = self.get(info, b"file tree", ip, dict, required=True, spec=BEP52)
            v2_files = self.file_tree(tree, (*ip, b"file tree"), piece_length)

        pieces: tuple[bytes, ...] = ()
        v1_files: list[FileEntry] = []
        multi_file = False
        if has_v1:
            v1_files, multi_file = self.v1_files(info, name)
            pieces = self.pieces(info, v1_files, piece_length)
        if has_v1 and has_v2:
            files = self.hybrid_files(v1_files, v2_files, piece_length, single=not multi_file)
        elif has_v2:
            files = v2_files
            multi_file = not (len(v2_files) == 1 and len(v2_files[0].path) == 1)
        else:
            files = v1_files

        piece_layers: dict[bytes, tuple[bytes, ...]] = {}
        if has_v2:
            piece_layers = self.piece_layers(top, files, piece_length)

        private = self.get(info, b"private", ip, int, spec="BEP 27 §private")
        if private not in (None, 0, 1):
            self.deviate("metainfo/info/private-value", f"private is {private}, not 0 or 1",
                         (*ip, b"private"), "BEP 27 §private", "SHOULD")
        announce, announce_list, web_seeds = self.trackers(top)
        creation_date = self.get(top, b"creation date", (), int)
        comment = self.get(top, b"comment", (), bytes)
        created_by = self.get(top, b"created by", (), bytes)
        return Metainfo(
            name=name,
            piece_length=piece_length,
            files=tuple(files),
            pieces=pieces,
            piece_layers=piece_layers,
            meta_version=meta_version,
            multi_file=multi_file,
            private=bool(private),
            announce=announce,
            announce_list=announce_list,
            web_seeds=web_seeds,
            creation_date=creation_date,
            comment=None if comment is None else self.text(comment, (b"comment",)),
            created_by=None if created_by is None else self.text(created_by, (b"created by",)),
            info_hash_v1=hashlib.sha1(info_bytes).digest() if has_v1 else None,
            info_hash_v2=hashlib.sha256(info_bytes).digest() if has_v2 else None,
            info_bytes=info_bytes,
        )

    # -- v1 ----------------------------------------------------------------------------------

    def v1_files(self, info: dict, name: str) -> tuple[list[FileEntry], bool]:
        ip = self.info_prefix
        if b"files" in info:
            if b"length" in info:
                self.deviate("metainfo/info/length-and-files",
                             "has both 'length' and 'files'", ip, BEP3)
            items = self.get(info, b"files", ip, list, required=True)
            if len(items) > MAX_FILES:
                raise LimitExceeded(f"{len(items)} files is more than {MAX_FILES}",
                                    protocol=PROTOCOL, path=path_label((*ip, b"files")),
                                    offset=self.locator.locate((*ip, b"files")))
            if not items:
                self.deviate("metainfo/info/files-empty", "the file list is empty",
                             (*ip, b"files"), BEP3)
            files: list[FileEntry] = []
            offset = 0
            for i, item in enumerate(items):
                fp = (*ip, b"files", i)
                if not isinstance(item, dict):
                    raise self.fail(f"must be a dictionary, not {_type_name(item)}", fp)
                entry = self.v1_file(item, fp, offset)
                files.append(entry)
                offset += entry.length
            return files, True
        length = self.get(info, b"length", ip, int, required=True)
        if length < 0:
            raise self.fail(f"length {length} is negative", (*ip, b"length"))
        attr = self.attr(info, ip)
        return [FileEntry(path=(name,), length=length, offset=0, attr=attr,
                          sha1=self.get(info, b"sha1", ip, bytes, spec=BEP47))], False

    def v1_file(self, item: dict, fp: tuple[PathStep, ...], offset: int) -> FileEntry:
        length = self.get(item, b"length", fp, int, required=True)
        if length < 0:
            raise self.fail(f"length {length} is negative", (*fp, b"length"))
        attr = self.attr(item, fp)
        # BEP 47: "clients implementing this BEP should not require [path] on padding files".
        raw_path = self.get(item, b"path", fp, list, required="p" not in attr)
        if raw_path is None:
            path: tuple[str, ...] = (".pad", str(length))
        else:
            path = self.path(raw_path, (*fp, b"path"), BEP3)
        symlink = self.get(item, b"symlink path", fp, list, spec=BEP47)
        return FileEntry(
            path=path,
            length=length,
            offset=offset,
            attr=attr,
            sha1=self.get(item, b"sha1", fp, bytes, spec=BEP47),
            symlink_path=None if symlink is None
            else self.path(symlink, (*fp, b"symlink path"), BEP47),
        )

    def attr(self, d: dict, path: tuple[PathStep, ...]) -> str:
        raw = self.get(d, b"attr", path, bytes, spec=BEP47)
        # BEP 47: "unknown characters should be ignored"; keep them for display.
        return "" if raw is None else raw.decode("ascii", "replace")

    def path(self, raw: list, path: tuple[PathStep, ...], spec: str) -> tuple[str, ...]:
        if not raw:
            self.deviate("metainfo/path/empty", "path is an empty list", path, spec)
        out = []
        for i, component in enumerate(raw):
            if not isinstance(component, bytes):
                raise self.fail(f"must be a string, not {_type_name(component)}", (*path, i))
            self.path_component(component, (*path, i), spec)
            out.append(self.text(component, (*path, i)))
        return tuple(out)

    def path_component(self, component: bytes, path: Sequence[PathStep], spec: str) -> None:
        """BEP 52: "path components exactly matching '.' and '..' must be sanitized since they
        could lead to directory traversal attacks"; an empty or separator-bearing component
        would do the same."""
        problem = None
        if component in (b"", b".", b".."):
            problem = f"unsafe path component {component.decode()!r}"
        elif b"/" in component or b"\\" in component:
            problem = "path component contains a path separator"
        elif b"\x00" in component:
            problem = "path component contains a NUL byte"
        if problem:
            self.deviate("metainfo/path/unsafe", problem, path, spec)

    def pieces(self, info: dict, files: list[FileEntry], piece_length: int
               ) -> tuple[bytes, ...]:
        ip = self.info_prefix
        raw = self.get(info, b"pieces", ip, bytes, required=True)
        if len(raw) % 20:
            # BEP 3: "a string whose length is a multiple of 20".
            raise self.fail(f"pieces is {len(raw)} bytes, not a multiple of 20",
                            (*ip, b"pieces"))
        total = sum(f.length for f in files)
        expected = _ceil_div(total, piece_length)
        if len(raw) // 20 != expected:
            self.deviate("metainfo/info/piece-count",
                         f"{len(raw) // 20} piece hashes for {total} bytes in pieces of "
                         f"{piece_length} ({expected} expected)", (*ip, b"pieces"), BEP3)
        return tuple(raw[i:i + 20] for i in range(0, len(raw), 20))

    # -- v2 ----------------------------------------------------------------------------------

    def file_tree(self, tree: dict, path: tuple[PathStep, ...], piece_length: int
                  ) -> list[FileEntry]:
        # BEP 52: "The file tree root dictionary itself must not be a file".
        if b"" in tree:
            raise self.fail("the file tree root must not be a file", (*path, b""))
        if not tree:
            self.deviate("metainfo/file-tree/empty", "the file tree is empty", path, BEP52_TREE)
        files: list[FileEntry] = []
        for names, tp, node in self._walk(tree, path, ()):
            if len(files) >= MAX_FILES:
                raise LimitExceeded(f"more than {MAX_FILES} files", protocol=PROTOCOL,
                                    path=path_label(tp), offset=self.locator.locate(tp))
            length = self.get(node, b"length", tp, int, required=True, spec=BEP52_TREE)
            if length < 0:
                raise self.fail(f"length {length} is negative", (*tp, b"length"))
            root = self.get(node, b"pieces root", tp, bytes, required=length > 0,
                            spec=BEP52_TREE)
            if root is not None and len(root) != 32:
                raise self.fail(f"pieces root is {len(root)} bytes, not 32",
                                (*tp, b"pieces root"))
            symlink = self.get(node, b"symlink path", tp, list, spec=BEP47)
            files.append(FileEntry(path=names, length=length, attr=self.attr(node, tp),
                                   pieces_root=root if length else None,
                                   symlink_path=None if symlink is None
                                   else self.path(symlink, (*tp, b"symlink path"), BEP47)))
        # BEP 52: "each non-empty file is aligned to a piece boundary".
        aligned = []
        offset = 0
        for f in files:
            aligned.append(dataclasses.replace(f, offset=offset))
            offset += _ceil_div(f.length, piece_length) * piece_length
        return aligned

    def _walk(self, node: dict, path: tuple[PathStep, ...], names: tuple[str, ...]
              ) -> Iterator[tuple[tuple[str, ...], tuple[PathStep, ...], dict]]:
        for key, child in node.items():
            cp = (*path, key)
            if not isinstance(key, bytes):
                raise self.fail("file tree key is not a string", path)
            if not isinstance(child, dict):
                raise self.fail(f"must be a dictionary, not {_type_name(child)}", cp)
            self.path_component(key, cp, BEP52_TREE)
            # BEP 52: keys "may contain invalid UTF-8 [...] Implementations must be prepared to
            # sanitize them": a SHOULD-level note, not a failure.
            child_names = (*names, self.text(key, cp, spec=BEP52_TREE, level="SHOULD"))
            leaf = child.get(b"")
            if isinstance(leaf, dict) and b"length" in leaf:
                if len(child) > 1:
                    # BEP 52: a file entry "must not have any sibling entries".
                    self.deviate("metainfo/file-tree/file-with-siblings",
                                 "a file entry has sibling entries", cp, BEP52_TREE)
                yield child_names, (*cp, b""), leaf
            else:
                if b"" in child:
                    raise self.fail("zero-length key without a file length", (*cp, b""))
                if not child:
                    self.deviate("metainfo/file-tree/empty-directory", "empty directory", cp,
                                 BEP52_TREE, "SHOULD")
                yield from self._walk(child, cp, child_names)

    def hybrid_files(self, v1: list[FileEntry], v2: list[FileEntry], piece_length: int, *,
                     single: bool) -> list[FileEntry]:
        """BEP 52 §Upgrade Path: the v1 and v2 parts must "describe the same data in the same
        order"; files are taken from v1 (with its padding) and get their v2 pieces root."""
        ip = self.info_prefix
        real = [(i, f) for i, f in enumerate(v1) if not f.is_padding]
        # In a single-file v1 torrent the file's path is the name; in v2 it is the tree key.
        if len(real) != len(v2):
            self.deviate("metainfo/hybrid/file-count",
                         f"v1 lists {len(real)} files but the v2 file tree has {len(v2)}",
                         (*ip, b"file tree"), BEP52_UPGRADE)
        out = list(v1)
        for (i, f1), f2 in zip(real, v2):
            fp = (*ip, b"files", i) if not single else ip
            if f1.length != f2.length or (not single and f1.path != f2.path):
                self.deviate("metainfo/hybrid/file-mismatch",
                             f"v1 file {f1.path_text!r} ({f1.length} bytes) differs from v2 "
                             f"file {f2.path_text!r} ({f2.length} bytes)", fp, BEP52_UPGRADE)
            elif f1.length and f1.offset % piece_length:
                self.deviate("metainfo/hybrid/alignment",
                             f"v1 file {f1.path_text!r} is not aligned to a piece boundary "
                             "(missing BEP 47 padding)", fp, BEP52_UPGRADE)
            out[i] = dataclasses.replace(f1, pieces_root=f2.pieces_root)
        return out

    def piece_layers(self, top: dict, files: Sequence[FileEntry], piece_length: int
                     ) -> dict[bytes, tuple[bytes, ...]]:
        """BEP 52: "For each file in the file tree that is larger than the piece size it
        contains one string value" whose hashes must match the pieces root."""
        layers: dict[bytes, tuple[bytes, ...]] = {}
        needed = {f.pieces_root: f for f in files
                  if f.pieces_root is not None and f.length > piece_length}
        if self.info_only:
            return layers
        raw = self.get(top, b"piece layers", (), dict, spec=BEP52_LAYERS)
        if raw is None:
            if needed:
                self.deviate("metainfo/piece-layers/missing",
                             "piece layers are missing (required for files larger than a "
                             "piece)", (), BEP52_LAYERS)
            return layers
        for key, value in raw.items():
            lp = (b"piece layers", key)
            if not isinstance(value, bytes):
                raise self.fail(f"must be a string, not {_type_name(value)}", lp)
            f = needed.get(key)
            if f is None:
                self.deviate("metainfo/piece-layers/unknown-root",
                             "no file larger than a piece has this pieces root", lp,
                             BEP52_LAYERS, "SHOULD")
                continue
            count = _ceil_div(f.length, piece_length)
            if len(value) != 32 * count:
                raise self.fail(f"piece layer is {len(value)} bytes; {f.path_text!r} needs "
                                f"{count} hashes of 32 bytes", lp)
            hashes = tuple(value[i:i + 32] for i in range(0, len(value), 32))
            if piece_layer_root(hashes, piece_length) != key:
                self.deviate("metainfo/piece-layers/root-mismatch",
                             f"piece layer of {f.path_text!r} does not hash to its pieces root",
                             lp, BEP52_LAYERS)
            layers[key] = hashes
        for key, f in needed.items():
            if key not in layers:
                self.deviate("metainfo/piece-layers/missing-file",
                             f"no piece layer for {f.path_text!r}", (b"piece layers",),
                             BEP52_LAYERS)
        return layers

    # -- trackers and web seeds ---------------------------------------------------------------

    def trackers(self, top: dict) -> tuple[str | None, tuple[tuple[str, ...], ...],
                                           tuple[str, ...]]:
        raw = self.get(top, b"announce", (), bytes)
        announce = None if raw is None else self.text(raw, (b"announce",))
        tiers: list[tuple[str, ...]] = []
        raw_list = self.get(top, b"announce-list", (), list, spec=BEP12)
        for i, tier in enumerate(raw_list or ()):
            tp = (b"announce-list", i)
            if not isinstance(tier, list):
                self.deviate("metainfo/announce-list/tier", "a tier must be a list", tp, BEP12)
                continue
            urls = []
            for j, url in enumerate(tier):
                if not isinstance(url, bytes):
                    self.deviate("metainfo/announce-list/url", "a tracker must be a string",
                                 (*tp, j), BEP12)
                    continue
                urls.append(self.text(url, (*tp, j), spec=BEP12))
            if urls:
                tiers.append(tuple(urls))
        seeds: list[str] = []
        url_list = top.get(b"url-list")
        # BEP 19: "url-list" is a single URL string or a list of them.
        if isinstance(url_list, bytes):
            if url_list:
                seeds.append(self.text(url_list, (b"url-list",), spec=BEP19))
        elif isinstance(url_list, list):
            for i, url in enumerate(url_list):
                if isinstance(url, bytes):
                    seeds.append(self.text(url, (b"url-list", i), spec=BEP19))
                else:
                    self.deviate("metainfo/url-list/url", "a web seed must be a string",
                                 (b"url-list", i), BEP19)
        elif url_list is not None:
            self.deviate("metainfo/type", "url-list must be a string or a list",
                         (b"url-list",), BEP19)
        return announce, tuple(tiers), tuple(seeds)


def _type_name(value: Any) -> str:
    return {bytes: "a string", int: "an integer", list: "a list", dict: "a dictionary"}.get(
        type(value), type(value).__name__)
