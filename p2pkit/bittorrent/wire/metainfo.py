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
file". Info-hashes here are computed over the exact bytes of the ``info`` value, whose span the
decoder records in the same pass (never over a re-encoding).

The keys are declared (:data:`Torrent`, :data:`Info`, :data:`FileV1`, :data:`TreeFile`: each a
:class:`~p2pkit.bencode.BencodedDict` with the value types of BEP 3/12/19/47/52); what ties
fields together (v1/v2/hybrid, piece counts, the file tree, piece layers) follows them.

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

It stays one module: the declarations of the metainfo dictionaries and the cross-field rules
that read them (v1/v2/hybrid, piece counts, the file tree, piece layers) are one specification
(BEP 3 §metainfo files with BEP 52's additions); creation is :mod:`~p2pkit.bittorrent.wire.create`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from construct import Container

from p2pkit.bencode import (
    BencodedDict,
    Context,
    Field,
    Integer,
    ListOf,
    MapOf,
    Mismatch,
    PathStep,
    Rules,
    String,
    Value,
    decode_lenient,
    locate,
    path_label,
    type_name,
)
from p2pkit.deviations import Deviation
from p2pkit.errors import LimitExceeded, ParseError

__all__ = [
    "BLOCK_SIZE",
    "MAX_DEVIATIONS",
    "MAX_FILES",
    "MAX_METAINFO_SIZE",
    "FileEntry",
    "FileV1",
    "Info",
    "Metainfo",
    "MetainfoDissection",
    "merkle_root",
    "pad_hash",
    "piece_layer_root",
    "Torrent",
    "TreeFile",
    "locate",
    "path_label",
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
        return _read(data, strict=True, info_only=False)[0]

    @classmethod
    def parse_lenient(cls, data: bytes) -> MetainfoDissection:
        """Parse what real files contain, listing each deviation (for dissection)."""
        meta, cx = _read(data, strict=False, info_only=False)
        deviations = cx.deviations or []
        if cx.untold:
            deviations.append(Deviation(
                offset=0, rule="metainfo/deviations/truncated", spec=BEP3, level="MAY",
                message=f"{cx.untold} more deviations not listed"))
        return MetainfoDissection(metainfo=meta, deviations=tuple(deviations))

    @classmethod
    def parse_info(cls, info_bytes: bytes) -> Metainfo:
        """Parse a bare info dictionary (BEP 9 metadata): no trackers, no piece layers needed.

        >>> info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
        >>> meta = Metainfo.parse_info(info)
        >>> meta.files[0].path, meta.info_hash_v1 == hashlib.sha1(info).digest()
        (('x',), True)
        """
        return _read(info_bytes, strict=True, info_only=True)[0]


@dataclass(frozen=True, kw_only=True)
class MetainfoDissection:
    """A lenient parse: the metainfo and every deviation found (bencoding included)."""

    metainfo: Metainfo
    deviations: tuple[Deviation, ...] = ()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---------------------------------------------------------------------------------------------
# Declared dictionaries: the keys of a .torrent, their types, and how departures are reported


#: Departures from BEP 3 (and the BEPs each field names): a value of the wrong type is a
#: ``metainfo/type`` deviation; a missing or malformed required key cannot be understood.
RULES = Rules(spec=BEP3, malformed="metainfo/type", missing="metainfo/missing-key",
              missing_at="container", fatal_required=True)


def _text(raw: bytes, cx: Context, path: tuple[PathStep, ...], spec: str,
          level: str = "MUST") -> str:
    """BEP 3: "All strings in a .torrent file that contains text must be UTF-8 encoded"."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        cx.report("metainfo/text/not-utf-8", "text is not valid UTF-8", path, spec, level)
        return raw.decode("utf-8", "replace")


class _TorrentText(Value):
    """A string holding UTF-8 text; other bytes are replaced and reported."""

    what = "UTF-8 text"
    needs_path = True

    def __init__(self, spec: str = BEP3) -> None:
        self.spec = spec

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> str:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}")
        return _text(raw, cx, path, self.spec)


class _PathComponent(Value):
    """One file or directory name.

    BEP 52: "path components exactly matching '.' and '..' must be sanitized since they could
    lead to directory traversal attacks"; an empty or separator-bearing component would do the
    same.
    """

    what = "safe UTF-8 file name"
    needs_path = True

    def __init__(self, spec: str, *, text_level: str = "MUST", fatal: bool = True) -> None:
        self.spec = spec
        self.text_level = text_level
        self.fatal = fatal

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> str:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}", fatal=self.fatal)
        problem = None
        if raw in (b"", b".", b".."):
            problem = f"unsafe path component {raw.decode()!r}"
        elif b"/" in raw or b"\\" in raw:
            problem = "path component contains a path separator"
        elif b"\x00" in raw:
            problem = "path component contains a NUL byte"
        if problem:
            cx.report("metainfo/path/unsafe", problem, path, self.spec)
        return _text(raw, cx, path, self.spec, self.text_level)


class _Path(Value):
    """BEP 3 ``path``: "A list of UTF-8 encoded strings corresponding to subdirectory names, the
    last of which is the actual file name (a zero length list is an error case)"."""

    what = "list of safe UTF-8 file names"
    needs_path = True

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.component = _PathComponent(spec)

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> tuple[str, ...]:
        if type(raw) is not list:
            raise Mismatch(f"must be a list, not {type_name(raw)}")
        if not raw:
            cx.report("metainfo/path/empty", "path is an empty list", path, self.spec)
        decode = self.component.decode
        out = []
        for i, item in enumerate(raw):
            try:
                out.append(decode(item, cx, (*path, i)))
            except Mismatch as e:
                raise Mismatch(f"[{i}] {e}", (i, *e.steps), fatal=e.fatal) from None
        return tuple(out)


class _Attr(Value):
    """BEP 47 ``attr``: "p = padding file, x = executable, h = hidden, l = symlink";
    "unknown characters should be ignored" (kept here for display)."""

    what = "string of attribute letters"

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> str:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}")
        return raw.decode("ascii", "replace")


class _Tiers(Value):
    """BEP 12 ``announce-list``: "a list of lists of tracker URLs"; a bad tier or URL is
    reported and skipped, empty tiers are dropped."""

    what = "list of lists of tracker URLs"
    needs_path = True

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]
               ) -> tuple[tuple[str, ...], ...]:
        if type(raw) is not list:
            raise Mismatch(f"must be a list, not {type_name(raw)}")
        tiers = []
        for i, tier in enumerate(raw):
            tp = (*path, i)
            if type(tier) is not list:
                cx.report("metainfo/announce-list/tier", "a tier must be a list", tp, BEP12)
                continue
            urls = []
            for j, url in enumerate(tier):
                if type(url) is not bytes:
                    cx.report("metainfo/announce-list/url", "a tracker must be a string",
                              (*tp, j), BEP12)
                    continue
                urls.append(_text(url, cx, (*tp, j), BEP12))
            if urls:
                tiers.append(tuple(urls))
        return tuple(tiers)


