"""A client's first flight, for admission under a flood (issue 13): accept a TCP connection only
once its first bytes have arrived (Linux ``TCP_DEFER_ACCEPT``), and count the bytes a socket
holds that the event loop has not read yet (``FIONREAD``).

For protocols whose client speaks first (BEP 3's handshake, an HTTP request, BEP 3 §trackers'
announce over HTTP): the kernel completes the TCP handshake but wakes ``accept`` only when
data comes, or when the deferral (one second here) has run out, when it hands the connection
over anyway. A connection opened and closed without a byte (connect/close churn) never
reaches the server, and a well-behaved client's first flight is already readable when the
server's admission looks at it. Elsewhere (no such option) nothing changes.

When the server must evict a connection that has not identified itself, one whose first
bytes are already in the kernel (:func:`unread_bytes`) is not idle: in a burst of accepts
the event loop reads no socket until the burst is handled, so "oldest" alone would pick a
well-behaved client still in its first round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

try:  # FIONREAD: how many bytes a socket holds unread (POSIX; not on Windows)
    import fcntl
    import termios
    _FIONREAD: int | None = termios.FIONREAD
except ImportError:  # pragma: no cover - Windows
    _FIONREAD = None

__all__ = ["defer_accept", "unread_bytes"]


def defer_accept(server: asyncio.Server, seconds: int = 1) -> bool:
    """Set ``TCP_DEFER_ACCEPT`` on ``server``'s listening sockets; False where Linux's option
    does not exist."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None:
        return False
    for sock in server.sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, seconds)
    return True


def unread_bytes(sock: Any) -> int:
    """Bytes the kernel holds for ``sock`` that nobody has read yet (``FIONREAD``); 0 where it
    cannot tell (no socket, a closed one, Windows)."""
    if sock is None or _FIONREAD is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), _FIONREAD, b"\0" * 4))[0]
    except (OSError, ValueError):
        return 0
