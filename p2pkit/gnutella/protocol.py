"""The registry entry of Gnutella 0.6 (handshakes, descriptors, the servent's HTTP side).

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "GNUTELLA"]


def gnutella_messages() -> tuple[str, ...]:
    """Every message name a Gnutella record can carry: the payload types, the handshake, the
    HTTP side and ``giv``."""
    from p2pkit.gnutella.descriptors import PAYLOADS

    return ("handshake", "http_request", "http_response", "http_body", "giv", "unknown", "undecoded",
            *(name for name, _ in PAYLOADS.values()))


GNUTELLA = ProtocolDescriptor(
    name="gnutella",
    title="Gnutella 0.6",
    specs=("Gnutella 0.4", "Gnutella 0.6 handshaking", "GGEP", "QRP", "HUGE"),
    schemas=(
        "p2pkit.gnutella.descriptors.DescriptorHeader",
        "p2pkit.gnutella.descriptors.PAYLOADS",
    ),
    stream_detector="p2pkit.gnutella.detect:detect_gnutella",
    stream_decoder="p2pkit.gnutella.dissect:gnutella_stream",
    datagram_detector="p2pkit.gnutella.udp_detect:detect_gnutella_udp",
    datagram_decoder="p2pkit.gnutella.dissect:GnutellaDatagrams",
    priority=100,
    messages="p2pkit.gnutella.protocol:gnutella_messages",
    summary=("method", "length", "port", "guid", "ttl", "hops", "status"),
    fields=(*UNDECODED_FIELDS, "guid", "ttl", "hops", "payload_type", "payload", "kind", "version", "headers",
            "status", "reason", "method", "target", "length", "sha1", "file_index",
            "servent_guid", "file_name", "name", "body"),
    scapy="p2pkit.gnutella.scapy_layers:LAYERS",
    cli=("gnutella", "p2pkit.cli.gnutella:gnutella"),
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (GNUTELLA,)
