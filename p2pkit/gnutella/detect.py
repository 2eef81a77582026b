"""Recognising a Gnutella TCP direction by its first bytes: the ``gnutella`` descriptor's
stream detector, in a module of its own so that detection (asked of every TCP direction of a
capture, Gnutella's first) imports none of the descriptor decoding.
"""

from __future__ import annotations

import re

from p2pkit.gnutella.protocol import GNUTELLA

__all__ = ["detect_gnutella"]

_GNUTELLA_HTTP = re.compile(rb"(GET|HEAD) /(uri-res/|get/|gnutella/)")


def detect_gnutella(head: bytes, *, other: str | None = None, complete: bool = False,
                    from_start: bool = True) -> bool:
    """``GNUTELLA CONNECT`` / ``GNUTELLA/0.6`` (handshaking_0.6 §2), ``GIV`` (0.4 §Push), a
    servent's HTTP request, or an HTTP response on a connection that is Gnutella.

    >>> detect_gnutella(b"GNUTELLA CONNECT/0.6\\r\\n"), detect_gnutella(b"SSH-2.0")
    (True, False)
    """
    if head.startswith((b"GNUTELLA", b"GIV ")) or _GNUTELLA_HTTP.match(head):
        return True
    return head.startswith(b"HTTP/1.") and other == GNUTELLA.name
