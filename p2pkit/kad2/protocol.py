"""The registry entry of eMule Kad2 (decode only).

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "KAD2", "kad2_messages"]


def kad2_messages() -> tuple[str, ...]:
    """Every opcode's name (imported only when asked)."""
    from p2pkit.kad2.messages import MESSAGES

    return (*MESSAGES.ids, "unknown", "undecoded")


KAD2 = ProtocolDescriptor(
    name="emule-kad",
    title="eMule Kad2 (aMule, eMule)",
    specs=("aMule KademliaUDPListener.cpp", "aMule kad2/Client2Client/UDP.h"),
    schemas=(
        "p2pkit.kad2.messages.KadPacket",
        "p2pkit.kad2.messages.OPCODES",
        "p2pkit.kad2.messages.Contact",
        "p2pkit.kad2.messages.SearchExpression",
        "p2pkit.kad2.tags.Tag",
        "p2pkit.kad2.obfuscation.ObfuscatedPacket",
        "p2pkit.kad2.obfuscation.DeobfuscatedKadPacket",
    ),
    datagram_detector="p2pkit.kad2.dissect:detect_kad",
    datagram_decoder="p2pkit.kad2.dissect:KadDecoder",
    priority=250,
    messages="p2pkit.kad2.protocol:kad2_messages",
    summary=("client_id", "target", "keyword", "file", "tcp_port", "udp_port", "version", "type", "contacts",
             "results", "entries", "load", "ip", "packed", "encryption"),
    fields=(*UNDECODED_FIELDS, "packed", "packed_size", "inflated_size", "obfuscation"),
    scapy="p2pkit.kad2.scapy_layers:LAYERS",
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (KAD2,)
