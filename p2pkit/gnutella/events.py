"""What a Gnutella connection reports to its application, and what the application sends.

Names follow the project's vocabulary (DESIGN.md): a message received from the peer is named
by the spec's message (``QueryHit``, ``Push``); a change of state is a past participle
(``ConnectionEstablished``, ``ConnectionRefused``, ``ConnectionClosed``). They live here, not
in :mod:`p2pkit.gnutella.descriptors`, whose ``QueryHit`` and ``Push`` are the schemas.

Every connection ends with exactly one :class:`ConnectionClosed` (after a
:class:`ConnectionRefused` too): that is when a driver closes its socket.

>>> ConnectionClosed(conn_id="up", code=200, reason="Servent shutdown", by_peer=True).code
200
>>> Bye(code=99, message="x")
Traceback (most recent call last):
...
p2pkit.errors.LocalProtocolError: Bye code 99 outside 200..599 (bye §2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p2pkit.core import Event
from p2pkit.errors import LocalProtocolError
from p2pkit.http1 import Headers

__all__ = [
    "Bye",
    "ConnectBackRequested",
    "ConnectionClosed",
    "ConnectionEstablished",
    "ConnectionRefused",
    "Push",
    "QueryHit",
]


@dataclass(frozen=True, kw_only=True)
class ConnectionEstablished(Event):
    """handshaking_0.6 §3: the three legs are done; ``headers`` are the peer's; ``tls``: the
    link switches to TLS now (gnet-TLS-upgrade §2; descriptors wait for its handshake)."""

    conn_id: Any
    peer_is_ultrapeer: bool
    headers: Headers
    tls: bool = False


@dataclass(frozen=True, kw_only=True)
class ConnectionRefused(Event):
    """The peer answered our ``GNUTELLA CONNECT`` with a refusal (ultra-peers §: ``503``)."""

    conn_id: Any
    status_code: int
    reason: str

    def __post_init__(self) -> None:
        # handshaking_0.6 §3: "any status code other than 200" refuses the connection.
        if self.status_code == 200:
            raise LocalProtocolError("a 200 answer is not a refusal (handshaking_0.6 §3)")


@dataclass(frozen=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection is over; ``code``/``reason`` from a Bye (either side), a refusal, a
    timeout or the error that ended it; ``by_peer`` says which side ended it."""

    conn_id: Any
    code: int
    reason: str
    by_peer: bool


@dataclass(frozen=True, kw_only=True)
class QueryHit(Event):
    """A QueryHit for one of our own queries (``query_guid``), as parsed (``descriptor``)."""

    conn_id: Any
    query_guid: bytes
    descriptor: Any

    def __post_init__(self) -> None:
        # The 0.4 rules: a QueryHit carries "the same Descriptor Id as the Query" (16 bytes).
        if len(self.query_guid) != 16:
            raise LocalProtocolError("a query GUID is 16 bytes")


@dataclass(frozen=True, kw_only=True)
class Push(Event):
    """A Push addressed to us: connect to ``descriptor.ip_address:port`` and send GIV."""

    conn_id: Any
    descriptor: Any


@dataclass(frozen=True, kw_only=True)
class ConnectBackRequested(Event):
    """msg/connect_back, BEAR/7v1: the peer asks us to connect to ``ip_address:port`` (its
    address on this connection), send ``"\\n\\n"`` and close, so that it learns whether it is
    reachable. The driver does the connecting."""

    conn_id: Any
    ip_address: str
    port: int

    def __post_init__(self) -> None:
        # msg/connect_back: "a single 16-bit unsigned integer representing the port"
        if not 0 < self.port < 65536:
            raise LocalProtocolError(f"connect-back port {self.port} outside 1..65535")


@dataclass(frozen=True, kw_only=True)
class Bye(Event):
    """Sent by the application (``Connection.send(Bye(...), now)``) to close politely."""

    code: int = 201
    message: str = "User manual removal"

    def __post_init__(self) -> None:
        # bye §2: "the regular SMTP classification of error code ranges should apply" (2xx,
        # 4xx, 5xx).
        if not 200 <= self.code <= 599:
            raise LocalProtocolError(f"Bye code {self.code} outside 200..599 (bye §2)")
        # bye §2: the message is NUL-terminated on the wire.
        if "\0" in self.message:
            raise LocalProtocolError("a Bye message cannot hold NUL (bye §2)")
