"""Recognising an HTTP tracker TCP direction by its first bytes: the ``bt-tracker-http``
descriptor's stream detector, in a module of its own so that detection (asked of every TCP
direction of a capture) imports none of the tracker decoding.
"""

from __future__ import annotations

import re

from p2pkit.bittorrent.tracker.protocol import HTTP_TRACKER

__all__ = ["detect_http_tracker"]

_TRACKER_REQUEST = re.compile(rb"GET /[^ ?]*(announce|scrape)[^ ]*\?|GET /[^ ]*[?&]info_hash=")


def detect_http_tracker(head: bytes, *, other: str | None = None, complete: bool = False,
                        from_start: bool = True) -> bool:
    """An announce or scrape request line (BEP 3 §trackers, BEP 48), or an HTTP response on a
    connection whose other direction is an HTTP tracker client.

    >>> detect_http_tracker(b"GET /announce?info_hash=%12 HTTP/1.1\\r\\n")
    True
    >>> detect_http_tracker(b"HTTP/1.1 200 OK\\r\\n", other="bt-tracker-http")
    True
    """
    if _TRACKER_REQUEST.match(head):
        return True
    return head.startswith(b"HTTP/1.") and other == HTTP_TRACKER.name