class _WebSeeds(Value):
    """BEP 19 ``url-list``: a single URL string or a list of them."""

    what = "URL string or list of URL strings"
    needs_path = True

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> tuple[str, ...]:
        if type(raw) is bytes:
            return (_text(raw, cx, path, BEP19),) if raw else ()
        if type(raw) is not list:
            raise Mismatch("must be a string or a list")
        seeds = []
        for i, url in enumerate(raw):
            if type(url) is bytes:
                seeds.append(_text(url, cx, (*path, i), BEP19))
            else:
                cx.report("metainfo/url-list/url", "a web seed must be a string", (*path, i),
                          BEP19)
        return tuple(seeds)


class _Tree(Value):
    """BEP 52 ``file tree``: nested dictionaries, read by :func:`_file_tree`."""

    what = "dictionary of directories and files"

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> dict:
        if type(raw) is not dict:
            raise Mismatch(f"must be a dictionary, not {type_name(raw)}")
        return raw


def _v1_file_check(value: Container, cx: Context, path: tuple[PathStep, ...]) -> None:
    # BEP 47: "clients implementing this BEP should not require [path] on padding files".
    if "path" not in value:
        if "p" not in value.get("attr", ""):
            raise cx.fail("missing required key 'path'", path)
        value["path"] = (".pad", str(value["length"]))


