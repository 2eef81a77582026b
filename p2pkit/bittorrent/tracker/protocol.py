"""The registry entries of the UDP tracker protocol (BEP 15) and of HTTP trackers.

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "HTTP_TRACKER", "UDP_TRACKER"]

UDP_TRACKER = ProtocolDescriptor(
    name="bt-tracker",
    title="BitTorrent UDP tracker protocol",
    specs=("BEP 15", "BEP 41"),
    schemas=(
        "p2pkit.bittorrent.tracker.udp.UdpTrackerRequest",
        "p2pkit.bittorrent.tracker.udp.UdpTrackerResponse",
        "p2pkit.bittorrent.tracker.udp.UdpTrackerResponse6",
    ),
    datagram_detector="p2pkit.bittorrent.tracker.dissect:detect_udp_tracker",
    datagram_decoder="p2pkit.bittorrent.tracker.dissect:UdpTrackerDecoder",
    priority=100,
    messages=("connect", "announce", "scrape", "error", "undecoded"),
    fields=(*UNDECODED_FIELDS, "direction",),
    summary=("port", "info_hash", "transaction_id", "action", "connection_id", "event"),
    scapy="p2pkit.bittorrent.tracker.scapy_layers:LAYERS",
)

HTTP_TRACKER = ProtocolDescriptor(
    name="bt-tracker-http",
    title="BitTorrent HTTP tracker protocol",
    specs=("BEP 3 §trackers", "BEP 7", "BEP 23", "BEP 48"),
    schemas=(
        "p2pkit.bittorrent.tracker.http.AnnounceResponse",
        "p2pkit.bittorrent.tracker.http.ScrapeResponse",
    ),
    stream_detector="p2pkit.bittorrent.tracker.detect:detect_http_tracker",
    stream_decoder="p2pkit.bittorrent.tracker.dissect:http_tracker_stream",
    priority=200,
    messages=("announce", "scrape", "http_request", "http_response", "undecoded"),
    summary=("method", "port", "info_hash", "status", "event"),
    fields=(*UNDECODED_FIELDS, "direction", "method", "path", "status", "info_hash", "peer_id", "port",
            "uploaded", "downloaded", "left", "compact", "no_peer_id", "event", "ip", "numwant",
            "key", "trackerid", "info_hashes", "extra", "files", "flags", "peers", "peers6",
            "interval", "min_interval", "tracker_id", "complete", "incomplete",
            "failure_reason", "warning_message", "external_ip", "peers_compact"),
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (UDP_TRACKER, HTTP_TRACKER)
