"""The scapy layer of rpcudp (Python ``kademlia``), on :data:`p2pkit.rpcudp.envelope.RpcudpDatagram`."""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.capture.scapy_layers import SchemaField, SchemaLayer
from p2pkit.rpcudp.envelope import MIN_DATAGRAM_SIZE, RpcudpDatagram

__all__ = ["LAYERS", "RpcudpLayer"]


class RpcudpLayer(SchemaLayer):
    """rpcudp, fields from :data:`p2pkit.rpcudp.envelope.RpcudpDatagram`."""

    name = "Kademlia rpcudp"
    fields_desc = [SchemaField("message", RpcudpDatagram)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A request: kind 0, the 20-byte id, then msgpack ``[name, args]`` (``0x92``).
        A response carries no marker of its own: scapy sees packets one at a time, so
        responses are left to the dissector, which pairs them with their requests."""
        return len(data) >= MIN_DATAGRAM_SIZE and data[0] == 0 and data[21] == 0x92

    def mysummary(self) -> str:
        m = self.message
        if m.kind == "request" and isinstance(m.body, list) and m.body:
            return f"rpcudp request {m.body[0]} id={m.message_id.hex()[:8]}"
        return f"rpcudp {m.kind} id={m.message_id.hex()[:8]}"

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, RpcudpLayer) and other.message.kind == "request"
                and self.message.kind == "response"
                and other.message.message_id == self.message.message_id)


#: The ``kademlia-rpcudp`` descriptor's layers.
LAYERS = (RpcudpLayer,)
