"""Bitswap 1.2.0 messages (ipfs bitswap-protocol spec §Bitswap 1.2.0 wire format).

A ``Message`` carries a ``Wantlist`` (entries with ``wantType`` Block or Have, ``cancel``,
``sendDontHave``), ``payload`` blocks (a CID ``prefix`` and the ``data``), ``blockPresences``
(Have / DontHave) and ``pendingBytes``; field 2 ``blocks`` is the 1.0.0 form (bare blocks,
CIDv0). Proto3, implicit presence. Each message is prefixed by its length as a varint.
"""

from __future__ import annotations

import enum

from p2pkit.ipfs.protobuf import Delimited, Field, Message

__all__ = ["MAX_BITSWAP_MESSAGE_LENGTH", "BitswapMessage", "BitswapMessageFrame",
           "BlockPresenceType", "WantType"]

#: Largest message accepted (go-bitswap and boxo: 4 MiB).
MAX_BITSWAP_MESSAGE_LENGTH = 4 * 1024 * 1024
#: Largest block (the spec's "blocks up to 2 MiB" interoperability bound).
MAX_BLOCK_LENGTH = 2 * 1024 * 1024


class WantType(enum.IntEnum):
    """``Wantlist.WantType``."""

    Block = 0
    Have = 1


class BlockPresenceType(enum.IntEnum):
    """``BlockPresenceType``."""

    Have = 0
    DontHave = 1


# fmt: off
WantlistEntry = Message(
    "Entry",
    Field(1, "block", "bytes", implicit=True, max_length=256, doc="CID of the block"),
    Field(2, "priority", "int32", implicit=True),
    Field(3, "cancel", "bool", implicit=True, doc="revokes an entry"),
    Field(4, "wantType", "enum", enum=WantType, implicit=True),
    Field(5, "sendDontHave", "bool", implicit=True),
)
Wantlist = Message(
    "Wantlist",
    Field(1, "entries", WantlistEntry, repeated=True),
    Field(2, "full", "bool", implicit=True, doc="whether this is the full wantlist"),
)
Block = Message(
    "Block",
    Field(1, "prefix", "bytes", implicit=True, max_length=256, doc="CID without the digest"),
    Field(2, "data", "bytes", implicit=True, max_length=MAX_BLOCK_LENGTH),
)
BlockPresence = Message(
    "BlockPresence",
    Field(1, "cid", "bytes", implicit=True, max_length=256),
    Field(2, "type", "enum", enum=BlockPresenceType, implicit=True),
)
BitswapMessage = Message(
    "Message",
    Field(1, "wantlist", Wantlist),
    Field(2, "blocks", "bytes", repeated=True, max_length=MAX_BLOCK_LENGTH, doc="Bitswap 1.0.0"),
    Field(3, "payload", Block, repeated=True),
    Field(4, "blockPresences", BlockPresence, repeated=True),
    Field(5, "pendingBytes", "int32", implicit=True),
    protocol="bitswap",
)
# fmt: on
#: The message on its stream: varint length, then the message.
BitswapMessageFrame = Delimited(BitswapMessage, MAX_BITSWAP_MESSAGE_LENGTH)
