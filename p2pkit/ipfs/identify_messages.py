"""The identify message (libp2p identify spec, ``/ipfs/id/1.0.0`` and ``/ipfs/id/push/1.0.0``).

proto2: ``optional string protocolVersion = 5; optional string agentVersion = 6; optional bytes
publicKey = 1; repeated bytes listenAddrs = 2; optional bytes observedAddr = 4; repeated string
protocols = 3;`` and ``optional bytes signedPeerRecord = 8`` (a signed envelope, RFC 0003).
On the stream the message is prefixed by its length as an unsigned varint.
"""

from __future__ import annotations

from p2pkit.ipfs.protobuf import Delimited, Field, Message

__all__ = ["MAX_IDENTIFY_LENGTH", "IdentifyFrame", "IdentifyMessage"]

#: Largest identify message accepted (go-libp2p's signedIDSize limit is 8 KiB; allow more
#: for long protocol lists).
MAX_IDENTIFY_LENGTH = 64 * 1024

# fmt: off
IdentifyMessage = Message(
    "Identify",
    Field(1, "publicKey", "bytes", max_length=8192, doc="serialized PublicKey of the sender"),
    Field(2, "listenAddrs", "bytes", repeated=True, max_length=1024, doc="binary multiaddrs"),
    Field(3, "protocols", "string", repeated=True, max_length=1024),
    Field(4, "observedAddr", "bytes", max_length=1024, doc="the address the sender sees us at"),
    Field(5, "protocolVersion", "string", max_length=1024),
    Field(6, "agentVersion", "string", max_length=1024),
    Field(8, "signedPeerRecord", "bytes", max_length=16384, doc="Envelope of a PeerRecord"),
    protocol="identify",
)
# fmt: on
#: The message on its stream: varint length, then the message.
IdentifyFrame = Delimited(IdentifyMessage, MAX_IDENTIFY_LENGTH)
