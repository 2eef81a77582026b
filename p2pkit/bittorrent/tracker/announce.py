"""What a client tells a tracker and what it hears back, whatever the transport (BEP 3
§trackers, BEP 7, BEP 15, BEP 48).

The HTTP client (:mod:`p2pkit.bittorrent.tracker.client`) and the UDP client core
(:mod:`p2pkit.bittorrent.tracker.udp_client`) take the same :class:`Announce` and give the same
:class:`AnnounceResult` and :class:`ScrapeResult`, so a caller never cares which one answered.

>>> Announce(info_hash=b"i" * 20, peer_id=b"-PK0001-aaaaaaaaaaaa", port=6881, event="started")
Announce(info_hash=b'iiiiiiiiiiiiiiiiiiii', peer_id=b'-PK0001-aaaaaaaaaaaa', port=6881, uploaded=0, downloaded=0, left=0, event='started', numwant=None, key=0, tracker_id=None)
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pkit.errors import LocalProtocolError

__all__ = ["Announce", "AnnounceResult", "ScrapeResult", "TrackerPeer"]

_EVENTS = ("started", "completed", "stopped", "")


@dataclass(frozen=True, kw_only=True)
class Announce:
    """What we tell a tracker (BEP 3 §trackers; BEP 7 ``key``; BEP 15 announce request)."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    #: "started", "completed", "stopped" or "" for a regular reannounce.
    event: str = ""
    #: Peers wanted; ``None`` lets the tracker choose.
    numwant: int | None = None
    #: BEP 7: "The client SHOULD include a key parameter in its announces"; a 32-bit number (the
    #: BEP 15 ``key`` field, sent as 8 hex digits over HTTP as libtorrent does).
    key: int = 0
    #: The ``tracker id`` a previous HTTP response asked us to send back.
    tracker_id: bytes | None = None

    def __post_init__(self) -> None:
        # BEP 3: "info_hash: The 20 byte sha1 hash [...] peer_id: A string of length 20".
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise LocalProtocolError("info_hash and peer_id must be 20 bytes")
        if not 0 <= self.port <= 0xFFFF or not 0 <= self.key <= 0xFFFFFFFF:
            raise LocalProtocolError("port must fit 16 bits and key 32 bits")
        if self.event not in _EVENTS:
            raise LocalProtocolError(f"event must be one of {_EVENTS}, not {self.event!r}")
        if min(self.uploaded, self.downloaded, self.left) < 0 or (self.numwant or 0) < 0:
            raise LocalProtocolError("byte counts and numwant must not be negative")


@dataclass(frozen=True, kw_only=True)
class TrackerPeer:
    """A peer handed out by a tracker. ``host`` is an IP address (or, in BEP 3's dictionary
    model, possibly a DNS name); ``peer_id`` only when the tracker sent one."""

    host: str
    port: int
    peer_id: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class AnnounceResult:
    """A tracker's answer. ``complete``/``incomplete`` are BEP 15's seeders/leechers."""

    interval: int
    min_interval: int | None = None
    peers: tuple[TrackerPeer, ...] = ()
    complete: int | None = None
    incomplete: int | None = None
    warning_message: str | None = None
    tracker_id: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class ScrapeResult:
    """BEP 48: "complete [...] downloaded [...] incomplete" for one torrent."""

    complete: int = 0
    downloaded: int = 0
    incomplete: int = 0