def _tree_file_check(value: Container, cx: Context, path: tuple[PathStep, ...]) -> None:
    # BEP 52: "pieces root [...] For non-empty files this is the root hash of a merkle tree".
    if value["length"] > 0 and "pieces_root" not in value:
        raise cx.fail("missing required key 'pieces root'", path)


class _InfoDictionary(BencodedDict):
    """BEP 52: "Implementations must check this field first and indicate that a torrent is of
    a newer version than they can handle before performing other validations"."""

    def conform(self, raw: dict, cx: Context, path: tuple[PathStep, ...]) -> Container:
        version = raw.get(b"meta version")
        if type(version) is int and version != 2:
            raise cx.fail(f"meta version {version} is not supported (only 2)",
                          (*path, b"meta version"))
        return super().conform(raw, cx, path)


# fmt: off
#: BEP 3: "files: A list of dictionaries each corresponding to a file".
FileV1 = BencodedDict([
    Field("length", Integer(0), required=True),     # "The length of the file, in bytes."
    Field("path", _Path(BEP3)),                      # "subdirectory names, the last of which is
                                                     # the actual file name"
    Field("attr", _Attr(), spec=BEP47),              # BEP 47: "p = padding file" …
    Field("sha1", String(), spec=BEP47),             # BEP 47: "the SHA1 of the file's content"
    Field("symlink path", _Path(BEP47), name="symlink_path", spec=BEP47),  # BEP 47
], unknown="extra", rules=RULES, protocol=PROTOCOL, check=_v1_file_check, name="file")
#: BEP 52: a file of the ``file tree``, under its zero-length key.
TreeFile = BencodedDict([
    Field("length", Integer(0), required=True, spec=BEP52_TREE),  # "Length of the file in
                                                                  # bytes"
    Field("pieces root", String(32), name="pieces_root", spec=BEP52_TREE, fatal=True),
                                                     # "the root hash of a merkle tree with a
                                                     # branching factor of 2"
    Field("attr", _Attr(), spec=BEP47),              # BEP 47
    Field("symlink path", _Path(BEP47), name="symlink_path", spec=BEP47),  # BEP 47
], unknown="extra", rules=RULES, protocol=PROTOCOL, check=_tree_file_check, name="tree file")
#: BEP 3 / BEP 52 ``info``: "a dictionary that describes the file(s) of the torrent".
Info = _InfoDictionary([
    Field("meta version", Integer(), name="meta_version", spec=BEP52),  # BEP 52: "An integer
                                                     # value, set to 2"
    Field("name", _PathComponent(BEP3, fatal=False)),  # "the suggested name to save the file
                                                     # (or directory) as"
    Field("piece length", Integer(1), name="piece_length", required=True),  # "number of bytes
                                                     # in each piece the file is split into"
    Field("pieces", String(multiple_of=20), fatal=True),  # "a string whose length is a
                                                     # multiple of 20"
    Field("length", Integer(0), fatal=True),         # single file: "The length of the file"
    Field("files", ListOf(FileV1, fatal=True, max_items=MAX_FILES), fatal=True),  # directory
    Field("file tree", _Tree(), name="file_tree", spec=BEP52, fatal=True),  # BEP 52
    Field("attr", _Attr(), spec=BEP47),              # BEP 47, single file
    Field("sha1", String(), spec=BEP47),             # BEP 47, single file
    Field("private", Integer(), spec="BEP 27 §private"),  # BEP 27: "private=1"
], unknown="extra", rules=RULES, protocol=PROTOCOL, name="info")
#: BEP 3 §metainfo files: the top-level dictionary.
Torrent = BencodedDict([
    Field("info", Info, required=True),              # "This maps to a dictionary"
    Field("announce", _TorrentText()),               # "The URL of the tracker."
    Field("announce-list", _Tiers(), name="announce_list", spec=BEP12),  # BEP 12
    Field("url-list", _WebSeeds(), name="url_list", spec=BEP19),  # BEP 19
    Field("piece layers", MapOf(String(), fatal=True), name="piece_layers",
          spec=BEP52_LAYERS),                        # BEP 52: "a dictionary of strings"
    Field("creation date", Integer(), name="creation_date"),  # de-facto: seconds since 1970
    Field("comment", _TorrentText()),                # de-facto
    Field("created by", _TorrentText(), name="created_by"),  # de-facto
], unknown="extra", rules=RULES, protocol=PROTOCOL, name="metainfo")
# fmt: on


