"""What the uTP core tells its driver (BEP 29 §connection setup, §type).

A connection is named by its key, ``(address, recv_id)``: the remote's address and the
connection id this side receives on, unique per socket.

>>> DataReceived(key=(("127.0.0.1", 6881), 7), data=b"x")
DataReceived(key=(('127.0.0.1', 6881), 7), data=b'x')
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pkit.core import Address, Event

__all__ = ["ConnectionAccepted", "ConnectionClosed", "ConnectionKey", "Connected",
           "DataReceived", "StreamEnded"]

#: (remote address, the connection id this side receives on).
ConnectionKey = tuple[Address, int]


@dataclass(frozen=True, kw_only=True)
class ConnectionAccepted(Event):
    """A remote's ST_SYN opened a connection; it was answered with ST_STATE."""

    key: ConnectionKey


@dataclass(frozen=True, kw_only=True)
class Connected(Event):
    """Our ST_SYN was answered (BEP 29: "c.state = CS_CONNECTED")."""

    key: ConnectionKey


@dataclass(frozen=True, kw_only=True)
class DataReceived(Event):
    """Payload bytes, in order."""

    key: ConnectionKey
    data: bytes


@dataclass(frozen=True, kw_only=True)
class StreamEnded(Event):
    """The remote's ST_FIN arrived and everything before it was delivered: no more data."""

    key: ConnectionKey


@dataclass(frozen=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection is gone and its state freed: ``reason`` is ``"closed"`` (both FINs),
    ``"reset"`` (ST_RESET received), ``"timed out"``, ``"refused"`` (our SYN got a reset or no
    answer) or ``"aborted"`` (we reset it)."""

    key: ConnectionKey
    reason: str
