"""UnixFS v1 ``Data`` (ipfs UnixFS spec §Data Format): what a dag-pb node's ``Data`` holds.

``DataType Type = 1`` (Raw, Directory, File, Metadata, Symlink, HAMTShard), ``bytes Data = 2``,
``uint64 filesize = 3``, ``repeated uint64 blocksizes = 4``, ``uint64 hashType = 5``,
``uint64 fanout = 6``, ``uint32 mode = 7``, ``UnixTime mtime = 8``. The message was declared
proto2 (presence is explicit: an absent field stays ``None``; ``blocksizes`` is not packed).

>>> UnixfsData.build({"Type": "Directory"}).hex()
'0801'
"""

from __future__ import annotations

import enum

from p2pkit.ipfs.dag_pb import MAX_BLOCK_LENGTH, PBNode
from p2pkit.ipfs.protobuf import Field, Message

__all__ = ["DataType", "UnixTime", "UnixfsData", "file_node"]


class DataType(enum.IntEnum):
    """``Data.DataType``."""

    Raw = 0
    Directory = 1
    File = 2
    Metadata = 3
    Symlink = 4
    HAMTShard = 5


# fmt: off
UnixTime = Message(
    "UnixTime",
    Field(1, "Seconds", "int64"),
    Field(2, "FractionalNanoseconds", "fixed32"),
)
UnixfsData = Message(
    "Data",
    Field(1, "Type", "enum", enum=DataType, doc="MUST be present"),
    Field(2, "Data", "bytes", max_length=MAX_BLOCK_LENGTH, doc="file content, symlink target, bitmap"),
    Field(3, "filesize", "uint64"),
    Field(4, "blocksizes", "uint64", repeated=True, doc="sizes of the children, multi-block files"),
    Field(5, "hashType", "uint64", doc="HAMTShard: murmur3-x64-64 (0x22)"),
    Field(6, "fanout", "uint64", doc="HAMTShard: power of 2, at most 1024"),
    Field(7, "mode", "uint32", doc="UnixFS 1.5"),
    Field(8, "mtime", UnixTime, doc="UnixFS 1.5"),
    protocol="unixfs",
)
# fmt: on


def file_node(content: bytes) -> bytes:
    """The dag-pb block of a one-chunk UnixFS file whose content is inlined (Kubo's
    ``--raw-leaves=false`` leaf).

    >>> from p2pkit.ipfs.cid import Cid
    >>> str(Cid.of(file_node(b""), codec="dag-pb", version=0))
    'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH'
    """
    data = UnixfsData.build({"Type": "File", "Data": content or None,
                             "filesize": len(content)})
    return PBNode.build({"Data": data})
