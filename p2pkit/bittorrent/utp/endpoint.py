"""uTP on a real UDP socket: the asyncio driver of ``UtpMultiplexer`` (``p2pkit.bittorrent.utp.multiplexer``).

A driver moves bytes and time and holds no protocol logic (DESIGN.md). Each uTP connection is
an :class:`asyncio.Transport` (:class:`UtpStream`) driving an :class:`asyncio.Protocol`, so
code written for TCP (the BitTorrent peer's ``_PeerProtocol``) runs over uTP unchanged.

The socket is either the endpoint's own (:meth:`UtpEndpoint.bind`) or shared with a DHT node
(BEP 29 runs "on top of UDP" on the port libtorrent also serves the DHT on): the owner of the
socket hands every datagram that :func:`~p2pkit.bittorrent.wire.utp.looks_like_utp` to
:meth:`UtpEndpoint.datagram_received` (KRPC messages are bencoded dictionaries and start with
``d``) and gives the endpoint its ``sendto``.

Received datagrams are handed to the core at once; what the core then wants to send (acks,
data) is collected once per turn of the event loop (``call_soon``), so a burst of datagrams
is acknowledged by one ST_STATE, as libutp's deferred acks do.

On its own socket, Linux moves many datagrams per system call (:mod:`.offload`): what the core
sends leaves in runs of equal-size datagrams, one ``sendmsg`` with ``UDP_SEGMENT`` each (GSO),
and reads return what one sender sent together, cut at the ``UDP_GRO`` segment size; the
socket is read until it is empty. A coalesced read of many packets goes to the protocols and
is acknowledged before the next read (the window the ack advertises is open again, and the
sender sends on while this side reads). The datagrams on the wire are the same; a kernel that
refuses either option gets one datagram per call (``offload=False`` asks for that).

Path MTU (:mod:`p2pkit.bittorrent.utp.mtu`, Linux): the ceiling of each connection's search is the MTU of the
interface that reaches the peer, read as ``IP_MTU`` (``IPV6_MTU``) of a UDP socket connected to
it (nothing is sent; cached per address), capped at Ethernet's 1500 unless ``mtu="interface"``
(:data:`MTU_POLICIES`: libtorrent 2.0 and transmission 3.00 do not take larger datagrams, so
only p2pkit peers among themselves may go beyond); datagrams go without the don't-fragment bit
(``IP_PMTUDISC_DONT``) except the probes (:class:`~p2pkit.bittorrent.utp.mtu.MtuProbe`), sent with
``IP_PMTUDISC_PROBE``, as libtorrent toggles it around each probe. Elsewhere, or on a shared
socket, the ceiling is Ethernet's and the socket's defaults stay.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from typing import Any

from p2pkit.bittorrent.utp.events import (
    Connected,
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionKey,
    DataReceived,
    StreamEnded,
)
from p2pkit.bittorrent.utp.mtu import ETHERNET_MTU, MtuProbe
from p2pkit.bittorrent.utp.multiplexer import UtpMultiplexer
from p2pkit.bittorrent.utp.offload import (
    GRO_CONTROL_SIZE,
    SegmentingSender,
    enable_gro,
    split_coalesced,
)
from p2pkit.bittorrent.wire.utp import looks_like_utp
from p2pkit.core import NEED_DATA, Address
from p2pkit.errors import LocalProtocolError

__all__ = ["HIGH_WATER", "LOW_WATER", "MTU_POLICIES", "UtpEndpoint", "UtpStream",
           "interface_mtu"]

log = logging.getLogger(__name__)

#: Bytes queued or in flight on one connection above which its protocol is asked to pause
#: writing, and below which it is told to resume.
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
#: Datagrams read per readiness event of an endpoint's own socket.
READ_BATCH = 64
#: Largest datagram read (the largest UDP payload of an IPv4 packet fits).
RECEIVE_SIZE = 65536
#: A coalesced read (``UDP_GRO``) of more bytes than this is acknowledged at once.
ACK_AT_ONCE = 16 * 1024
#: Linux socket options the ``socket`` module does not name (``<linux/in.h>``, ``in6.h``).
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_PROBE, IP_MTU = 10, 0, 3, 14
IPV6_MTU_DISCOVER, IPV6_MTU = 23, 24
#: Ceiling of the path MTU search: the interface's MTU capped at Ethernet's 1500 (what
#: libtorrent 2.0 uses, and what it and transmission 3.00 receive), or the interface's MTU
#: (65536 on Linux loopback: for p2pkit peers among themselves).
MTU_POLICIES = ("ethernet", "interface")
#: Interface MTUs remembered (addresses).
MTU_CACHE = 256


def interface_mtu(address: Address) -> int:
    """MTU of the interface the kernel routes ``address`` through (Linux ``IP_MTU`` of a
    connected UDP socket; connecting sends nothing), or Ethernet's when it cannot tell."""
    family = socket.AF_INET6 if ":" in str(address[0]) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address[0], address[1]))
            if family == socket.AF_INET6:
                return probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU)
            return probe.getsockopt(socket.IPPROTO_IP, IP_MTU)
    except OSError:
        return ETHERNET_MTU