# ---------------------------------------------------------------------------------------------
# Reading: the declarations above, then the rules that tie fields together


def _read(data: bytes, *, strict: bool, info_only: bool) -> tuple[Metainfo, Context]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParseError(f"expected bytes, got {type(data).__name__}", protocol=PROTOCOL)
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > MAX_METAINFO_SIZE:
        raise LimitExceeded(f"{len(data)} bytes is more than {MAX_METAINFO_SIZE}",
                            protocol=PROTOCOL, offset=0)
    try:  # one pass: the value, its deviations and where "info" lies
        result = decode_lenient(data, strict=strict, spans=True)
    except ParseError as e:
        raise e.relocated(protocol=PROTOCOL) from None
    cx = Context(data, protocol=PROTOCOL, deviations=None if strict else result.deviations,
                 max_deviations=MAX_DEVIATIONS, label_messages=True)
    root = result.value
    if type(root) is not dict:
        raise cx.fail(f"must be a dictionary, not {type_name(root)}", ())
    if info_only:
        return _metainfo(Container(), Info.conform(root, cx, ()), data, cx, ()), cx
    top = Torrent.conform(root, cx, ())
    start, end = result.spans[b"info"]
    return _metainfo(top, top["info"], data[start:end], cx, (b"info",)), cx


def _metainfo(top: Container, info: Container, info_bytes: bytes, cx: Context,
              ip: tuple[PathStep, ...]) -> Metainfo:
    meta_version = info.get("meta_version")
    has_v2 = meta_version == 2
    has_v1 = "pieces" in info
    if not has_v1 and not has_v2:
        raise cx.fail("neither v1 'pieces' nor v2 'meta version' 2", ip)
    name = info.get("name")
    if name is None:
        cx.report("metainfo/info/name-missing", "missing required key 'name'", ip, BEP3)
        name = ""
    piece_length = info["piece_length"]
    if has_v2 and (piece_length < BLOCK_SIZE or piece_length & (piece_length - 1)):
        # BEP 52: "It must be a power of two and at least 16KiB."
        raise cx.fail(f"piece length {piece_length} is not a power of two >= 16 KiB",
                      (*ip, b"piece length"))

    v2_files: list[FileEntry] = []
    if has_v2:
        if "file_tree" not in info:
            raise cx.fail("missing required key 'file tree'", ip)
        v2_files = _file_tree(info["file_tree"], (*ip, b"file tree"), piece_length, cx)

    pieces: tuple[bytes, ...] = ()
    v1_files: list[FileEntry] = []
    multi_file = False
    if has_v1:
        v1_files, multi_file = _v1_files(info, name, cx, ip)
        pieces = _pieces(info["pieces"], v1_files, piece_length, cx, ip)
    if has_v1 and has_v2:
        files = _hybrid_files(v1_files, v2_files, piece_length, cx, ip, single=not multi_file)
    elif has_v2:
        files = v2_files
        multi_file = not (len(v2_files) == 1 and len(v2_files[0].path) == 1)
    else:
        files = v1_files

    piece_layers: dict[bytes, tuple[bytes, ...]] = {}
    if has_v2 and ip:
        piece_layers = _piece_layers(top.get("piece_layers"), files, piece_length, cx)

    private = info.get("private")
    if private not in (None, 0, 1):
        cx.report("metainfo/info/private-value", f"private is {private}, not 0 or 1",
                  (*ip, b"private"), "BEP 27 §private", "SHOULD")
    return Metainfo(
        name=name,
        piece_length=piece_length,
        files=tuple(files),
        pieces=pieces,
        piece_layers=piece_layers,
        meta_version=meta_version,
        multi_file=multi_file,
        private=bool(private),
        announce=top.get("announce"),
        announce_list=top.get("announce_list", ()),
        web_seeds=top.get("url_list", ()),
        creation_date=top.get("creation_date"),
        comment=top.get("comment"),
        created_by=top.get("created_by"),
        info_hash_v1=hashlib.sha1(info_bytes).digest() if has_v1 else None,
        info_hash_v2=hashlib.sha256(info_bytes).digest() if has_v2 else None,
        info_bytes=info_bytes,
    )


