"""The libp2p ping protocol, ``/ipfs/ping/1.0.0`` (libp2p ping spec).

"The dialing peer sends a 32-byte payload of random binary data on an open stream. The
listening peer echoes the same 32-byte payload back to the dialing peer. The dialing peer then
measures the RTT from when it wrote the bytes to when it received them." The dialer may repeat
on the same stream; "the listening peer SHOULD accept at most two streams per peer".

>>> dialer, responder = PingDialer(), PingResponder()
>>> wire = dialer.ping(bytes(32), now=1.0)
>>> responder.receive_data(wire, 1.0)
>>> dialer.receive_data(responder.data_to_send(), 1.25)
>>> dialer.next_event()
PingResult(rtt=0.25)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from construct import Bytes

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox
from p2pkit.errors import LocalProtocolError, RemoteProtocolError
from p2pkit.schema import Schema

__all__ = ["PING_LENGTH", "PROTOCOL_ID", "PingDialer", "PingPayload", "PingResponder",
           "PingResult"]

PROTOCOL_ID = "/ipfs/ping/1.0.0"
#: "a 32-byte payload of random binary data".
PING_LENGTH = 32
#: Pings written and not yet answered (a dialer waits for each echo; a few may be in flight).
MAX_OUTSTANDING = 8

#: One ping: 32 bytes, echoed unchanged.
PingPayload = Schema(Bytes(PING_LENGTH), protocol="ping")


@dataclass(frozen=True, kw_only=True)
class PingResult(Event):
    """An echo came back after ``rtt`` seconds."""

    rtt: float


class PingDialer:
    """The dialing side: :meth:`ping` writes a payload (random bytes from the caller's RNG),
    echoes become :class:`PingResult`; an echo that differs is a
    :class:`~p2pkit.errors.RemoteProtocolError`."""

    def __init__(self) -> None:
        self._sent: deque[tuple[bytes, float]] = deque()
        self._buffer = bytearray()
        self._events: deque[Event] = deque()

    def ping(self, payload: bytes, now: float) -> bytes:
        """The bytes of one ping carrying ``payload`` (32 bytes)."""
        if len(self._sent) >= MAX_OUTSTANDING:
            raise LocalProtocolError(f"{MAX_OUTSTANDING} pings already in flight")
        data = PingPayload.build(payload)
        self._sent.append((data, now))
        return data

    def receive_data(self, data: bytes, now: float) -> None:
        self._buffer += data
        while len(self._buffer) >= PING_LENGTH:
            echo = PingPayload.parse(bytes(self._buffer[:PING_LENGTH]))
            del self._buffer[:PING_LENGTH]
            if not self._sent:
                raise RemoteProtocolError("ping: an echo nobody asked for")
            sent, at = self._sent.popleft()
            if echo != sent:
                raise RemoteProtocolError("ping: the echo differs from the payload sent")
            self._events.append(PingResult(rtt=now - at))

    def next_event(self) -> Event | NeedData:
        return self._events.popleft() if self._events else NEED_DATA


class PingResponder(Outbox):
    """The listening side: echoes every complete 32-byte payload."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._out = bytearray()

    def receive_data(self, data: bytes, now: float) -> None:
        self._buffer += data
        whole = len(self._buffer) - len(self._buffer) % PING_LENGTH
        self._out += self._buffer[:whole]
        del self._buffer[:whole]

    def next_event(self) -> Event | NeedData:
        return NEED_DATA

