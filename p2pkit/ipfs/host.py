"""A minimal libp2p host on asyncio: TCP, Noise, yamux, ping and identify (the driver).

It holds no protocol logic: each socket is driven through a
:class:`~p2pkit.ipfs.connection.Libp2pConnection`, inbound ``/ipfs/ping/1.0.0`` streams through
a :class:`~p2pkit.ipfs.ping.PingResponder`, and ``/ipfs/id/1.0.0`` streams are answered with the
host's identify message (libp2p identify spec: "the peer being identified responds by sending
an Identify message and closing the stream"). Limits: connections per host, ping streams per
connection ("the listening peer SHOULD accept at most two streams per peer"), bytes buffered per
stream, a deadline on every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
from collections.abc import Callable, MutableMapping
from typing import Any

from p2pkit.core import NEED_DATA
from p2pkit.errors import P2PKitError, ProtocolError
from p2pkit.ipfs import bitswap, kad_dht, ping, yamux
from p2pkit.ipfs import connection as conn
from p2pkit.ipfs.bitswap_messages import MAX_BITSWAP_MESSAGE_LENGTH, BitswapMessageFrame
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY_PROTOCOL
from p2pkit.ipfs.identify import IdentifyReader, identify_message
from p2pkit.ipfs.identify_messages import IdentifyFrame
from p2pkit.ipfs.kad_dht_messages import KadMessageFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.noise_keylog import NoiseHandshakeEntry, NoiseKeyLogEntry, NoiseKeyLogWriter
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["IDENTIFY_PROTOCOL", "Host", "HostConnection"]

#: Open connections per host; more are refused at accept.
MAX_CONNECTIONS = 64
#: Inbound ping streams per connection (ping spec: "at most two streams per peer").
MAX_PING_STREAMS = 2
#: Seconds a connection gets to finish its upgrade (multistream, Noise, muxer).
HANDSHAKE_TIMEOUT = 10.0
#: Inbound Bitswap streams per connection.
MAX_BITSWAP_STREAMS = 4
#: Inbound kad-dht streams per connection.
MAX_KAD_STREAMS = 16
#: Identify exchanges run at once to learn whether peers that query our DHT are servers.
MAX_BACKGROUND_IDENTIFY = 8
#: Peers remembered as DHT clients (not identified again).
MAX_NOT_SERVERS = 1024
#: Bytes buffered on one stream the application has not read.
MAX_STREAM_BUFFER = 1 << 20
READ_SIZE = 65536


def _tcp_multiaddr(host: str, port: int) -> Multiaddr:
    ip = ipaddress.ip_address(host)
    return Multiaddr(((f"ip{ip.version}", ip), ("tcp", port)))


def _bitswap_frame_length(buffer: bytearray) -> int | None:
    from p2pkit.ipfs.protobuf import delimited_frame_length

    return delimited_frame_length(buffer, MAX_BITSWAP_MESSAGE_LENGTH)


def _endpoint(address: Any) -> str:
    """``host:port`` (``[v6]:port``) of a socket address, ``?`` when unknown."""
    if not address:
        return "?:0"
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class HostConnection:
    """One connection of a :class:`Host` (dialed or accepted)."""

    def __init__(self, host: Host, core: conn.Libp2pConnection, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.host = host
        self.core = core
        self.reader = reader
        self.writer = writer
        self.established: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # an accepted connection's failure is nobody's to await: do not warn about it
        self.established.add_done_callback(_retrieve)
        self._negotiated: dict[int, asyncio.Future[str]] = {}
        self._inbound: dict[int, bytearray] = {}
        self._closed_streams: dict[int, asyncio.Event] = {}
        self._data_ready: dict[int, asyncio.Event] = {}
        self._ping_responders: dict[int, ping.PingResponder] = {}
        self._kad_streams: dict[int, kad_dht.KadStream] = {}
        #: inbound Bitswap streams: bytes of a message not complete yet.
        self._bitswap_in: dict[int, bytearray] = {}
        self._bitswap_out: int | None = None
        self._bitswap_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None
        peer = writer.get_extra_info("peername")
        self.observed = _tcp_multiaddr(peer[0], peer[1]) if peer else None

    @property
    def remote_peer_id(self) -> PeerId | None:
        return self.core.remote_peer_id

    # -- driving the core --------------------------------------------------------------------

    def start(self) -> None:
        self._flush()
        self._task = asyncio.create_task(self._run())

    def _flush(self) -> None:
        data = self.core.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def _write(self, data: bytes) -> None:
        """Bytes the core returned from ``send``: they go to the socket now."""
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.host.handshake_timeout
        try:
            while True:
                if self.established.done():
                    data = await self.reader.read(READ_SIZE)
                else:  # a peer that never finishes the upgrade is dropped
                    try:
                        data = await asyncio.wait_for(self.reader.read(READ_SIZE),
                                                      max(0.0, deadline - loop.time()))
                    except TimeoutError:
                        self.error = (f"no secured connection within "
                                      f"{self.host.handshake_timeout:g} s")
                        break
                self.core.receive_data(data, self._now())
                self._dispatch()
                self._flush()
                await self.writer.drain()
                if not data or self.core.closed:
                    break
        except (P2PKitError, OSError) as e:
            self.error = str(e)
        finally:
            self._fail_waiters(self.error or "connection closed")
            self.writer.close()
            self.host.connections.discard(self)

    def _fail_waiters(self, reason: str) -> None:
        for fut in [self.established, *self._negotiated.values()]:
            if not fut.done():
                fut.set_exception(ProtocolError(reason))
        for event in [*self._closed_streams.values(), *self._data_ready.values()]:
            event.set()

    def _log_keys(self) -> None:
        """One ``NOISE_SECRETS`` line in the host's key log (when it keeps one)."""
        secrets = self.core.noise_secrets()
        if self.host.keylog is None or secrets is None:
            return
        local = _endpoint(self.writer.get_extra_info("sockname"))
        remote = _endpoint(self.writer.get_extra_info("peername"))
        initiator, responder = (local, remote) if self.core.initiator else (remote, local)
        e, ikey, rkey, h = secrets
        self.host.keylog.write(NoiseKeyLogEntry(
            initiator=initiator, responder=responder, initiator_ephemeral=e,
            initiator_key=ikey, responder_key=rkey, handshake_hash=h))
        if self.host.keylog_handshakes:
            static, ephemeral = self.core.noise_handshake_secrets()
            self.host.keylog.write(NoiseHandshakeEntry(
                initiator_ephemeral=e, role="initiator" if self.core.initiator else "responder",
                static_secret=static, ephemeral_secret=ephemeral))

    def _dispatch(self) -> None:
        now = self._now()
        while True:
            event = self.core.next_event()
            if event is NEED_DATA:
                return
            if isinstance(event, conn.ConnectionEstablished):
                self._log_keys()
                if not self.established.done():
                    self.established.set_result(None)
            elif isinstance(event, conn.ConnectionFailed):
                raise ProtocolError(event.reason)
            elif isinstance(event, conn.StreamNegotiated):
                self._negotiated_stream(event, now)
            elif isinstance(event, conn.StreamRefused):
                fut = self._negotiated.get(event.stream_id)
                if fut is not None and not fut.done():
                    fut.set_exception(ProtocolError(f"stream refused: {event.reason}"))
            elif isinstance(event, conn.StreamData):
                self._stream_data(event.stream_id, event.data, now)
            elif isinstance(event, conn.StreamClosed):
                self._ping_responders.pop(event.stream_id, None)
                self._kad_streams.pop(event.stream_id, None)
                self._bitswap_in.pop(event.stream_id, None)
                if event.stream_id == self._bitswap_out and event.reset:
                    self._bitswap_out = None
                # the peer is done with a stream it opened: so are we. On a stream we opened,
                # its FIN only means it will not write (Helia half-closes the Bitswap streams
                # it accepts at once); we close ours when our side is done.
                if event.stream_id in self.core.stream_protocols and not event.reset and \
                        event.stream_id not in self._negotiated:
                    with contextlib.suppress(P2PKitError):
                        self._write(self.core.send(
                            yamux.CloseStream(stream_id=event.stream_id), now))
                if event.stream_id in self._negotiated:  # ours: its reader forgets it
                    self._closed_streams.setdefault(event.stream_id, asyncio.Event()).set()
                    self._data_ready.setdefault(event.stream_id, asyncio.Event()).set()
                else:
                    self._forget(event.stream_id)

    def _negotiated_stream(self, event: conn.StreamNegotiated, now: float) -> None:
        sid = event.stream_id
        if event.local:
            fut = self._negotiated.get(sid)
            if fut is not None and not fut.done():
                fut.set_result(event.protocol)
            return
        if event.protocol == ping.PROTOCOL_ID:
            if len(self._ping_responders) >= MAX_PING_STREAMS:
                self._write(self.core.send(yamux.ResetStream(stream_id=sid), now))
                return
            self._ping_responders[sid] = ping.PingResponder()
        elif event.protocol in bitswap.PROTOCOL_IDS:
            if len(self._bitswap_in) >= MAX_BITSWAP_STREAMS:
                self._write(self.core.send(yamux.ResetStream(stream_id=sid), now))
                return
            self._bitswap_in[sid] = bytearray()
        elif event.protocol == kad_dht.PROTOCOL_ID:
            if len(self._kad_streams) >= MAX_KAD_STREAMS:
                self._write(self.core.send(yamux.ResetStream(stream_id=sid), now))
                return
            self._kad_streams[sid] = kad_dht.KadStream(self.host.dht, self.remote_peer_id)
            self.host.learn_peer(self)
        elif event.protocol == IDENTIFY_PROTOCOL:
            message = IdentifyFrame.build(self.host.identify_message(self))
            self._write(self.core.send_stream(sid, message, now))
            self._write(self.core.send(yamux.CloseStream(stream_id=sid), now))

    def _stream_data(self, sid: int, data: bytes, now: float) -> None:
        pending = self._bitswap_in.get(sid)
        if pending is not None:
            pending += data
            while pending:
                size = _bitswap_frame_length(pending)
                if size is None or len(pending) < size:
                    break
                message = BitswapMessageFrame.parse(bytes(pending[:size]))
                del pending[:size]
                self.host.bitswap_message(self, message)
            return
        kad = self._kad_streams.get(sid)
        if kad is not None:
            kad.receive_data(data, now)
            answer = kad.data_to_send()
            if answer:
                self._write(self.core.send_stream(sid, answer, now))
            if kad.closed:  # a refused request: close without an answer (kad-dht spec)
                del self._kad_streams[sid]
                self._write(self.core.send(yamux.CloseStream(stream_id=sid), now))
            return
        responder = self._ping_responders.get(sid)
        if responder is not None:
            responder.receive_data(data, now)
            echo = responder.data_to_send()
            if echo:
                self._write(self.core.send_stream(sid, echo, now))
            return
        buffer = self._inbound.setdefault(sid, bytearray())
        if len(buffer) + len(data) > MAX_STREAM_BUFFER:
            self._write(self.core.send(yamux.ResetStream(stream_id=sid), now))
            return
        buffer += data
        self._data_ready.setdefault(sid, asyncio.Event()).set()

    def _forget(self, sid: int) -> None:
        """Drop what the host kept for stream ``sid`` (per-stream state is freed)."""
        for table in (self._negotiated, self._inbound, self._closed_streams, self._data_ready,
                      self._ping_responders, self._kad_streams, self._bitswap_in):
            table.pop(sid, None)

    # -- the application's side --------------------------------------------------------------

    async def open_stream(self, protocols: list[str], timeout: float) -> int:
        """A stream that agreed on one of ``protocols``."""
        await asyncio.wait_for(asyncio.shield(self.established), timeout)
        sid = self.core.open_stream(protocols, self._now())
        fut = self._negotiated[sid] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_retrieve)
        self._flush()
        await asyncio.wait_for(fut, timeout)
        return sid

    async def _read(self, sid: int, size: int | None, timeout: float) -> bytes:
        """``size`` bytes (or, with None, everything until the peer closes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            buffer = self._inbound.setdefault(sid, bytearray())
            closed = self._closed_streams.get(sid)
            if size is not None and len(buffer) >= size:
                out = bytes(buffer[:size])
                del buffer[:size]
                return out
            if closed is not None and closed.is_set() or self._task.done():
                if size is None:
                    return bytes(self._inbound.pop(sid, b""))
                raise ProtocolError("stream closed before the expected bytes arrived")
            ready = self._data_ready.setdefault(sid, asyncio.Event())
            ready.clear()
            await asyncio.wait_for(ready.wait(), max(0.0, deadline - loop.time()))

    async def ping(self, count: int = 1, *, timeout: float = 10.0,
                   rng: random.Random | None = None) -> list[float]:
        """``count`` pings on one stream; their round-trip times in seconds."""
        rng = rng or self.host.rng
        sid = await self.open_stream([ping.PROTOCOL_ID], timeout)
        dialer = ping.PingDialer()
        rtts = []
        for _ in range(count):
            payload = dialer.ping(rng.randbytes(ping.PING_LENGTH), self._now())
            self._write(self.core.send_stream(sid, payload, self._now()))
            self._flush()
            dialer.receive_data(await self._read(sid, ping.PING_LENGTH, timeout), self._now())
            rtts.append(dialer.next_event().rtt)
        self._write(self.core.send(yamux.CloseStream(stream_id=sid), self._now()))
        self._flush()
        self._forget(sid)
        return rtts

    async def identify(self, *, timeout: float = 10.0) -> Any:
        """The peer's identify message."""
        sid = await self.open_stream([IDENTIFY_PROTOCOL], timeout)
        reader = IdentifyReader(self.remote_peer_id)
        try:
            reader.receive_data(await self._read(sid, None, timeout), self._now())
            with contextlib.suppress(P2PKitError):  # our side of the stream is done too
                self._write(self.core.send(yamux.CloseStream(stream_id=sid), self._now()))
        finally:
            self._forget(sid)
        reader.receive_data(b"", self._now())
        message = reader.next_event().message
        if kad_dht.PROTOCOL_ID in message.protocols:  # a DHT server: into the routing table
            addrs = []
            for raw in message.listenAddrs:
                with contextlib.suppress(P2PKitError):
                    addrs.append(Multiaddr.from_bytes(raw))
            self.host.dht.add_server(self.remote_peer_id, addrs, self._now())
        return message

    async def kad_request(self, request: dict[str, Any], *, timeout: float = 10.0,
                          expect_answer: bool | None = None) -> Any:
        """One kad-dht RPC on a new ``/ipfs/kad/1.0.0`` stream: the parsed answer, or
        :class:`~p2pkit.errors.ProtocolError` if the peer closed without one.

        ``ADD_PROVIDER`` waits for no answer by default: the spec says the server echoes the
        request, but go-libp2p-kad-dht and js-libp2p's kad-dht answer nothing.
        """
        if expect_answer is None:
            expect_answer = request.get("type") != "ADD_PROVIDER"
        sid = await self.open_stream([kad_dht.PROTOCOL_ID], timeout)
        self._write(self.core.send_stream(sid, KadMessageFrame.build(request), self._now()))
        self._write(self.core.send(yamux.CloseStream(stream_id=sid), self._now()))
        try:
            if not expect_answer:
                return None
            return KadMessageFrame.parse(
                await self._read_frame(sid, kad_dht.frame_length, timeout))
        finally:
            self._forget(sid)

    async def send_bitswap(self, messages: list[dict[str, Any]], timeout: float = 10.0) -> None:
        """Write Bitswap messages on our one outbound Bitswap stream to this peer (opened on
        first use; the peer answers on a stream of its own, §Interaction Pattern). Answers
        written back on our stream are read too: py-libp2p 0.8.1 answers there."""
        async with self._bitswap_lock:
            if self._bitswap_out is None:
                self._bitswap_out = await self.open_stream(list(bitswap.PROTOCOL_IDS), timeout)
                self._bitswap_in[self._bitswap_out] = bytearray()
            for message in messages:
                self._write(self.core.send_stream(self._bitswap_out,
                                                  BitswapMessageFrame.build(message),
                                                  self._now()))

    async def fetch(self, cids: list[Cid], *, timeout: float = 30.0) -> dict[Cid, bytes]:
        """The blocks of ``cids`` from this peer (want-block with DontHave); a block the peer
        does not have is a :class:`~p2pkit.errors.ProtocolError`."""
        loop = asyncio.get_running_loop()
        waiting = {cid: loop.create_future() for cid in cids if cid not in self.host.blocks}
        for cid, fut in waiting.items():
            self.host.block_waiters.setdefault(cid, []).append(fut)
            self.host.waiter_peers[fut] = self.remote_peer_id
        try:
            if waiting:
                await self.send_bitswap([self.host.bitswap.want(self.remote_peer_id,
                                                                 list(waiting))], timeout)
                await asyncio.wait_for(asyncio.gather(*waiting.values()), timeout)
        finally:
            for cid, fut in waiting.items():
                self.host.waiter_peers.pop(fut, None)
                waiters = self.host.block_waiters.get(cid, [])
                if fut in waiters:
                    waiters.remove(fut)
                if not waiters:
                    self.host.block_waiters.pop(cid, None)
        return {cid: self.host.blocks[cid] for cid in cids}

    async def _read_frame(self, sid: int, frame_length: Any, timeout: float) -> bytes:
        """One whole frame (``frame_length(buffer)`` tells its size, None while unknown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            buffer = self._inbound.setdefault(sid, bytearray())
            size = frame_length(buffer) if buffer else None
            if size is not None and len(buffer) >= size:
                out = bytes(buffer[:size])
                del buffer[:size]
                return out
            closed = self._closed_streams.get(sid)
            if closed is not None and closed.is_set() or self._task.done():
                raise ProtocolError("the stream ended before a whole message arrived")
            ready = self._data_ready.setdefault(sid, asyncio.Event())
            ready.clear()
            await asyncio.wait_for(ready.wait(), max(0.0, deadline - loop.time()))

    async def close(self) -> None:
        self.writer.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 2.0)


class Host:
    """A libp2p host: an Ed25519 identity, listening and dialing over TCP.

    ``rng`` draws the Noise keys and ping payloads (seed it for reproducible runs).
    ``keylog``: a :class:`~p2pkit.ipfs.noise_keylog.NoiseKeyLogWriter` that gets every
    connection's Noise transport keys (for ``p2pkit dissect --keylog``) and, unless
    ``keylog_handshakes`` is false, this end's per-connection Noise secrets.
    """

    def __init__(self, identity: Ed25519Identity, *, rng: random.Random | None = None,
                 agent: str = "p2pkit/0.1.0", max_connections: int = MAX_CONNECTIONS,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 keylog: NoiseKeyLogWriter | None = None,
                 keylog_handshakes: bool = True,
                 blocks: MutableMapping[Cid, bytes] | None = None) -> None:
        self.identity = identity
        #: Where each connection's Noise transport keys are written (``--keylog``), or None.
        self.keylog = keylog
        #: Also log our per-connection Noise secrets (the handshake payloads then decrypt).
        self.keylog_handshakes = keylog_handshakes
        self.rng = rng or random.Random()
        self.agent = agent
        self.max_connections = max_connections
        #: Seconds a connection gets to finish multistream, Noise and the muxer.
        self.handshake_timeout = handshake_timeout
        self.peer_id = PeerId.from_public_key(identity.public_key)
        self.protocols = (ping.PROTOCOL_ID, IDENTIFY_PROTOCOL, kad_dht.PROTOCOL_ID,
                          *bitswap.PROTOCOL_IDS)
        #: The kad-dht server state (routing table, provider records).
        self.dht = kad_dht.KadDhtServer(self.peer_id)
        #: The blocks this host serves (and those it fetched), each checked against its CID.
        self.blocks: MutableMapping[Cid, bytes] = {} if blocks is None else blocks
        self.bitswap = bitswap.BitswapEngine(self.blocks)
        #: CID -> futures of fetches waiting for it (a block from any peer completes them).
        self.block_waiters: dict[Cid, list[asyncio.Future[None]]] = {}
        #: future -> the peer it asked: only that peer's DONT_HAVE fails it.
        self.waiter_peers: dict[asyncio.Future[None], PeerId] = {}
        self.connections: set[HostConnection] = set()
        self.listen_addrs: list[Multiaddr] = []
        self._server: asyncio.base_events.Server | None = None
        self.on_connection: Callable[[HostConnection], None] | None = None
        self._identifying: set[PeerId] = set()
        #: peers identified as DHT clients (insertion order: the oldest is forgotten first).
        self._not_servers: dict[PeerId, None] = {}
        self._background: set[asyncio.Task[None]] = set()

    def add_blocks(self, blocks: dict[Cid, bytes]) -> None:
        """Serve ``blocks`` (each is checked against its CID first)."""
        for cid, block in blocks.items():
            if not cid.verify(block):
                raise ProtocolError(f"block does not match its CID {cid}")
            self.blocks[cid] = block

    def bitswap_message(self, connection: HostConnection, message: Any) -> None:
        """A Bitswap message from ``connection``'s peer: answer it, hand blocks to fetches."""
        peer = connection.remote_peer_id
        answers = self.bitswap.receive_message(peer, message)
        while (event := self.bitswap.next_event()) is not NEED_DATA:
            if isinstance(event, bitswap.BlockReceived):
                self.blocks[event.cid] = self.bitswap.received.pop(event.cid)
                for fut in self.block_waiters.pop(event.cid, []):
                    if not fut.done():
                        fut.set_result(None)
            elif isinstance(event, bitswap.PresenceReceived) and not event.have:
                for fut in self.block_waiters.get(event.cid, []):
                    if not fut.done() and self.waiter_peers.get(fut, peer) == peer:
                        fut.set_exception(ProtocolError(f"{peer} does not have {event.cid}"))
        if answers:
            task = asyncio.create_task(connection.send_bitswap(answers))
            task.add_done_callback(_retrieve)

    def learn_peer(self, connection: HostConnection) -> None:
        """A peer that queries our DHT may be a DHT server itself: identify it in the
        background (what go-libp2p and js-libp2p do on every connection) so that a server
        enters the routing table (ipfs-kad-dht §Client and Server Mode). At most
        :data:`MAX_BACKGROUND_IDENTIFY` run at once; known peers are not asked again."""
        peer = connection.remote_peer_id
        if (peer is None or kad_dht.kademlia_id(peer.multihash) in self.dht.peers
                or peer in self._identifying or peer in self._not_servers
                or len(self._identifying) >= MAX_BACKGROUND_IDENTIFY):
            return
        self._identifying.add(peer)

        async def run() -> None:
            try:
                with contextlib.suppress(P2PKitError, OSError, TimeoutError):
                    await connection.identify(timeout=5.0)
                    if kad_dht.kademlia_id(peer.multihash) not in self.dht.peers:
                        # a client (or a server we cannot dial): not asked again
                        self._not_servers[peer] = None
                        while len(self._not_servers) > MAX_NOT_SERVERS:
                            self._not_servers.pop(next(iter(self._not_servers)))
            finally:
                self._identifying.discard(peer)

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def identify_message(self, connection: HostConnection) -> dict[str, Any]:
        """What this host says about itself on ``/ipfs/id/1.0.0``."""
        return identify_message(self.identity, protocols=self.protocols,
                                listen_addrs=self.listen_addrs, observed=connection.observed,
                                agent=self.agent)

    def _connection(self, initiator: bool, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter,
                    expected: PeerId | None = None) -> HostConnection:
        core = conn.Libp2pConnection(initiator=initiator, identity=self.identity, rng=self.rng,
                                     protocols=self.protocols, expected_peer=expected)
        c = HostConnection(self, core, reader, writer)
        self.connections.add(c)
        c.start()
        return c

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> Multiaddr:
        """Accept connections on ``host:port``; returns the address with ``/p2p/``."""
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if len(self.connections) >= self.max_connections:
                writer.close()
                return
            c = self._connection(False, reader, writer)
            if self.on_connection is not None:
                self.on_connection(c)

        self._server = await asyncio.start_server(accept, host, port)
        bound = self._server.sockets[0].getsockname()
        addr = _tcp_multiaddr(bound[0], bound[1])
        self.listen_addrs.append(addr)
        return addr.encapsulate(Multiaddr((("p2p", self.peer_id.multihash),)))

    async def dial(self, addr: Multiaddr, *, timeout: float = 10.0) -> HostConnection:
        """Connect to ``/ip4|ip6/…/tcp/…[/p2p/…]`` and finish the upgrade."""
        ip = next((v for n, v in addr if n in ("ip4", "ip6")), None)
        if ip is None:
            raise ProtocolError(f"{addr}: p2pkit dials /ip4 or /ip6 TCP addresses only")
        port = addr.value_for("tcp")
        expected = PeerId(addr.peer_id) if addr.peer_id else None
        reader, writer = await asyncio.wait_for(asyncio.open_connection(str(ip), port), timeout)
        c = self._connection(True, reader, writer, expected)
        try:
            await asyncio.wait_for(asyncio.shield(c.established), timeout)
        except BaseException:
            await c.close()
            raise
        return c

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for c in list(self.connections):
            await c.close()
