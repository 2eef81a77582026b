"""Importing a file as UnixFS: fixed-size chunks, a balanced DAG, raw or dag-pb leaves.

ipfs-unixfs.md §Data Format and §Test Vectors; the layout is the "balanced" one of Kubo and
js-ipfs-unixfs-importer: chunks become leaves, groups of at most ``max_children`` nodes become a
parent (a dag-pb node whose UnixFS ``Data`` is a ``File`` with ``blocksizes`` of its children
and whose links carry ``Tsize``, the cumulative size of each child's DAG), level after level
until one root; a single chunk is its own root. The settings are named after the profiles of
IPIP-499 that js ``ipfs-unixfs-importer`` 17 implements, and ``tests/interop`` checks every one
of them byte for byte against that importer:

* ``UNIXFS_V0_2015`` (``unixfs-v0-2015``, Kubo's historical ``ipfs add``): 256 KiB chunks,
  174 children, CIDv0, dag-pb leaves;
* ``UNIXFS_V1_2025`` (``unixfs-v1-2025``): 1 MiB chunks, 1024 children, CIDv1, raw leaves;
* ``HELIA_DEFAULT``: what ``@helia/unixfs`` 8 ``addBytes`` does, the same values as
  ``unixfs-v1-2025`` (checked against Helia itself in ``tests/interop``);
* ``IMPORTER_DEFAULT``: ``ipfs-unixfs-importer`` called with no profile: 256 KiB chunks,
  174 children, CIDv1, raw leaves.

>>> str(import_bytes(b"hello world\\n", UNIXFS_V0_2015))
'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import BinaryIO

from p2pkit.errors import LocalProtocolError
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.dag_pb import MAX_BLOCK_LENGTH, PBNode
from p2pkit.ipfs.unixfs import UnixfsData

__all__ = ["HELIA_DEFAULT", "IMPORTER_DEFAULT", "PROFILES", "UNIXFS_V0_2015", "UNIXFS_V1_2025",
           "ImportSettings",
           "import_bytes", "import_chunks", "import_chunks_sized", "import_file",
           "import_file_sized"]


@dataclass(frozen=True)
class ImportSettings:
    """How a file is cut and laid out."""

    chunk_size: int
    max_children: int
    cid_version: int
    raw_leaves: bool
    #: How a directory's size is estimated against :attr:`shard_threshold` (js
    #: ``ipfs-unixfs-importer``'s ``shardSplitStrategy``): ``links-bytes`` (names + CIDs,
    #: Kubo's historical estimate) or ``block-bytes`` (the serialized links).
    shard_strategy: str = "links-bytes"
    #: A directory whose estimate is over this many bytes becomes a HAMT shard (Kubo's and
    #: js's 256 KiB).
    shard_threshold: int = 262_144

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_BLOCK_LENGTH:
            raise LocalProtocolError(f"chunk size must be 1..{MAX_BLOCK_LENGTH} bytes")
        if self.max_children < 2:
            raise LocalProtocolError("a parent needs room for at least two children")
        if self.cid_version == 0 and self.raw_leaves:
            raise LocalProtocolError("raw leaves need CIDv1")
        if self.shard_strategy not in ("links-bytes", "block-bytes"):
            raise LocalProtocolError(f"unknown shard strategy {self.shard_strategy!r}")


UNIXFS_V0_2015 = ImportSettings(chunk_size=262_144, max_children=174, cid_version=0,
                                raw_leaves=False)
UNIXFS_V1_2025 = ImportSettings(chunk_size=1_048_576, max_children=1024, cid_version=1,
                                raw_leaves=True, shard_strategy="block-bytes")
HELIA_DEFAULT = ImportSettings(chunk_size=1_048_576, max_children=1024, cid_version=1,
                               raw_leaves=True)
IMPORTER_DEFAULT = ImportSettings(chunk_size=262_144, max_children=174, cid_version=1,
                                  raw_leaves=True)
#: Name -> settings, for the command line.
PROFILES = {"helia": HELIA_DEFAULT, "unixfs-v1-2025": UNIXFS_V1_2025,
            "unixfs-v0-2015": UNIXFS_V0_2015, "importer-default": IMPORTER_DEFAULT}


@dataclass(frozen=True)
class _Node:
    cid: Cid
    #: ``Tsize``: the bytes of this node's DAG (its block and all below).
    tsize: int
    #: The file bytes under it.
    file_size: int
    raw: bool


Blocks = MutableMapping[Cid, bytes]


def _leaf(chunk: bytes, settings: ImportSettings, blocks: Blocks | None) -> _Node:
    if settings.raw_leaves:
        cid = Cid.of(chunk, codec="raw", version=1)
        block = chunk
    else:
        data = UnixfsData.build({"Type": "File", "Data": chunk or None, "filesize": len(chunk)})
        block = PBNode.build({"Data": data})
        cid = Cid.of(block, codec="dag-pb", version=settings.cid_version)
    if blocks is not None:
        blocks[cid] = block
    return _Node(cid, len(block), len(chunk), settings.raw_leaves)


def _parent(children: list[_Node], settings: ImportSettings, blocks: Blocks | None) -> _Node:
    kept = [c for c in children if c.file_size > 0]  # empty leaves are not linked
    data = UnixfsData.build({"Type": "File", "filesize": sum(c.file_size for c in kept),
                             "blocksizes": [c.file_size for c in kept]})
    block = PBNode.build({
        "Links": [{"Hash": bytes(c.cid), "Name": "", "Tsize": c.tsize} for c in kept],
        "Data": data,
    })
    cid = Cid.of(block, codec="dag-pb", version=settings.cid_version)
    if blocks is not None:
        blocks[cid] = block
    return _Node(cid, len(block) + sum(c.tsize for c in kept), sum(c.file_size for c in kept),
                 False)


def import_chunks(chunks: Iterable[bytes], settings: ImportSettings = HELIA_DEFAULT, *,
                  blocks: Blocks | None = None) -> Cid:
    """The root CID of a file given as its chunks (each at most ``settings.chunk_size``);
    every block is put in ``blocks`` (a mapping CID -> bytes) when one is given."""
    return import_chunks_sized(chunks, settings, blocks=blocks)[0]


def import_chunks_sized(chunks: Iterable[bytes], settings: ImportSettings = HELIA_DEFAULT, *,
                        blocks: Blocks | None = None) -> tuple[Cid, int]:
    """The root CID of a file given as its chunks and ``Tsize``, the bytes of its whole DAG
    (what a directory's link to it carries)."""
    level: list[_Node] = []
    for chunk in chunks:
        if len(chunk) > settings.chunk_size:
            raise LocalProtocolError(f"a chunk of {len(chunk)} bytes over {settings.chunk_size}")
        level.append(_leaf(chunk, settings, blocks))
    if not level:
        level.append(_leaf(b"", settings, blocks))
    if len(level) == 1:
        return level[0].cid, level[0].tsize  # a single chunk is its own root
    while True:
        step = settings.max_children
        level = [_parent(level[i:i + step], settings, blocks)
                 for i in range(0, len(level), step)]
        if len(level) == 1:
            return level[0].cid, level[0].tsize


def _cut(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def import_bytes(data: bytes, settings: ImportSettings = HELIA_DEFAULT, *,
                 blocks: Blocks | None = None) -> Cid:
    """The root CID of ``data`` imported with ``settings``."""
    return import_chunks(_cut(data, settings.chunk_size), settings, blocks=blocks)


def import_file(file: BinaryIO, settings: ImportSettings = HELIA_DEFAULT, *,
                blocks: Blocks | None = None) -> Cid:
    """The root CID of a binary file object, read one chunk at a time (only the leaves' CIDs
    are kept in memory, unless ``blocks`` collects the blocks)."""
    return import_file_sized(file, settings, blocks=blocks)[0]


def import_file_sized(file: BinaryIO, settings: ImportSettings = HELIA_DEFAULT, *,
                      blocks: Blocks | None = None) -> tuple[Cid, int]:
    """:func:`import_file`, with the ``Tsize`` of the file's DAG."""
    def chunks() -> Iterator[bytes]:
        buffer = b""
        while True:
            data = file.read(settings.chunk_size - len(buffer))
            if not data:
                break
            buffer += data
            if len(buffer) == settings.chunk_size:
                yield buffer
                buffer = b""
        if buffer:
            yield buffer

    return import_chunks_sized(chunks(), settings, blocks=blocks)
