"""Reading a UnixFS file back from its blocks (ipfs-unixfs.md §Data Format, §dag-pb File).

A raw block is file bytes; a dag-pb ``File`` node holds its bytes in ``Data`` and/or in its
linked children, in link order. :func:`children` lists what a block links to (to fetch a DAG
level by level); :func:`export` yields the file's bytes given a way to get blocks.

>>> from p2pkit.ipfs.unixfs_importer import ImportSettings, import_bytes
>>> blocks = {}
>>> s = ImportSettings(chunk_size=3, max_children=2, cid_version=1, raw_leaves=False)
>>> root = import_bytes(b"hello world", s, blocks=blocks)
>>> b"".join(export(root, blocks.__getitem__))
b'hello world'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.cid import DAG_PB, RAW, Cid
from p2pkit.ipfs.dag_pb import decode_node
from p2pkit.ipfs.unixfs import UnixfsData

__all__ = ["MAX_DEPTH", "children", "export"]

#: Deepest DAG followed (a balanced DAG of 174-link nodes is 4 levels for 200 GiB).
MAX_DEPTH = 32


def children(cid: Cid, block: bytes) -> list[Cid]:
    """The CIDs ``block`` (the block of ``cid``) links to, in order."""
    if cid.codec == RAW:
        return []
    if cid.codec != DAG_PB:
        raise ParseError(f"codec {cid.codec_name} is not UnixFS", protocol="unixfs")
    return [Cid.from_bytes(link.Hash) for link in decode_node(block).Links]


def export(root: Cid, get_block: Callable[[Cid], bytes], depth: int = 0) -> Iterator[bytes]:
    """The bytes of the file whose DAG starts at ``root`` (every block checked against its
    CID as it is read)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"a UnixFS DAG deeper than {MAX_DEPTH}", protocol="unixfs")
    block = get_block(root)
    if not root.verify(block):
        raise ParseError(f"block does not match its CID {root}", protocol="unixfs")
    if root.codec == RAW:
        yield block
        return
    node = decode_node(block)
    data = UnixfsData.parse(node.Data or b"")
    if data.Type not in ("File", "Raw"):
        raise ParseError(f"a UnixFS {data.Type}, not a file", protocol="unixfs", path="Type")
    if data.Data:
        yield data.Data
    for link in node.Links:
        yield from export(Cid.from_bytes(link.Hash), get_block, depth + 1)
