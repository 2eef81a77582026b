"""CARv1, the Content Addressable aRchive (ipld/specs transport/car/carv1).

A CAR is a header then sections: "a varint-prefixed DAG-CBOR encoded header [...] {roots:
[CID], version: 1}" and, for each block, "a varint length [...] followed by the CID [...] and
the block data". The header is declared here in the only form the canonical DAG-CBOR encoding
allows for it (map keys sorted by length: ``roots`` before ``version``; each root a CBOR tag 42
around a byte string of ``0x00`` and the binary CID), which is what go-car and js ``@ipld/car``
write. Every block read is checked against its CID (:func:`read_car`).

>>> from p2pkit.ipfs.cid import Cid
>>> block = b"hello world\\n"
>>> car = write_car([Cid.of(block)], [(Cid.of(block), block)])
>>> roots, blocks = read_car(car)
>>> str(roots[0]) == str(Cid.of(block)), blocks[Cid.of(block)] == block
(True, True)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import construct
from construct import Const, GreedyBytes, Struct

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.cbor import CborHead as _CborHead
from p2pkit.ipfs.cid import Cid, CidBinary
from p2pkit.ipfs.dag_pb import MAX_BLOCK_LENGTH
from p2pkit.ipfs.varint import LengthPrefixed
from p2pkit.schema import Schema

__all__ = ["CarHeader", "CarSection", "MAX_ROOTS", "read_car", "write_car"]

#: Roots a header may list, and bytes a header may take.
MAX_ROOTS = 64
MAX_HEADER_LENGTH = 64 * 1024
#: A section is a CID and one block.
MAX_SECTION_LENGTH = MAX_BLOCK_LENGTH + 128


class _Roots(construct.Adapter):
    def _decode(self, obj: Any, context: Any, path: str) -> list[bytes]:
        if len(obj) > MAX_ROOTS:
            raise LimitExceeded(f"{len(obj)} roots (at most {MAX_ROOTS})")
        return list(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        return list(obj)


# fmt: off
#: One root: CBOR tag 42 around the byte string 0x00 + binary CID (DAG-CBOR's CID encoding).
CborCid = construct.FocusedSeq(
    "cid",
    Const(b"\xd8\x2a"),
    "cid" / construct.Prefixed(_CborHead(2), construct.FocusedSeq(
        "cid", Const(b"\x00"), "cid" / GreedyBytes)),
)
#: The header: its varint length, then {"roots": [CID, ...], "version": 1} in DAG-CBOR.
CarHeader = Schema(LengthPrefixed(Struct(
    "map" / Const(b"\xa2") * "a CBOR map of two entries",
    "roots_key" / Const(b"\x65roots"),
    "roots" / _Roots(construct.PrefixedArray(_CborHead(4), CborCid)) * "root CIDs (binary)",
    "version_key" / Const(b"\x67version"),
    "version" / Const(b"\x01") * "1",
), MAX_HEADER_LENGTH), protocol="car")
#: One section: its varint length, the binary CID, the block.
CarSection = Schema(LengthPrefixed(Struct(
    "cid" / CidBinary.subcon * "the block's CID",
    "block" / GreedyBytes * "the block's bytes",
), MAX_SECTION_LENGTH), protocol="car")
# fmt: on


def write_car(roots: Sequence[Cid], blocks: Iterable[tuple[Cid, bytes]]) -> bytes:
    """A CARv1 holding ``blocks`` (in the order given) with ``roots``."""
    out = io.BytesIO()
    out.write(CarHeader.build({"roots": [bytes(r) for r in roots]}))
    for cid, block in blocks:
        parsed = CidBinary.parse(bytes(cid))
        out.write(CarSection.build({"cid": parsed, "block": block}))
    return out.getvalue()


def read_car(data: bytes) -> tuple[list[Cid], dict[Cid, bytes]]:
    """The roots and blocks of a CARv1; a block that does not match its CID, or a CID that
    does not parse, is a :class:`~p2pkit.errors.ParseError` with the section's offset."""
    stream = io.BytesIO(data)
    header = CarHeader.parse_stream(stream)
    roots = [Cid.from_bytes(r) for r in header.roots]
    blocks: dict[Cid, bytes] = {}
    while stream.tell() < len(data):
        at = stream.tell()
        section = CarSection.parse_stream(stream)
        cid = Cid.from_bytes(CidBinary.build(section.cid))
        if not cid.verify(section.block):
            raise ParseError(f"block does not match its CID {cid}", protocol="car",
                             path="block", offset=at)
        blocks[cid] = section.block
    return roots, blocks
