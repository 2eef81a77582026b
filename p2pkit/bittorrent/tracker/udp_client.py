"""The BEP 15 UDP tracker client as a sans-I/O :class:`~p2pkit.core.DatagramCore`.

BEP 15 §UDP tracker protocol: "Before announcing or scraping, you have to obtain a connection
ID. 1. Choose a random transaction ID. 2. Fill the connect request structure. 3. Send the
packet." and on the answer "1. Receive the packet. 2. Check whether the packet is at least 16
bytes. 3. Check whether the transaction ID is equal to the one you chose. 4. Check whether the
action is connect. 5. Store the connection ID for future use." "A client can use a connection
ID until one minute after it has received it." "If a response is not received after 15 * 2 ^ n
seconds, the client should retransmit the request, where n starts at 0 and is increased up to
8 (3840 seconds) after every retransmission. Note that it is necessary to rerequest a
connection ID when it has expired." Errors: "3 // error [...] string message".

One :class:`UdpTrackerClient` serves any number of trackers and operations (announces and
scrapes): :meth:`~UdpTrackerClient.announce` and :meth:`~UdpTrackerClient.scrape` start one and
return its number; datagrams come in with :meth:`~UdpTrackerClient.receive_datagram` and go out
with :meth:`~UdpTrackerClient.datagrams_to_send`; the outcome is an :class:`AnnounceCompleted`,
:class:`ScrapeCompleted` or :class:`TrackerFailed` from :meth:`~UdpTrackerClient.next_event`.
Transaction ids come from the ``random.Random`` given to it, time only from ``now``; the
tracker is a resolved ``(ip, port)`` (its address family chooses the announce response's peer
size, BEP 15 §IPv6). Packets are the :mod:`p2pkit.bittorrent.tracker.udp` schemas.

What the tracker sends wrong never raises: a datagram that does not parse, carries a
transaction id we are not waiting for, or answers with another action than the one asked is
ignored (counted in :attr:`UdpTrackerClient.ignored`); the operation then retransmits.

>>> import random
>>> from p2pkit.bittorrent.tracker.udp import UdpConnectResponse, UdpTrackerRequest
>>> from p2pkit.bittorrent.tracker.udp import UdpAnnounceResponse
>>> client = UdpTrackerClient(rng=random.Random(1))
>>> tracker = ("127.0.0.1", 6969)
>>> op = client.announce(tracker, Announce(info_hash=b"i" * 20, peer_id=b"p" * 20,
...                      port=6881), now=0.0)
>>> [(data.hex(), dst) for data, dst in client.datagrams_to_send(0.0)]
[('0000041727101980000000002265b1f5', ('127.0.0.1', 6969))]
>>> client.get_timer()  # BEP 15: retransmit after 15 * 2 ^ 0 seconds
15.0
>>> client.receive_datagram(UdpConnectResponse.build(dict(transaction_id=0x2265b1f5,
...                         connection_id=42)), tracker, now=0.1)
>>> [(request, dst)] = client.datagrams_to_send(0.1)
>>> request = UdpTrackerRequest.parse(request)
>>> request.action, request.connection_id
('announce', 42)
>>> client.receive_datagram(UdpAnnounceResponse.build(dict(
...     transaction_id=request.transaction_id, interval=1800, leechers=1, seeders=2,
...     peers=[dict(ip="10.0.0.7", port=6881)])), tracker, now=0.2)
>>> event = client.next_event()
>>> event.operation == op, event.result.interval, event.result.peers
(True, 1800, (TrackerPeer(host='10.0.0.7', port=6881, peer_id=None),))
"""

from __future__ import annotations

import ipaddress
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from p2pkit.bittorrent.tracker.announce import (
    Announce,
    AnnounceResult,
    ScrapeResult,
    TrackerPeer,
)
from p2pkit.bittorrent.tracker.udp import (
    UdpAnnounceRequest,
    UdpConnectRequest,
    UdpScrapeRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
)
from p2pkit.bittorrent.tracker.udp_client_state import (
    AWAIT_CONNECT,
    AWAIT_RESPONSE,
    DONE,
    next_state,
)
from p2pkit.core import NEED_DATA, Address, Event, NeedData
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError

__all__ = [
    "CONNECTION_ID_LIFETIME",
    "MAX_OPERATIONS",
    "MAX_RETRANSMISSIONS",
    "MAX_SCRAPE_HASHES",
    "RETRANSMIT_BASE",
    "AnnounceCompleted",
    "ScrapeCompleted",
    "TrackerEvent",
    "TrackerFailed",
    "UdpTrackerClient",
]

