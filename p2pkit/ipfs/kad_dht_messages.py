"""The messages of libp2p's Kademlia DHT (libp2p kad-dht spec §RPC messages, ``/ipfs/kad/1.0.0``).

``Message`` carries a ``MessageType`` (PUT_VALUE, GET_VALUE, ADD_PROVIDER, GET_PROVIDERS,
FIND_NODE, PING), a ``key``, an optional ``Record`` and lists of ``Peer`` (``closerPeers``,
``providerPeers``). Fields have proto3 implicit presence. On the stream each message is
prefixed by its length as an unsigned varint.
"""

from __future__ import annotations

import enum

from p2pkit.ipfs.protobuf import Delimited, Field, Message

__all__ = ["ConnectionType", "KadMessage", "KadMessageFrame", "KadRecord", "MAX_KAD_MESSAGE_LENGTH",
           "MessageType"]

#: Largest message accepted (go-libp2p-kad-dht: "the maximum message size is 4 MiB").
MAX_KAD_MESSAGE_LENGTH = 4 * 1024 * 1024


class MessageType(enum.IntEnum):
    """``Message.MessageType``."""

    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(enum.IntEnum):
    """``Message.ConnectionType``."""

    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


# fmt: off
KadRecord = Message(
    "Record",
    Field(1, "key", "bytes", implicit=True, max_length=4096),
    Field(2, "value", "bytes", implicit=True),
    Field(5, "timeReceived", "string", implicit=True, max_length=64, doc="RFC 3339, set by receiver"),
)
KadPeer = Message(
    "Peer",
    Field(1, "id", "bytes", implicit=True, max_length=1024, doc="peer id (multihash)"),
    Field(2, "addrs", "bytes", repeated=True, max_length=1024, doc="binary multiaddrs"),
    Field(3, "connection", "enum", enum=ConnectionType, implicit=True),
)
KadMessage = Message(
    "Message",
    Field(1, "type", "enum", enum=MessageType, implicit=True),
    Field(2, "key", "bytes", implicit=True, max_length=4096),
    Field(3, "record", KadRecord),
    Field(8, "closerPeers", KadPeer, repeated=True),
    Field(9, "providerPeers", KadPeer, repeated=True),
    Field(10, "clusterLevelRaw", "int32", implicit=True, doc="NOT USED"),
    protocol="kad-dht",
)
# fmt: on
#: The message on its stream: varint length, then the message.
KadMessageFrame = Delimited(KadMessage, MAX_KAD_MESSAGE_LENGTH)