class UtpStream(asyncio.Transport):
    """One uTP connection as an asyncio transport."""

    def __init__(self, endpoint: UtpEndpoint, key: ConnectionKey,
                 protocol: asyncio.BaseProtocol | None = None) -> None:
        super().__init__()
        self._endpoint = endpoint
        self.key = key
        self._protocol = protocol
        self._closing = False
        self._lost = False
        self._reading_paused = False
        self._held: list[bytes] = []
        self._held_eof = False
        self.writing_paused = False

    # -- asyncio.Transport --------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.key[0]
        if name == "sockname":
            return self._endpoint.address
        if name == "transport":
            return "utp"
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.is_closing() or not data:
            return
        try:
            self._endpoint.core.send(self.key, bytes(data))
        except LocalProtocolError as e:
            log.info("uTP %s: %s", self.key, e)
            self.abort()
            return
        self._endpoint.schedule_flush()

    def get_write_buffer_size(self) -> int:
        return self._endpoint.core.buffered(self.key)

    def close(self) -> None:
        if not self.is_closing():
            self._closing = True
            self._endpoint.core.close(self.key)
            self._endpoint.schedule_flush()

    def abort(self) -> None:
        if not self._lost:
            self._closing = True
            self._endpoint.core.abort(self.key, now=self._endpoint.now())
            self._endpoint.schedule_flush()

    def is_reading(self) -> bool:
        return not self._reading_paused

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        held, self._held = self._held, []
        self._endpoint.core.hold(self.key, 0)
        for data in held:
            self._data(data)
        if self._held_eof:
            self._eof()

    # -- from the endpoint --------------------------------------------------------------------

    def _start(self, protocol: asyncio.Protocol) -> None:
        """A dialled connection got its protocol: ``connection_made``, then what arrived
        before it."""
        self._protocol = protocol
        protocol.connection_made(self)
        if not self._reading_paused:
            self._reading_paused = True
            self.resume_reading()

    def _data(self, data: bytes) -> None:
        if self._reading_paused or self._protocol is None:
            self._held.append(data)
            # What is held shrinks the advertised window (BEP 29 §wnd_size), as unread
            # bytes in a TCP socket's buffer do.
            self._endpoint.core.hold(self.key, sum(map(len, self._held)))
        elif self._protocol is not None:
            self._protocol.data_received(data)  # type: ignore[attr-defined]

    def _eof(self) -> None:
        if self._reading_paused or self._protocol is None:
            self._held_eof = True
            return
        keep_open = self._protocol.eof_received() if self._protocol is not None else False
        if not keep_open:
            self.close()

    def _connection_lost(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        if self._protocol is not None:
            exc = None if reason == "closed" else ConnectionError(f"uTP connection {reason}")
            self._protocol.connection_lost(exc)

    def _check_writing(self) -> None:
        if self._protocol is None or self._lost:
            return
        size = self.get_write_buffer_size()
        if not self.writing_paused and size > HIGH_WATER:
            self.writing_paused = True
            self._protocol.pause_writing()
        elif self.writing_paused and size < LOW_WATER:
            self.writing_paused = False
            self._protocol.resume_writing()


class UtpEndpoint:
    """A ``UtpMultiplexer`` on a UDP socket, with asyncio transports per connection.

    ``sendto(data, addr)`` sends one datagram; ``on_accept(stream)`` receives each accepted
    connection (and sets its protocol, then calls its ``connection_made``); ``address`` is the
    socket's local address.
    """

    def __init__(self, sendto: Callable[[bytes, Address], None], address: Address, *,
                 rng: random.Random | None = None,
                 on_accept: Callable[[UtpStream], None] | None = None,
                 link_mtu: Callable[[Address], int] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self.core = UtpMultiplexer(rng=rng, accept=on_accept is not None, link_mtu=link_mtu)
        self._sendto = sendto
        self.address = address
        self.on_accept = on_accept
        self.streams: dict[ConnectionKey, UtpStream] = {}
        self._dialling: dict[ConnectionKey, asyncio.Future] = {}
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._sock: socket.socket | None = None
        #: GSO on the endpoint's own socket (:mod:`.offload`); None: one ``sendto`` each.
        self.segmenting: SegmentingSender | None = None
        #: Whether reads are coalesced (``UDP_GRO``).
        self.gro = False
        self._closed = False

    def now(self) -> float:
        return self._loop.time()

    @classmethod
    async def bind(cls, host: str, port: int, *, mtu: str = "ethernet", offload: bool = True,
                   **kwargs: Any) -> UtpEndpoint:
        """An endpoint on its own UDP socket bound to ``host:port``; ``mtu`` one of
        :data:`MTU_POLICIES`; ``offload``: send and read many datagrams per system call where
        Linux allows (UDP GSO and GRO, :mod:`.offload`)."""
        if mtu not in MTU_POLICIES:
            raise ValueError(f"mtu {mtu!r} is not one of {MTU_POLICIES}")
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
        level, option = ((socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER) if family == socket.AF_INET6
                         else (socket.IPPROTO_IP, IP_MTU_DISCOVER))
        try:
            sock.setsockopt(level, option, IP_PMTUDISC_DONT)
            toggle_df = True
        except OSError:  # not Linux: no probes with DF, the kernel's defaults
            toggle_df = False
        send = sock.sendto
        mtus: dict[str, int] = {}

        def sendto(data: bytes, addr: Address) -> None:
            try:
                if toggle_df and type(data) is MtuProbe:
                    sock.setsockopt(level, option, IP_PMTUDISC_PROBE)
                    try:
                        send(data, addr)
                    finally:
                        sock.setsockopt(level, option, IP_PMTUDISC_DONT)
                else:
                    send(data, addr)
            except (BlockingIOError, InterruptedError):
                pass  # a full socket buffer drops the datagram, as a full link would
            except OSError as e:  # EMSGSIZE for a probe too large: a lost probe
                log.debug("uTP: cannot send to %s: %s", addr, e)

        def link_mtu(addr: Address) -> int:
            host = str(addr[0])
            if host not in mtus:
                if len(mtus) >= MTU_CACHE:
                    mtus.clear()
                link = interface_mtu(addr) if toggle_df else ETHERNET_MTU
                mtus[host] = link if mtu == "interface" else min(link, ETHERNET_MTU)
            return mtus[host]

        local = sock.getsockname()
        kwargs.setdefault("link_mtu", link_mtu)
        endpoint = cls(sendto, (local[0], local[1]), **kwargs)
        endpoint._sock = sock
        if offload:
            endpoint.segmenting = SegmentingSender(sock, sendto)
            endpoint.gro = enable_gro(sock)
        loop.add_reader(sock.fileno(), endpoint._on_readable)
        return endpoint

    def _on_readable(self) -> None:
        assert self._sock is not None
        if self.gro:
            self._read_coalesced()
            return
        for _ in range(READ_BATCH):
            try:
                data, addr = self._sock.recvfrom(RECEIVE_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                log.debug("uTP: UDP error: %s", e)
                continue
            if looks_like_utp(data):
                self.datagram_received(data, (addr[0], addr[1]))

    def _read_coalesced(self) -> None:
        """Read until the socket is empty (or :data:`READ_BATCH` reads), each read a buffer of
        one or more datagrams of one sender (``UDP_GRO``), handed to the core together."""
        recvmsg = self._sock.recvmsg  # type: ignore[union-attr]
        core = self.core
        received = False
        for _ in range(READ_BATCH):
            try:
                data, ancdata, _flags, addr = recvmsg(RECEIVE_SIZE, GRO_CONTROL_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                log.debug("uTP: UDP error: %s", e)
                continue
            if self._closed:
                return
            peer = (addr[0], addr[1])
            now = self.now()
            for datagram in split_coalesced(data, ancdata) if ancdata else (data,):
                if looks_like_utp(datagram):
                    core.receive_datagram(datagram, peer, now)
                    received = True
            if received and len(data) > ACK_AT_ONCE:
                # A large buffer (many packets) goes to the protocols and is acknowledged
                # before the next read: the window the ack advertises is open again (the data
                # was taken), and the sender sends on while this side still reads (a pipeline,
                # not a stop-and-go of whole read batches).
                self._dispatch()
                if self._closed:  # a protocol closed the endpoint
                    return
                self._send(core.datagrams_to_send(now))
        if received:
            self.schedule_flush()

    def close(self) -> None:
        """Reset every connection and stop (the socket is closed if it is ours)."""
        if self._closed:
            return
        now = self.now()
        for key in list(self.core.connections):
            self.core.abort(key, now=now)
        self._flush()
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        for future in self._dialling.values():
            if not future.done():
                future.set_exception(ConnectionError("uTP endpoint closed"))

    # -- moving bytes and time -----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """One uTP datagram from ``addr`` (from our socket or the one we share)."""
        if self._closed:
            return
        self.core.receive_datagram(data, addr, self.now())
        self.schedule_flush()  # events go out with the flush: once per read batch

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        core = self.core
        now = self.now()
        # What arrived since the last flush first (the protocols' answers then leave with the
        # acks), then what the core wants to send.
        self._dispatch()
        self._send(core.datagrams_to_send(now))
        self._dispatch()
        for stream in list(self.streams.values()):
            stream._check_writing()
        if self._closed:
            return
        at = core.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer = None if at is None else self._loop.call_at(at, self._on_timer)

    def _send(self, out: list[tuple[bytes, Address]]) -> None:
        if self.segmenting is not None:
            self.segmenting.send(out)
        else:
            sendto = self._sendto
            for data, dst in out:
                sendto(data, dst)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.core.handle_timer(self.now())
        self._flush()

    def _dispatch(self) -> None:
        """Hand the core's events to the streams; consecutive data of one connection goes
        to its protocol in one ``data_received`` (one call per read batch, not per packet)."""
        core = self.core
        run_key: ConnectionKey | None = None
        run: list[bytes] = []
        while True:
            event = core.next_event()
            if run and (event is NEED_DATA or not isinstance(event, DataReceived)
                        or event.key != run_key):
                stream = self.streams.get(run_key)  # type: ignore[arg-type]
                if stream is not None:
                    stream._data(run[0] if len(run) == 1 else b"".join(run))
                run = []
            if event is NEED_DATA:
                return
            key = event.key  # type: ignore[attr-defined]
            if isinstance(event, DataReceived):
                run_key = key
                run.append(event.data)
            elif isinstance(event, ConnectionAccepted):
                stream = UtpStream(self, key)
                self.streams[key] = stream
                if self.on_accept is not None:
                    self.on_accept(stream)
            elif isinstance(event, Connected):
                self.streams[key] = UtpStream(self, key)  # its protocol comes in connect()
                future = self._dialling.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(None)
            elif isinstance(event, StreamEnded):
                stream = self.streams.get(key)
                if stream is not None:
                    stream._eof()
            elif isinstance(event, ConnectionClosed):
                future = self._dialling.pop(key, None)
                if future is not None and not future.done():
                    future.set_exception(ConnectionRefusedError(f"uTP connection {event.reason}"))
                stream = self.streams.pop(key, None)
                if stream is not None:
                    stream._connection_lost(event.reason)

    # -- dialling --------------------------------------------------------------------------------

    async def connect(self, address: Address,
                      protocol_factory: Callable[[], asyncio.Protocol], *,
                      timeout: float) -> tuple[UtpStream, asyncio.Protocol]:
        """Dial ``address``; once its ST_STATE answers, the protocol gets
        ``connection_made``. Raises ``TimeoutError`` or ``ConnectionError``."""
        if self._closed:
            raise ConnectionError("uTP endpoint closed")
        key = self.core.connect(address, now=self.now())
        future = self._loop.create_future()
        self._dialling[key] = future
        self.schedule_flush()
        try:
            await asyncio.wait_for(future, timeout)
        except BaseException:
            self._dialling.pop(key, None)
            self.core.abort(key, now=self.now())
            self.schedule_flush()
            raise
        stream = self.streams.get(key)
        if stream is None or stream._lost:
            raise ConnectionResetError("uTP connection closed as it opened")
        protocol = protocol_factory()
        stream._start(protocol)
        return stream, protocol
