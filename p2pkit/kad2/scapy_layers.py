"""The scapy layer of eMule Kad2, on :data:`p2pkit.kad2.messages.KadPacketLenient`.

``show()`` and ``summary()`` are the dissector's tree and summary line (the layer's
``protocol`` names the ``emule-kad`` decoder).
"""

from __future__ import annotations

from scapy.packet import Packet

from p2pkit.capture.scapy_layers import SchemaField, SchemaLayer
from p2pkit.kad2.messages import (
    MESSAGES,
    OP_KADEMLIAHEADER,
    OP_KADEMLIAPACKEDPROT,
    KadPacketLenient,
)

__all__ = ["LAYERS", "KadLayer"]

#: Requests and the responses that answer them (aMule ``KademliaUDPListener.cpp``).
_ANSWERS = {"bootstrap_res": "bootstrap_req", "hello_res": "hello_req", "res": "req",
            "search_res": ("search_key_req", "search_source_req", "search_notes_req"),
            "publish_res": ("publish_key_req", "publish_source_req", "publish_notes_req"),
            "pong": "ping", "firewalled_res": ("firewalled_req", "firewalled2_req"),
            "findbuddy_res": "findbuddy_req", "hello_res_ack": "hello_res"}


class KadLayer(SchemaLayer):
    """eMule Kad2, fields from :data:`p2pkit.kad2.messages.KadPacketLenient`."""

    name = "eMule Kad"
    protocol = "emule-kad"
    fields_desc = [SchemaField("message", KadPacketLenient)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        """A Kad header byte (0xE4, or 0xE5 packed) and an opcode aMule knows."""
        return (len(data) >= 2 and data[0] in (OP_KADEMLIAHEADER, OP_KADEMLIAPACKEDPROT)
                and data[1] in MESSAGES.names)

    def answers(self, other: Packet) -> bool:
        if not isinstance(other, KadLayer):
            return False
        asked = _ANSWERS.get(str(self.message.message.opcode), ())
        return str(other.message.message.opcode) in (asked if isinstance(asked, tuple)
                                                     else (asked,))


#: The ``emule-kad`` descriptor's layers.
LAYERS = (KadLayer,)
