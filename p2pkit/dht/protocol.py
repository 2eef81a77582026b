"""The registry entry of the Mainline DHT's KRPC (BEP 5 and its extensions).

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "DHT"]

DHT = ProtocolDescriptor(
    name="bt-dht",
    title="BitTorrent Mainline DHT (KRPC)",
    specs=("BEP 5", "BEP 32", "BEP 33", "BEP 42", "BEP 43", "BEP 44", "BEP 51"),
    schemas=(
        "p2pkit.dht.krpc.ENVELOPE",
        "p2pkit.dht.krpc.ARGUMENTS",
        "p2pkit.dht.krpc.RESPONSE_VALUES",
        "p2pkit.dht.krpc.CompactNode",
        "p2pkit.dht.krpc.CompactPeer",
    ),
    datagram_detector="p2pkit.dht.dissect:detect_krpc",
    datagram_decoder="p2pkit.dht.dissect:KrpcDecoder",
    priority=200,
    messages=("query", "response", "error", "undecoded"),
    summary=("method", "port", "info_hash", "transaction_id", "t"),
    fields=(*UNDECODED_FIELDS, "transaction_id", "method", "a", "r", "e", "v", "ip", "ro", "extra",
            "unknown_keys"),
    scapy="p2pkit.dht.scapy_layers:LAYERS",
    cli=("dht", "p2pkit.cli.dht:dht"),
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (DHT,)
