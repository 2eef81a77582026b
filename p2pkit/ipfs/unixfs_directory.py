"""UnixFS directories and HAMT-sharded directories: importing a tree, reading one back.

ipfs-unixfs.md §Directory: a dag-pb node whose ``Data`` is ``Type = Directory`` and whose links
name the entries (``Name``, ``Hash``, ``Tsize``: the bytes of the entry's whole DAG), sorted by
name (dag-pb canonical form). §HAMTShard: a directory too large for one block becomes a
hash array mapped trie: ``Type = HAMTShard``, ``fanout`` 256, ``hashType`` 0x22
(murmur3-x64-64 of the entry name, :mod:`p2pkit.ipfs.murmur3`), ``Data`` the bitfield of the
occupied slots (big-endian, minimal). Each level takes the next 8 bits of the hash (the hash's
bytes in order; past 8 bytes, the name with the level number appended is hashed again). A link
named with the slot's two upper-case hex digits alone is a sub-shard; one named with the
digits then the entry name is the entry.

When a directory becomes a shard follows js ``ipfs-unixfs-importer`` 17 (Helia's, with Kubo's
threshold): when its size estimate is over ``settings.shard_threshold`` (256 KiB). The
estimate (``settings.shard_strategy``) counts only the entries known when it is checked, which
in that importer are files and empty directories, never non-empty subdirectories:
``links-bytes`` sums name + CID bytes per entry (go-unixfsnode's estimate), ``block-bytes``
the serialized size of the ``Data`` field and of each link. ``tests/interop`` compares root
CIDs with that importer.

>>> from p2pkit.ipfs.unixfs_importer import UNIXFS_V0_2015
>>> str(import_tree({"hello.txt": b"hello world\\n"}, UNIXFS_V0_2015))
'QmfLiVjH2vujCVP2e75zyzBYmpcjktmDeU1YBz6Ct8BBsc'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError
from p2pkit.ipfs.cid import DAG_PB, Cid
from p2pkit.ipfs.dag_pb import PBNode, decode_node
from p2pkit.ipfs.murmur3 import murmur3_x64_64
from p2pkit.ipfs.unixfs import UnixfsData
from p2pkit.ipfs.unixfs_exporter import MAX_DEPTH, export
from p2pkit.ipfs.unixfs_importer import (
    HELIA_DEFAULT,
    Blocks,
    ImportSettings,
    import_chunks_sized,
    import_file_sized,
)

__all__ = ["FANOUT", "HASH_TYPE", "MAX_ENTRIES", "Tree", "TreeEntry", "export_to_directory",
           "import_directory", "import_tree", "is_directory", "walk"]

#: ipfs-unixfs.md §HAMTShard: "murmur3-x64-64 (multihash value 0x22)".
HASH_TYPE = 0x22
#: Kubo's and js's fanout: 256 slots, 8 bits of hash per level.
FANOUT = 256
_PAD = len(format(FANOUT - 1, "X"))
#: Entries read back from one DAG (files and directories together).
MAX_ENTRIES = 1_000_000
#: Longest entry name accepted (Linux NAME_MAX).
MAX_NAME = 255

#: A tree to import: name -> file bytes, a file on disk, or a subtree.
Tree = Mapping[str, Union[bytes, Path, "Tree"]]


@dataclass(frozen=True)
class _Entry:
    cid: Cid
    tsize: int
    #: Counted in the sharding estimate (files and empty directories; see the module text).
    estimated: bool


def _check_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if not raw or name in (".", "..") or "/" in name or "\0" in name or len(raw) > MAX_NAME:
        raise LocalProtocolError(f"{name!r} cannot name a UnixFS directory entry")
    return raw


def _varint_length(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _link_size(name: int, cid: int, tsize: int) -> int:
    """Bytes of one serialized PBLink field (js ``linkSerializedSize``)."""
    inner = 1 + _varint_length(cid) + cid + 1 + _varint_length(name) + name
    inner += 1 + _varint_length(tsize)
    return 1 + _varint_length(inner) + inner


def _estimate(entries: dict[str, _Entry], settings: ImportSettings) -> int:
    counted = [(len(n.encode()), e) for n, e in entries.items() if e.estimated]
    if settings.shard_strategy == "links-bytes":
        return sum(n + len(bytes(e.cid)) for n, e in counted)
    data = 1 + 1 + 2  # the Data field of a directory with no mode or mtime: 0a 02 08 01
    return data + sum(_link_size(n, len(bytes(e.cid)), e.tsize) for n, e in counted)


def _store(block: bytes, settings: ImportSettings, blocks: Blocks | None) -> Cid:
    cid = Cid.of(block, codec="dag-pb", version=settings.cid_version)
    if blocks is not None:
        blocks[cid] = block
    return cid


def _flat(entries: dict[str, _Entry], settings: ImportSettings,
          blocks: Blocks | None) -> _Entry:
    links = sorted(((n.encode(), e) for n, e in entries.items()), key=lambda item: item[0])
    block = PBNode.build({"Links": [{"Hash": bytes(e.cid), "Name": n.decode(), "Tsize": e.tsize}
                                    for n, e in links],
                          "Data": UnixfsData.build({"Type": "Directory"})})
    return _Entry(_store(block, settings, blocks),
                  len(block) + sum(e.tsize for _, e in links), False)


def _slot(name: bytes, depth: int) -> int:
    """The slot of ``name`` at ``depth`` (8 bits of hash per level)."""
    level, byte = divmod(depth, 8)
    digest = murmur3_x64_64(name if level == 0 else name + bytes([level]))
    return digest[byte]


@dataclass
class _Bucket:
    depth: int
    children: dict[int, _Bucket | tuple[str, _Entry]] = field(default_factory=dict)

    def put(self, name: str, entry: _Entry) -> None:
        if self.depth > 8 * 255:
            raise LimitExceeded("HAMT deeper than its hash", protocol="unixfs")
        slot = _slot(name.encode(), self.depth)
        held = self.children.get(slot)
        if held is None:
            self.children[slot] = (name, entry)
        elif isinstance(held, _Bucket):
            held.put(name, entry)
        else:
            sub = _Bucket(self.depth + 1)
            sub.put(*held)
            sub.put(name, entry)
            self.children[slot] = sub


def _shard(bucket: _Bucket, settings: ImportSettings, blocks: Blocks | None) -> _Entry:
    links = []
    for slot in sorted(bucket.children):
        held = bucket.children[slot]
        prefix = format(slot, "X").rjust(_PAD, "0")
        if isinstance(held, _Bucket):
            sub = _shard(held, settings, blocks)
            links.append({"Hash": bytes(sub.cid), "Name": prefix, "Tsize": sub.tsize})
        else:
            name, entry = held
            links.append({"Hash": bytes(entry.cid), "Name": prefix + name, "Tsize": entry.tsize})
    bits = sum(1 << slot for slot in bucket.children)
    data = UnixfsData.build({"Type": "HAMTShard",
                             "Data": bits.to_bytes((bits.bit_length() + 7) // 8, "big"),
                             "hashType": HASH_TYPE, "fanout": FANOUT})
    block = PBNode.build({"Links": links, "Data": data})
    return _Entry(_store(block, settings, blocks),
                  len(block) + sum(link["Tsize"] for link in links), False)


def _directory(tree: Tree, settings: ImportSettings, blocks: Blocks | None,
               depth: int) -> _Entry:
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"a tree deeper than {MAX_DEPTH}", protocol="unixfs")
    entries: dict[str, _Entry] = {}
    for name, value in tree.items():
        _check_name(name)
        if isinstance(value, Mapping):
            sub = _directory(value, settings, blocks, depth + 1)
            entries[name] = _Entry(sub.cid, sub.tsize, estimated=not value)
        elif isinstance(value, Path):
            with open(value, "rb") as f:
                cid, tsize = import_file_sized(f, settings, blocks=blocks)
            entries[name] = _Entry(cid, tsize, True)
        else:
            data = bytes(value)
            chunks = (data[i:i + settings.chunk_size]
                      for i in range(0, len(data), settings.chunk_size))
            cid, tsize = import_chunks_sized(chunks, settings, blocks=blocks)
            entries[name] = _Entry(cid, tsize, True)
    if _estimate(entries, settings) > settings.shard_threshold:
        root = _Bucket(0)
        for name, entry in entries.items():
            root.put(name, entry)
        return _shard(root, settings, blocks)
    return _flat(entries, settings, blocks)


def import_tree(tree: Tree, settings: ImportSettings = HELIA_DEFAULT, *,
                blocks: Blocks | None = None) -> Cid:
    """The root CID of a directory given as ``name -> bytes | Path | subtree``; every block
    goes to ``blocks`` when given."""
    return _directory(tree, settings, blocks, 0).cid


def _read_tree(path: Path, depth: int = 0) -> dict[str, object]:
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"{path}: deeper than {MAX_DEPTH}", protocol="unixfs")
    tree: dict[str, object] = {}
    for child in sorted(path.iterdir()):
        if child.is_symlink():
            raise LocalProtocolError(f"{child}: symbolic links are not imported")
        tree[child.name] = _read_tree(child, depth + 1) if child.is_dir() else child
    return tree


def import_directory(path: str | Path, settings: ImportSettings = HELIA_DEFAULT, *,
                     blocks: Blocks | None = None) -> Cid:
    """``ipfs add -r``: the root CID of the directory at ``path`` (files read chunk by
    chunk)."""
    return import_tree(_read_tree(Path(path)), settings, blocks=blocks)


# -- reading back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a UnixFS DAG: its path below the root (``/``-separated), CID, and whether
    it is a directory."""

    path: str
    cid: Cid
    directory: bool


