"""The registry entry of rpcudp with the Python ``kademlia`` package's RPCs (decode only).

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "RPCUDP"]

RPCUDP = ProtocolDescriptor(
    name="kademlia-rpcudp",
    title="Python kademlia over rpcudp (msgpack RPC)",
    specs=("rpcudp 5.0 protocol.py", "kademlia 2.2 protocol.py"),
    schemas=("p2pkit.rpcudp.envelope.RpcudpDatagram", "p2pkit.rpcudp.rpcs.RPC_ARGUMENTS"),
    datagram_detector="p2pkit.rpcudp.dissect:detect_rpcudp",
    datagram_decoder="p2pkit.rpcudp.dissect:RpcudpDecoder",
    priority=240,
    messages=("request", "response", "undecoded"),
    summary=("method", "message_id", "key", "value", "stored", "nodes"),
    fields=(*UNDECODED_FIELDS, "method", "message_id", "arguments", "node_id", "key", "value",
            "stored", "nodes", "result", "args", "ip", "port"),
    scapy="p2pkit.rpcudp.scapy_layers:LAYERS",
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (RPCUDP,)
