"""scapy layers of the peer wire (BEP 3) and uTP (BEP 29), on their construct schemas.

Bound by :func:`p2pkit.capture.scapy_layers.register` through the registry (the ``scapy``
entries of :mod:`p2pkit.bittorrent.protocol`); the fields are the schemas' own.
"""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.bittorrent.dissect import SUMMARISED
from p2pkit.bittorrent.wire.framer import frame_length
from p2pkit.bittorrent.wire.messages import PeerMessageLenient
from p2pkit.bittorrent.wire.utp import UtpPacket, looks_like_utp
from p2pkit.capture.scapy_layers import FramedField, SchemaField, SchemaLayer, StreamLayer
from p2pkit.errors import LimitExceeded

__all__ = ["LAYERS", "UTP_LAYERS", "PeerMessageLayer", "UtpLayer"]


def _peer_message_length(data: bytes) -> int | None:
    """BEP 3: the framer's own length rule (a four-byte big-endian prefix, bounded)."""
    try:
        return frame_length(data)
    except LimitExceeded:
        return None


class PeerMessageLayer(StreamLayer):
    """One BitTorrent peer-wire message (BEP 3), fields from ``PeerMessageLenient``."""

    name = "BitTorrent"
    fields_desc = [FramedField("message", PeerMessageLenient, _peer_message_length)]
    summarised = SUMMARISED

    def mysummary(self) -> str:
        return f"BitTorrent {self.message.type}"


class UtpLayer(SchemaLayer):
    """uTP (BEP 29), fields from :data:`p2pkit.bittorrent.wire.utp.UtpPacket`."""

    name = "uTP"
    fields_desc = [SchemaField("message", UtpPacket)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        return looks_like_utp(data)

    def mysummary(self) -> str:
        m = self.message
        return (f"uTP {m.type} connection_id={m.connection_id} seq_nr={m.seq_nr} "
                f"ack_nr={m.ack_nr}")

    def answers(self, other: Packet) -> bool:
        return isinstance(other, UtpLayer) and other.message.seq_nr == self.message.ack_nr


#: The ``bittorrent`` descriptor's layers (stream layers bind to the TCP ports given).
LAYERS = (PeerMessageLayer,)
#: The ``bt-utp`` descriptor's layers (datagram layers join the UDP dispatcher).
UTP_LAYERS = (UtpLayer,)