# -- v1 ----------------------------------------------------------------------------------------


def _v1_files(info: Container, name: str, cx: Context, ip: tuple[PathStep, ...]
              ) -> tuple[list[FileEntry], bool]:
    if "files" in info:
        if "length" in info:
            cx.report("metainfo/info/length-and-files", "has both 'length' and 'files'", ip,
                      BEP3)
        if not info["files"]:
            cx.report("metainfo/info/files-empty", "the file list is empty", (*ip, b"files"),
                      BEP3)
        files: list[FileEntry] = []
        offset = 0
        for item in info["files"]:
            files.append(FileEntry(path=item["path"], length=item["length"], offset=offset,
                                   attr=item.get("attr", ""), sha1=item.get("sha1"),
                                   symlink_path=item.get("symlink_path")))
            offset += item["length"]
        return files, True
    if "length" not in info:
        raise cx.fail("missing required key 'length'", ip)
    return [FileEntry(path=(name,), length=info["length"], offset=0, attr=info.get("attr", ""),
                      sha1=info.get("sha1"))], False


#: One SHA-1 piece hash (BEP 3 ``pieces``) and one SHA-256 layer hash (BEP 52), as records.
_SHA1_HASHES = struct.Struct("20s")
_SHA256_HASHES = struct.Struct("32s")


def _pieces(raw: bytes, files: list[FileEntry], piece_length: int, cx: Context,
            ip: tuple[PathStep, ...]) -> tuple[bytes, ...]:
    total = sum(f.length for f in files)
    expected = _ceil_div(total, piece_length)
    if len(raw) // 20 != expected:
        cx.report("metainfo/info/piece-count",
                  f"{len(raw) // 20} piece hashes for {total} bytes in pieces of "
                  f"{piece_length} ({expected} expected)", (*ip, b"pieces"), BEP3)
    return tuple([h for (h,) in _SHA1_HASHES.iter_unpack(raw)])


# -- v2 ----------------------------------------------------------------------------------------

_TREE_KEY = _PathComponent(BEP52_TREE, text_level="SHOULD")


def _file_tree(tree: dict, path: tuple[PathStep, ...], piece_length: int, cx: Context
               ) -> list[FileEntry]:
    # BEP 52: "The file tree root dictionary itself must not be a file".
    if b"" in tree:
        raise cx.fail("the file tree root must not be a file", (*path, b""))
    if not tree:
        cx.report("metainfo/file-tree/empty", "the file tree is empty", path, BEP52_TREE)
    files: list[FileEntry] = []
    offset = 0
    for names, tp, node in _walk(tree, path, (), cx):
        if len(files) >= MAX_FILES:
            raise cx.fail(f"more than {MAX_FILES} files", tp, limit=True)
        entry = TreeFile.conform(node, cx, tp)
        length = entry["length"]
        files.append(FileEntry(path=names, length=length, offset=offset,
                               attr=entry.get("attr", ""),
                               pieces_root=entry.get("pieces_root") if length else None,
                               symlink_path=entry.get("symlink_path")))
        # BEP 52: "each non-empty file is aligned to a piece boundary".
        offset += _ceil_div(length, piece_length) * piece_length
    return files