#: BEP 15: "A client can use a connection ID until one minute after it has received it."
CONNECTION_ID_LIFETIME = 60.0
#: BEP 15: retransmit "after 15 * 2 ^ n seconds".
RETRANSMIT_BASE = 15.0
#: BEP 15: "n starts at 0 and is increased up to 8 (3840 seconds)".
MAX_RETRANSMISSIONS = 8
#: BEP 15 §scrape: "Up to about 74 torrents can be scraped at once."
MAX_SCRAPE_HASHES = 74
#: Operations in flight at once; one more raises LimitExceeded.
MAX_OPERATIONS = 4096
#: BEP 41 URLData: "a length byte, then the data": at most 255 bytes per option.
_URL_DATA_CHUNK = 255


@dataclass(frozen=True, kw_only=True)
class TrackerEvent(Event):
    """Base of the client's events: which operation ended, at which tracker."""

    operation: int
    tracker: Address


@dataclass(frozen=True, kw_only=True)
class AnnounceCompleted(TrackerEvent):
    """BEP 15 announce response: "interval", "leechers", "seeders" and the peers (peers with
    port 0 are unusable and left out)."""

    result: AnnounceResult


@dataclass(frozen=True, kw_only=True)
class ScrapeCompleted(TrackerEvent):
    """BEP 15 scrape response: "seeders", "completed", "leechers" per info-hash asked."""

    files: Mapping[bytes, ScrapeResult]


@dataclass(frozen=True, kw_only=True)
class TrackerFailed(TrackerEvent):
    """The operation ended without an answer: ``reason`` says why; ``failure_reason`` is the
    tracker's own text when it sent a BEP 15 error ("string message")."""

    reason: str
    failure_reason: str | None = None


@dataclass(slots=True, kw_only=True)
class _Operation:
    id: int
    tracker: Address
    action: str  # the BEP 15 action asked: "announce" or "scrape"
    build: Callable[[int, int], bytes]  # (connection_id, transaction_id) -> request bytes
    info_hashes: tuple[bytes, ...] = ()
    state: str = AWAIT_CONNECT
    attempt: int = 0  # BEP 15's n
    transaction_id: int = 0
    deadline: float = 0.0
    #: The connection ID in use was received during this operation (not kept from another).
    fresh: bool = False