def _node_type(cid: Cid, block: bytes) -> tuple[str, object]:
    if cid.codec != DAG_PB:
        return "File", None
    node = decode_node(block)
    return UnixfsData.parse(node.Data or b"").Type, node


def _links(cid: Cid, node: object, kind: str, get_block: Callable[[Cid], bytes],
           depth: int) -> Iterator[tuple[str, Cid]]:
    """(name, CID) of the entries of a directory or a shard (sub-shards followed)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"a UnixFS DAG deeper than {MAX_DEPTH}", protocol="unixfs")
    for link in node.Links:
        child = Cid.from_bytes(link.Hash)
        name = link.Name or ""
        if kind == "Directory":
            yield name, child
            continue
        if len(name) < _PAD:
            raise ParseError(f"HAMT link name {name!r} has no slot prefix", protocol="unixfs")
        if len(name) == _PAD:  # a sub-shard
            block = get_block(child)
            if not child.verify(block):
                raise ParseError(f"block does not match its CID {child}", protocol="unixfs")
            sub_kind, sub = _node_type(child, block)
            if sub_kind != "HAMTShard":
                raise ParseError(f"HAMT link {name!r} is no sub-shard", protocol="unixfs")
            yield from _links(child, sub, sub_kind, get_block, depth + 1)
        else:
            yield name[_PAD:], child


def is_directory(cid: Cid, block: bytes) -> bool:
    """Whether ``block`` (of ``cid``) is a UnixFS directory or HAMT shard."""
    return _node_type(cid, block)[0] in ("Directory", "HAMTShard")


def walk(root: Cid, get_block: Callable[[Cid], bytes]) -> Iterator[TreeEntry]:
    """Every entry below the directory ``root`` (depth first, shard order), each block
    checked against its CID; entry names are checked (no ``/``, ``.``, ``..`` or NUL)."""
    count = 0
    pending: list[tuple[str, Cid, int]] = [("", root, 0)]
    while pending:
        path, cid, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"a UnixFS tree deeper than {MAX_DEPTH}", protocol="unixfs")
        block = get_block(cid)
        if not cid.verify(block):
            raise ParseError(f"block does not match its CID {cid}", protocol="unixfs")
        kind, node = _node_type(cid, block)
        if kind not in ("Directory", "HAMTShard"):
            if not path:
                raise ParseError(f"{cid} is a UnixFS {kind}, not a directory",
                                 protocol="unixfs", path="Type")
            yield TreeEntry(path, cid, False)
            continue
        if path:
            yield TreeEntry(path, cid, True)
        children = []
        for name, child in _links(cid, node, kind, get_block, depth):
            try:
                _check_name(name)
            except LocalProtocolError:
                raise ParseError(f"entry name {name!r} is not a file name",
                                 protocol="unixfs") from None
            count += 1
            if count > MAX_ENTRIES:
                raise LimitExceeded(f"more than {MAX_ENTRIES} entries", protocol="unixfs")
            children.append((f"{path}/{name}" if path else name, child, depth + 1))
        pending.extend(reversed(children))


def export_to_directory(root: Cid, get_block: Callable[[Cid], bytes], out: str | Path) -> int:
    """``ipfs get`` of a directory: write the tree of ``root`` under ``out`` (created);
    returns the number of entries written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for entry in walk(root, get_block):
        target = out.joinpath(*entry.path.split("/"))
        if entry.directory:
            target.mkdir(exist_ok=True)
        else:
            tmp = target.with_name(f".{target.name}.p2pkit-part")
            with open(tmp, "wb") as f:
                for piece in export(entry.cid, get_block):
                    f.write(piece)
            os.replace(tmp, target)
        written += 1
    return written
