"""The scapy layer of KRPC (BEP 5), on :data:`p2pkit.dht.krpc.KrpcMessageLenient`."""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.capture.scapy_layers import SchemaField, SchemaLayer
from p2pkit.dht.dissect import detect_krpc
from p2pkit.dht.krpc import KrpcMessageLenient

__all__ = ["LAYERS", "KrpcLayer"]


class KrpcLayer(SchemaLayer):
    """KRPC (BEP 5), fields from :data:`p2pkit.dht.krpc.KrpcMessageLenient`."""

    name = "BT DHT (KRPC)"
    protocol = "bt-dht"  # show(): the dissector's tree
    fields_desc = [SchemaField("message", KrpcMessageLenient)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A bencoded dictionary with a ``y`` key (BEP 5: "every message has a key y")."""
        return detect_krpc(data) and b"1:y1:" in data

    def mysummary(self) -> str:
        m = self.message
        kind = {"q": "query", "r": "response", "e": "error"}.get(m.y, m.y)
        method = f" {m.method}" if m.method else ""
        return f"KRPC {kind}{method} t={m.t.hex()}"

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, KrpcLayer) and other.message.y == "q"
                and self.message.y in ("r", "e") and other.message.t == self.message.t)


#: The ``bt-dht`` descriptor's layers.
LAYERS = (KrpcLayer,)
