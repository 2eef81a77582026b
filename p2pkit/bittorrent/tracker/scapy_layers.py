"""scapy layers of the UDP tracker protocol (BEP 15), on its construct schemas.

The header fields the dispatcher peeks at are read with the struct the dissector derives from
the same schemas (:mod:`p2pkit.bittorrent.tracker.dissect`), never with hand-written offsets.
"""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.bittorrent.tracker.dissect import (
    _ACTION_CODES,
    _CONNECT,
    _REQUEST_HEAD,
    _RESPONSE_HEAD,
    _WITH_CONNECTION_ID,
)
from p2pkit.bittorrent.tracker.udp import PROTOCOL_ID, UdpTrackerRequest, UdpTrackerResponse
from p2pkit.capture.scapy_layers import SchemaField, SchemaLayer

__all__ = ["LAYERS", "UdpTrackerLayer", "UdpTrackerResponseLayer"]


class UdpTrackerLayer(SchemaLayer):
    """UDP tracker protocol (BEP 15) request, fields from ``UdpTrackerRequest``."""

    name = "BT UDP tracker request"
    protocol = "bt-tracker"  # show(): the dissector's tree
    fields_desc = [SchemaField("message", UdpTrackerRequest)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A connect request (the protocol id) or an announce/scrape action."""
        if len(data) < _REQUEST_HEAD.size:
            return False
        connection_id, action, _ = _REQUEST_HEAD.unpack_from(data)
        return (connection_id == PROTOCOL_ID and action == _CONNECT) or (
            action in _WITH_CONNECTION_ID)

    def mysummary(self) -> str:
        return f"UDP tracker {self.message.action} request tid={self.message.transaction_id}"


class UdpTrackerResponseLayer(SchemaLayer):
    """UDP tracker protocol (BEP 15) response, fields from ``UdpTrackerResponse``."""

    name = "BT UDP tracker response"
    fields_desc = [SchemaField("message", UdpTrackerResponse)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A known action where a response has it."""
        return len(data) >= _RESPONSE_HEAD.size and (
            _RESPONSE_HEAD.unpack_from(data)[0] in _ACTION_CODES)

    def mysummary(self) -> str:
        return f"UDP tracker {self.message.action} response tid={self.message.transaction_id}"

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, UdpTrackerLayer)
                and other.message.transaction_id == self.message.transaction_id)


#: The ``bt-tracker`` descriptor's layers.
LAYERS = (UdpTrackerLayer, UdpTrackerResponseLayer)
