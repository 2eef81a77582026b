"""dag-pb: ``PBNode`` and ``PBLink`` (ipld dag-pb spec §Serial Format, codec 0x70).

"The canonical form of dag-pb [...] Links are sorted by Name [...] the Links field is
encoded before the Data field" (§Canonical Form): the ``PBNode`` schema declares ``Links``
first, so building writes field 2 before field 1, as go-merkledag, js-dag-pb and Kubo do.
Decoders "MUST reject" fields other than these (§Strictness): :func:`decode_node` refuses
unknown fields.

>>> from p2pkit.ipfs.cid import Cid
>>> node = PBNode.build({"Data": bytes.fromhex("0801")})
>>> node.hex(), str(Cid.of(node, codec="dag-pb", version=0))
('0a020801', 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn')
"""

from __future__ import annotations

from typing import Any

from p2pkit.errors import ParseError
from p2pkit.ipfs.protobuf import Field, Message

__all__ = ["MAX_BLOCK_LENGTH", "PBLink", "PBNode", "decode_node"]

#: Largest block decoded (the 2 MiB interoperability bound of Bitswap).
MAX_BLOCK_LENGTH = 2 * 1024 * 1024

# fmt: off
PBLink = Message(
    "PBLink",
    Field(1, "Hash", "bytes", max_length=256, doc="binary CID of the target"),
    Field(2, "Name", "string", max_length=1024, doc="UTF-8 name"),
    Field(3, "Tsize", "uint64", doc="cumulative size of the target"),
)
PBNode = Message(
    "PBNode",
    Field(2, "Links", PBLink, repeated=True, doc="refs to other objects (written first)"),
    Field(1, "Data", "bytes", max_length=MAX_BLOCK_LENGTH, doc="opaque user data"),
    protocol="dag-pb",
)
# fmt: on


def decode_node(block: bytes) -> Any:
    """A ``PBNode``, strictly: unknown fields are refused (§Strictness)."""
    node = PBNode.parse(block)
    bad = node._unknown or [u for link in node.Links for u in link._unknown]
    if bad:
        raise ParseError(f"field number {bad[0].number} is not part of dag-pb",
                         protocol="dag-pb", path="PBNode")
    return node
