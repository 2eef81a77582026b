"""One HTTP/1 exchange for the harness: send one request head, read one response, bounded.

The HTTP tracker cases (BEP 3 §trackers, BEP 48) each send ``GET /announce?…`` or
``GET /scrape?…`` on a fresh TCP connection and read what comes back. The head is built with
the project's one HTTP/1 head codec (:func:`p2pkit.http1.build_head`); the response is read up
to the end of its head (at most ``MAX_RESPONSE_HEAD`` bytes), then ``Content-Length`` bytes
of body, or to the end of the connection (at most :data:`MAX_RESPONSE_SIZE` bytes in all),
within one timeout. Nothing is decoded here beyond the head's framing: the caller decodes the
body with the tracker schemas.

>>> request_head("/announce", "info_hash=%AB&port=1", host="127.0.0.1:6969")
b'GET /announce?info_hash=%AB&port=1 HTTP/1.0\\r\\nHost: 127.0.0.1:6969\\r\\nUser-Agent: p2pkit-conformance\\r\\n\\r\\n'
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from dataclasses import dataclass

from p2pkit import http1
from p2pkit.errors import P2PKitError

__all__ = ["MAX_RESPONSE_HEAD", "MAX_RESPONSE_SIZE", "HttpReply", "exchange", "request_head"]

#: Longest response head read.
MAX_RESPONSE_HEAD = http1.MAX_HEAD_SIZE
#: Most bytes of one response (head and body) read before the reply counts as oversized.
MAX_RESPONSE_SIZE = 1 << 20
#: The harness's User-Agent.
USER_AGENT = "p2pkit-conformance"


def request_head(path: str, query: str | None, *, host: str,
                 headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """``GET path?query HTTP/1.0`` with ``Host``, a User-Agent and ``headers``."""
    target = path if query is None else f"{path}?{query}"
    return http1.build_head(f"GET {target} HTTP/1.0",
                            [("Host", host), ("User-Agent", USER_AGENT), *headers])


@dataclass
class HttpReply:
    """What came back on one connection: the bytes (None when nothing did) and why it ended."""

    data: bytes | None
    elapsed: float
    #: Why the reply is incomplete or absent (refused, reset, timeout, oversized), or ''.
    error: str = ""


def _complete(data: bytes) -> bool:
    """The response is whole: its head ended and ``Content-Length`` bytes of body followed."""
    try:
        end = http1.head_end(data, max_size=MAX_RESPONSE_HEAD)
        if end is None:
            return False
        head = http1.parse_head(data[:end], max_size=MAX_RESPONSE_HEAD)
    except P2PKitError:
        return True  # not HTTP, or a head over the limit: nothing more to wait for
    length = head.headers.get("content-length")
    if length is None or not length.strip().isdigit():
        return False  # the body runs to the end of the connection
    return len(data) >= end + int(length)


async def exchange(address: tuple[str, int], request: bytes, *, timeout: float,
                   local_ip: str | None = None) -> HttpReply:
    """Connect to ``address`` (from ``local_ip``), send ``request``, read one response.

    Never raises for network trouble: a refused or reset connection, a timeout or an oversized
    answer is said in ``error``, with whatever bytes came.
    """
    started = time.monotonic()
    deadline = started + timeout
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            address[0], address[1], family=family,
            local_addr=(local_ip, 0) if local_ip else None), timeout)
    except (OSError, TimeoutError) as e:
        reason = "connect timed out" if isinstance(e, TimeoutError) else (
            os.strerror(e.errno) if e.errno else str(e))
        return HttpReply(None, time.monotonic() - started, reason)
    data = bytearray()
    error = ""
    try:
        writer.write(request)
        await asyncio.wait_for(writer.drain(), max(0.0, deadline - time.monotonic()))
        while not _complete(bytes(data)):
            left = deadline - time.monotonic()
            if left <= 0:
                error = "timed out"
                break
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_RESPONSE_SIZE:
                error = f"response over {MAX_RESPONSE_SIZE} bytes"
                break
    except TimeoutError:
        error = "timed out"
    except OSError as e:
        error = e.strerror or str(e) or type(e).__name__
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return HttpReply(bytes(data) if data else None, time.monotonic() - started, error)