def _walk(node: dict, path: tuple[PathStep, ...], names: tuple[str, ...], cx: Context
          ) -> Iterator[tuple[tuple[str, ...], tuple[PathStep, ...], dict]]:
    for key, child in node.items():
        cp = (*path, key)
        if not isinstance(key, bytes):
            raise cx.fail("file tree key is not a string", path)
        if not isinstance(child, dict):
            raise cx.fail(f"must be a dictionary, not {type_name(child)}", cp)
        # BEP 52: keys "may contain invalid UTF-8 [...] Implementations must be prepared to
        # sanitize them": a SHOULD-level note, not a failure.
        child_names = (*names, _TREE_KEY.decode(key, cx, cp))
        leaf = child.get(b"")
        if isinstance(leaf, dict) and b"length" in leaf:
            if len(child) > 1:
                # BEP 52: a file entry "must not have any sibling entries".
                cx.report("metainfo/file-tree/file-with-siblings",
                          "a file entry has sibling entries", cp, BEP52_TREE)
            yield child_names, (*cp, b""), leaf
        else:
            if b"" in child:
                raise cx.fail("zero-length key without a file length", (*cp, b""))
            if not child:
                cx.report("metainfo/file-tree/empty-directory", "empty directory", cp,
                          BEP52_TREE, "SHOULD")
            yield from _walk(child, cp, child_names, cx)


def _hybrid_files(v1: list[FileEntry], v2: list[FileEntry], piece_length: int, cx: Context,
                  ip: tuple[PathStep, ...], *, single: bool) -> list[FileEntry]:
    """BEP 52 §Upgrade Path: the v1 and v2 parts must "describe the same data in the same
    order"; files are taken from v1 (with its padding) and get their v2 pieces root."""
    real = [(i, f) for i, f in enumerate(v1) if not f.is_padding]
    # In a single-file v1 torrent the file's path is the name; in v2 it is the tree key.
    if len(real) != len(v2):
        cx.report("metainfo/hybrid/file-count",
                  f"v1 lists {len(real)} files but the v2 file tree has {len(v2)}",
                  (*ip, b"file tree"), BEP52_UPGRADE)
    out = list(v1)
    for (i, f1), f2 in zip(real, v2):
        fp = (*ip, b"files", i) if not single else ip
        if f1.length != f2.length or (not single and f1.path != f2.path):
            cx.report("metainfo/hybrid/file-mismatch",
                      f"v1 file {f1.path_text!r} ({f1.length} bytes) differs from v2 "
                      f"file {f2.path_text!r} ({f2.length} bytes)", fp, BEP52_UPGRADE)
        elif f1.length and f1.offset % piece_length:
            cx.report("metainfo/hybrid/alignment",
                      f"v1 file {f1.path_text!r} is not aligned to a piece boundary "
                      "(missing BEP 47 padding)", fp, BEP52_UPGRADE)
        out[i] = dataclasses.replace(f1, pieces_root=f2.pieces_root)
    return out


def _piece_layers(raw: dict | None, files: Sequence[FileEntry], piece_length: int,
                  cx: Context) -> dict[bytes, tuple[bytes, ...]]:
    """BEP 52: "For each file in the file tree that is larger than the piece size it
    contains one string value" whose hashes must match the pieces root."""
    layers: dict[bytes, tuple[bytes, ...]] = {}
    needed = {f.pieces_root: f for f in files
              if f.pieces_root is not None and f.length > piece_length}
    if raw is None:
        if needed:
            cx.report("metainfo/piece-layers/missing",
                      "piece layers are missing (required for files larger than a piece)", (),
                      BEP52_LAYERS)
        return layers
    for key, value in raw.items():
        lp = (b"piece layers", key)
        f = needed.get(key)
        if f is None:
            cx.report("metainfo/piece-layers/unknown-root",
                      "no file larger than a piece has this pieces root", lp, BEP52_LAYERS,
                      "SHOULD")
            continue
        count = _ceil_div(f.length, piece_length)
        if len(value) != 32 * count:
            raise cx.fail(f"piece layer is {len(value)} bytes; {f.path_text!r} needs "
                          f"{count} hashes of 32 bytes", lp)
        hashes = tuple([h for (h,) in _SHA256_HASHES.iter_unpack(value)])
        if piece_layer_root(hashes, piece_length) != key:
            cx.report("metainfo/piece-layers/root-mismatch",
                      f"piece layer of {f.path_text!r} does not hash to its pieces root", lp,
                      BEP52_LAYERS)
        layers[key] = hashes
    for key, f in needed.items():
        if key not in layers:
            cx.report("metainfo/piece-layers/missing-file", f"no piece layer for {f.path_text!r}",
                      (b"piece layers",), BEP52_LAYERS)
    return layers
