"""Recording a trace through a loopback proxy between any client and any peer.

The proxy listens on ``LISTEN_HOST:PORT`` and relays to the target: over TCP each accepted
connection gets its own connection to the target; over UDP each client address gets its own
socket to the target. Everything relayed is kept (bounded: ``MAX_RECORDED_BYTES``,
``MAX_SESSIONS``) and written, when the proxy stops after ``duration`` seconds, as a pcap
whose packets go between the client's address and the *target's* (the proxy is invisible in
it: the endpoint under test is the target), with TCP handshakes, sequence numbers and FINs made
up so the dissector's reassembly reads the streams as captured ones
(:func:`p2pkit.capture.pcap_writer.ip_packet`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from p2pkit.capture.pcap_writer import PcapWriter, ip_packet
from p2pkit.capture.readers import LINKTYPE_RAW

__all__ = ["MAX_RECORDED_BYTES", "MAX_SESSIONS", "ProxySession", "record_proxy",
           "write_sessions"]

#: Bytes the proxy keeps, all sessions together; relaying goes on, recording stops.
MAX_RECORDED_BYTES = 64 << 20
#: Sessions (connections or client addresses) the proxy serves at once.
MAX_SESSIONS = 256
#: Datagrams held per client while its socket to the target opens.
MAX_PENDING = 64
#: Bytes of one TCP segment in the written pcap.
SEGMENT = 1400

Address = tuple[str, int]


@dataclass
class ProxySession:
    """One relayed session: ``chunks`` are ``(time, from_client, bytes)``."""

    client: Address
    target: Address
    udp: bool
    opened: float
    chunks: list[tuple[float, bool, bytes]] = field(default_factory=list)
    closed: float | None = None


class _Recorder:
    def __init__(self) -> None:
        self.sessions: list[ProxySession] = []
        self.recorded = 0

    def keep(self, session: ProxySession, from_client: bool, data: bytes) -> None:
        if self.recorded + len(data) <= MAX_RECORDED_BYTES:
            self.recorded += len(data)
            session.chunks.append((time.time(), from_client, data))


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                recorder: _Recorder, session: ProxySession, from_client: bool) -> None:
    try:
        while data := await reader.read(65536):
            recorder.keep(session, from_client, data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()


async def _tcp(listen: Address, target: Address, recorder: _Recorder,
               tasks: set[asyncio.Task]) -> asyncio.AbstractServer:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(recorder.sessions) >= MAX_SESSIONS:
            writer.close()
            return
        peer = writer.get_extra_info("peername")[:2]
        session = ProxySession(peer, target, False, time.time())
        recorder.sessions.append(session)
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
        except (OSError, TimeoutError):
            writer.close()
            session.closed = time.time()
            return
        both = [asyncio.ensure_future(_pump(reader, up_writer, recorder, session, True)),
                asyncio.ensure_future(_pump(up_reader, writer, recorder, session, False))]
        tasks.update(both)
        try:
            await asyncio.gather(*both)
        finally:
            session.closed = time.time()
            writer.close()
            up_writer.close()

    return await asyncio.start_server(accept, listen[0], listen[1])


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, reply: asyncio.DatagramTransport, client: Address, recorder: _Recorder,
                 session: ProxySession) -> None:
        self.reply, self.client, self.recorder, self.session = reply, client, recorder, session

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.recorder.keep(self.session, False, data)
        self.reply.sendto(data, self.client)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, target: Address, recorder: _Recorder) -> None:
        self.target = target
        self.recorder = recorder
        self.transport: asyncio.DatagramTransport | None = None
        self.upstreams: dict[Address, tuple[asyncio.DatagramTransport | None, ProxySession]] = {}
        #: Datagrams of a client whose socket to the target is still being opened.
        self.pending: dict[Address, list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        addr = addr[:2]
        entry = self.upstreams.get(addr)
        if entry is None:
            if len(self.upstreams) >= MAX_SESSIONS:
                return
            session = ProxySession(addr, self.target, True, time.time())
            self.recorder.sessions.append(session)
            self.upstreams[addr] = (None, session)
            self.pending[addr] = [data]
            asyncio.ensure_future(self._open(addr, session))
            return
        upstream, session = entry
        if upstream is None:
            if len(self.pending[addr]) < MAX_PENDING:
                self.pending[addr].append(data)
            return
        self.recorder.keep(session, True, data)
        upstream.sendto(data)

    async def _open(self, addr: Address, session: ProxySession) -> None:
        loop = asyncio.get_running_loop()
        upstream, _ = await loop.create_datagram_endpoint(
            lambda: _Upstream(self.transport, addr, self.recorder, session),
            remote_addr=self.target)
        self.upstreams[addr] = (upstream, session)
        for data in self.pending.pop(addr, []):
            self.recorder.keep(session, True, data)
            upstream.sendto(data)

    def close(self) -> None:
        for upstream, _ in self.upstreams.values():
            if upstream is not None:
                upstream.close()


async def record_proxy(listen: Address, target: Address, out: str | Path, *, udp: bool = False,
                       duration: float, ready: Callable[[Address], None] | None = None
                       ) -> list[ProxySession]:
    """Relay ``listen`` → ``target`` for ``duration`` seconds and write what passed to the
    pcap ``out``; the sessions recorded (none: nothing passed, and nothing is written).
    ``ready`` is called with the address the proxy listens on (port 0: the one it got)."""
    recorder = _Recorder()
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    if udp:
        transport, listener = await loop.create_datagram_endpoint(
            lambda: _Listener(target, recorder), local_addr=listen)
        if ready is not None:
            ready(transport.get_extra_info("sockname")[:2])
        try:
            await asyncio.sleep(duration)
        finally:
            listener.close()
            transport.close()
    else:
        server = await _tcp(listen, target, recorder, tasks)
        if ready is not None:
            ready(server.sockets[0].getsockname()[:2])
        try:
            await asyncio.sleep(duration)
        finally:
            server.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    sessions = [s for s in recorder.sessions if s.chunks]
    if sessions:
        write_sessions(sessions, out)
    return sessions


def write_sessions(sessions: list[ProxySession], out: str | Path) -> int:
    """The sessions as raw-IP packets in time order; returns how many packets."""
    packets: list[tuple[float, int, bytes]] = []
    order = 0

    def add(t: float, data: bytes) -> None:
        nonlocal order
        packets.append((t, order, data))
        order += 1

    for s in sessions:
        client, target = s.client, s.target
        if s.udp:
            for t, from_client, data in s.chunks:
                src, dst = (client, target) if from_client else (target, client)
                add(t, ip_packet("udp", src, dst, data))
            continue
        seq = {True: 1000, False: 5000}
        add(s.opened, ip_packet("tcp", client, target, b"", seq=seq[True] - 1, flags="S"))
        add(s.opened, ip_packet("tcp", target, client, b"", seq=seq[False] - 1,
                                ack=seq[True], flags="SA"))
        for t, from_client, data in s.chunks:
            src, dst = (client, target) if from_client else (target, client)
            for i in range(0, len(data), SEGMENT):
                part = data[i:i + SEGMENT]
                add(t, ip_packet("tcp", src, dst, part, seq=seq[from_client],
                                 ack=seq[not from_client]))
                seq[from_client] += len(part)
        end = s.closed or (s.chunks[-1][0] if s.chunks else s.opened)
        add(end, ip_packet("tcp", client, target, b"", seq=seq[True], ack=seq[False],
                           flags="FA"))
        add(end, ip_packet("tcp", target, client, b"", seq=seq[False], ack=seq[True] + 1,
                           flags="FA"))
    packets.sort(key=lambda p: (p[0], p[1]))
    with PcapWriter(out, LINKTYPE_RAW) as writer:
        for t, _, data in packets:
            writer.write(data, t)
    return len(packets)