class UdpTrackerClient:
    """BEP 15 client for many trackers (see the module docstring).

    ``rng`` draws transaction ids (BEP 15: "Choose a random transaction ID");
    ``retransmit_base`` is BEP 15's 15 seconds and ``max_retransmissions`` its 8 (tests and
    simulations make them small).
    """

    def __init__(self, *, rng: random.Random, retransmit_base: float = RETRANSMIT_BASE,
                 max_retransmissions: int = MAX_RETRANSMISSIONS) -> None:
        if retransmit_base <= 0 or max_retransmissions < 0:
            raise LocalProtocolError("retransmit_base must be positive, max_retransmissions "
                                     "not negative")
        self.rng = rng
        self.retransmit_base = retransmit_base
        self.max_retransmissions = max_retransmissions
        #: tracker -> (connection_id, when it was received).
        self.connection_ids: dict[Address, tuple[int, float]] = {}
        #: Datagrams ignored: unparseable, an unknown transaction id, an unexpected action.
        self.ignored = 0
        self._operations: dict[int, _Operation] = {}
        self._by_transaction: dict[tuple[Address, int], _Operation] = {}
        self._outgoing: list[tuple[bytes, Address, int]] = []  # (datagram, to, operation)
        self._events: deque[TrackerEvent] = deque()
        self._last_id = 0

    # -- starting operations ----------------------------------------------------------------

    def announce(self, tracker: Address, request: Announce, now: float, *,
                 url_data: bytes = b"") -> int:
        """Start announcing ``request`` to ``tracker``; returns the operation's number.

        ``url_data`` is the announce URL's path and query, sent as BEP 41 URLData options
        ("The data field of multiple URLData options must be concatenated")."""
        options = [{"type": "url_data", "data": url_data[i:i + _URL_DATA_CHUNK]}
                   for i in range(0, len(url_data), _URL_DATA_CHUNK)]
        # BEP 15: "num_want [...] -1 // default".
        num_want = -1 if request.numwant is None else min(request.numwant, 0x7FFFFFFF)

        def build(connection_id: int, transaction_id: int) -> bytes:
            return UdpAnnounceRequest.build({
                "connection_id": connection_id, "action": "announce",
                "transaction_id": transaction_id, "info_hash": request.info_hash,
                "peer_id": request.peer_id, "downloaded": request.downloaded,
                "left": request.left, "uploaded": request.uploaded,
                "event": request.event or "none", "key": request.key, "num_want": num_want,
                "port": request.port, "options": options})

        return self._start(tracker, "announce", build, (), now)

    def scrape(self, tracker: Address, info_hashes: Iterable[bytes], now: float) -> int:
        """Start scraping ``info_hashes`` (1 to :data:`MAX_SCRAPE_HASHES`) at ``tracker``."""
        hashes = tuple(info_hashes)
        if not 0 < len(hashes) <= MAX_SCRAPE_HASHES or any(len(h) != 20 for h in hashes):
            raise LocalProtocolError(f"scrape 1 to {MAX_SCRAPE_HASHES} 20-byte info-hashes")

        def build(connection_id: int, transaction_id: int) -> bytes:
            return UdpScrapeRequest.build({"connection_id": connection_id, "action": "scrape",
                                           "transaction_id": transaction_id,
                                           "info_hashes": list(hashes)})

        return self._start(tracker, "scrape", build, hashes, now)

    def cancel(self, operation: int) -> None:
        """Forget ``operation`` (its driver gave up on it): no event, no more datagrams."""
        op = self._operations.pop(operation, None)
        if op is not None:
            self._by_transaction.pop((op.tracker, op.transaction_id), None)
            self._outgoing = [item for item in self._outgoing if item[2] != operation]
            op.state = DONE

    @property
    def operations(self) -> int:
        """Operations in flight."""
        return len(self._operations)

    def _start(self, tracker: Address, action: str, build: Callable[[int, int], bytes],
               info_hashes: tuple[bytes, ...], now: float) -> int:
        if len(self._operations) >= MAX_OPERATIONS:
            raise LimitExceeded(f"more than {MAX_OPERATIONS} tracker operations in flight",
                                protocol="bt-tracker")
        self._last_id += 1
        op = _Operation(id=self._last_id, tracker=(tracker[0], tracker[1]), action=action,
                        build=build, info_hashes=info_hashes)
        self._operations[op.id] = op
        self._transmit(op, now)
        return op.id

    # -- the DatagramCore surface -----------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """A datagram from ``addr``: the answer to one of our requests, or ignored."""
        tracker = (addr[0], addr[1])
        schema = UdpTrackerResponse6 if _is_ipv6(tracker[0]) else UdpTrackerResponse
        try:
            message = schema.parse(data)
        except ParseError:
            self.ignored += 1  # BEP 15: "Do not expect packets to be exactly of a certain size"
            return
        # BEP 15: "Check whether the transaction ID is equal to the one you chose."
        op = self._by_transaction.get((tracker, message.transaction_id))
        if op is None:
            self.ignored += 1
            return
        action = message.action
        if action == "error":
            self._on_error(op, message, now)
            return
        # BEP 15: "Check whether the action is connect." (and announce / scrape likewise)
        expected = "connect" if op.state == AWAIT_CONNECT else op.action
        if action != expected:
            self.ignored += 1
            return
        del self._by_transaction[(tracker, op.transaction_id)]
        if action == "connect":
            # BEP 15: "Store the connection ID for future use."
            self.connection_ids[op.tracker] = (message.connection_id, now)
            op.fresh = True
            self._move(op, "connect")
            self._transmit(op, now)
        elif action == "announce":
            result = AnnounceResult(
                interval=message.interval, complete=message.seeders,
                incomplete=message.leechers,
                peers=tuple(TrackerPeer(host=str(p.ip), port=p.port) for p in message.peers
                            if p.port))
            self._finish(op, "announce",
                         AnnounceCompleted(operation=op.id, tracker=op.tracker, result=result))
        else:
            if len(message.files) != len(op.info_hashes):
                self._finish(op, "scrape", self._failed(
                    op, f"scrape answered {len(message.files)} torrents, asked "
                        f"{len(op.info_hashes)}"))
                return
            files = {h: ScrapeResult(complete=f.seeders, downloaded=f.completed,
                                     incomplete=f.leechers)
                     for h, f in zip(op.info_hashes, message.files, strict=True)}
            self._finish(op, "scrape",
                         ScrapeCompleted(operation=op.id, tracker=op.tracker, files=files))

    def next_event(self) -> TrackerEvent | NeedData:
        """The next :class:`AnnounceCompleted`, :class:`ScrapeCompleted` or
        :class:`TrackerFailed`, or :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.popleft() if self._events else NEED_DATA

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Requests to send now, each with its tracker."""
        out = [(data, to) for data, to, _ in self._outgoing]
        self._outgoing = []
        return out

    def get_timer(self) -> float | None:
        """The earliest retransmission deadline, or ``None`` when nothing is in flight."""
        return min((op.deadline for op in self._operations.values()), default=None)

    def handle_timer(self, now: float) -> None:
        """Retransmit what went unanswered for ``retransmit_base * 2 ** n`` seconds (with a new
        connect when the connection ID expired meanwhile); give up after n reached
        ``max_retransmissions``."""
        for op in [op for op in self._operations.values() if op.deadline <= now]:
            self._by_transaction.pop((op.tracker, op.transaction_id), None)
            if op.attempt >= self.max_retransmissions:
                self._finish(op, "gave_up", self._failed(
                    op, f"no answer after {self.max_retransmissions} retransmissions"))
                continue
            # BEP 15: "n starts at 0 and is increased up to 8 [...] after every
            # retransmission".
            op.attempt += 1
            self._transmit(op, now)

    # -- inside -----------------------------------------------------------------------------

    def live_connection_id(self, tracker: Address, now: float) -> int | None:
        """The connection ID ``tracker`` gave us, while it may still be used."""
        kept = self.connection_ids.get(tracker)
        if kept is None:
            return None
        connection_id, received = kept
        # BEP 15: usable "until one minute after it has received it".
        if now - received > CONNECTION_ID_LIFETIME:
            del self.connection_ids[tracker]
            return None
        return connection_id

    def _transmit(self, op: _Operation, now: float) -> None:
        """Send the operation's next packet with a new transaction id: a connect request
        while no live connection ID is known, else the request itself."""
        transaction_id = self._transaction_id(op.tracker)
        connection_id = self.live_connection_id(op.tracker, now)
        if connection_id is None:
            if op.state == AWAIT_RESPONSE:
                # BEP 15: "it is necessary to rerequest a connection ID when it has expired".
                self._move(op, "expired")
            data = UdpConnectRequest.build({"transaction_id": transaction_id})
        else:
            if op.state == AWAIT_CONNECT:
                self._move(op, "kept_id")
            data = op.build(connection_id, transaction_id)
        op.transaction_id = transaction_id
        op.deadline = now + self.retransmit_base * 2 ** op.attempt
        self._by_transaction[(op.tracker, transaction_id)] = op
        self._outgoing.append((data, op.tracker, op.id))

    def _transaction_id(self, tracker: Address) -> int:
        # BEP 15: "Choose a random transaction ID." (unique among those we still wait for)
        while True:
            transaction_id = self.rng.getrandbits(32)
            if (tracker, transaction_id) not in self._by_transaction:
                return transaction_id

    def _on_error(self, op: _Operation, message: Any, now: float) -> None:
        del self._by_transaction[(op.tracker, op.transaction_id)]
        if op.state == AWAIT_RESPONSE and not op.fresh:
            # The tracker may have forgotten a connection ID we kept from an earlier
            # operation: connect once more before believing the refusal.
            self.connection_ids.pop(op.tracker, None)
            self._move(op, "refused_kept_id")
            self._transmit(op, now)
            return
        # BEP 15 error: "string message"; opentracker ends it with a NUL byte.
        text = bytes(message.message).rstrip(b"\x00").decode("utf-8", "replace")
        self._finish(op, "error", self._failed(op, f"refused: {text}", text))

    def _failed(self, op: _Operation, reason: str, text: str | None = None) -> TrackerFailed:
        return TrackerFailed(operation=op.id, tracker=op.tracker, reason=reason,
                             failure_reason=text)

    def _move(self, op: _Operation, what: str) -> None:
        target = next_state(op.state, what)
        if target is None:
            raise LocalProtocolError(f"internal: {what} in state {op.state}")
        op.state = target

    def _finish(self, op: _Operation, what: str, event: TrackerEvent) -> None:
        self._move(op, what)
        del self._operations[op.id]
        self._events.append(event)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).version == 6
    except ValueError:
        return ":" in host
