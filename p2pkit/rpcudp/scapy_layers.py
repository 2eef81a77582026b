"""The scapy layer of rpcudp (Python ``kademlia``), on :data:`p2pkit.rpcudp.envelope.RpcudpDatagram`."""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.capture.scapy_layers import SchemaField, SchemaLayer
from p2pkit.errors import ParseError
from p2pkit.rpcudp.envelope import MIN_DATAGRAM_SIZE, RpcudpDatagram
from p2pkit.rpcudp.rpcs import RPC_ARGUMENTS, named_result

__all__ = ["LAYERS", "RpcudpLayer"]


class RpcudpLayer(SchemaLayer):
    """rpcudp, fields from :data:`p2pkit.rpcudp.envelope.RpcudpDatagram`."""

    name = "Kademlia rpcudp"
    protocol = "kademlia-rpcudp"
    fields_desc = [SchemaField("message", RpcudpDatagram)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A request: kind 0, the 20-byte id, then msgpack ``[name, args]`` (``0x92``). A
        response carries no marker of its own and scapy sees packets one at a time: kind 1
        and a body that is exactly one msgpack value of a shape a ``kademlia`` RPC returns."""
        if len(data) < MIN_DATAGRAM_SIZE or data[0] not in (0, 1):
            return False
        if data[0] == 0:
            return data[21] == 0x92
        try:
            body = RpcudpDatagram.parse(data).body
        except ParseError:
            return False
        return any("result" not in named_result(method, body) for method in RPC_ARGUMENTS)

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, RpcudpLayer) and other.message.kind == "request"
                and self.message.kind == "response"
                and other.message.message_id == self.message.message_id)


#: The ``kademlia-rpcudp`` descriptor's layers.
LAYERS = (RpcudpLayer,)
