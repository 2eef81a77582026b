"""The asyncio driver of the reference BitTorrent peer: sockets, disk, trackers, timers.

Specs: BEP 3 (peer protocol over TCP, trackers), BEP 9 (magnet links), BEP 12 (tiers), BEP 15
(UDP trackers). All protocol decisions live in :class:`~p2pkit.bittorrent.peer.session.TorrentSession`;
this module only moves bytes between it and the world:

- TCP: one listening socket, outgoing connections to peers given on the command line, in a
  magnet's ``x.pe``, from trackers and from PEX; at most ``max_peers`` at once, banned addresses
  never again. Admission: at most ``max_per_address`` incoming connections from one IP address;
  when the slots (or that address's share) are full, a new incoming connection replaces the
  oldest one that has not completed its handshake (as libtorrent and Transmission do), so
  silent or slow sockets can never keep a well-behaved peer out for longer than its own
  handshake takes.
- Disk: :class:`~p2pkit.bittorrent.peer.storage.Storage`. The re-check at start (resume) and every
  piece's hash check + write run in a worker thread (``hashlib`` releases the GIL), so hashing
  overlaps the network. Blocks to upload are read in the loop (the page cache makes that a
  memory copy). When checks fall behind, reading from peers pauses, which bounds memory
  whatever the torrent size.
- Encryption (MSE (Vuze wiki), :mod:`p2pkit.bittorrent.mse`): a layer *below* the session,
  per connection. ``encryption="prefer"`` dials with MSE offering RC4 and plaintext and, when
  the key exchange fails, dials the same address again in plaintext; incoming connections are
  told apart by their first bytes (``\x13BitTorrent protocol`` or a key exchange).
  ``"require"`` dials and accepts MSE with RC4 only; ``"plaintext"`` never speaks MSE.
  ``keylog``: each MSE connection's keys appended to that file
  (:mod:`p2pkit.bittorrent.mse.keylog`), for ``p2pkit dissect --keylog``.
- Transports (``transport``): ``"both"`` (the default, as libtorrent) accepts TCP and uTP
  (BEP 29, :mod:`p2pkit.bittorrent.utp`) and dials uTP first, then TCP when uTP gets no answer
  within ``UTP_CONNECT_TIMEOUT``; ``"utp"`` and ``"tcp"`` use one only. uTP runs on a UDP
  socket with the listening port's number, the DHT node's socket when the DHT runs on that port
  (KRPC datagrams start with ``d``, uTP ones with a type/version byte). Every dialled peer,
  whoever named it (command line, tracker, PEX, DHT), is tried over both, except a PEX contact
  whose BEP 11 ``added.f`` flags lack 0x04 "supports uTP": it is dialled over TCP at once
  (libtorrent's ``supports_utp``); our own PEX messages set 0x04 for peers connected over uTP
  or advertised with it. ``utp_mtu``: the ceiling of uTP's path MTU search, Ethernet's 1500
  (default, as libtorrent 2.0) or the interface's (``"interface"``: 65536 on loopback, for
  p2pkit peers among themselves; libtorrent and transmission drop such datagrams). The session
  and MSE
  see a uTP connection as they see a TCP one (an asyncio transport).
- Trackers: ``started`` at once, then every ``interval`` seconds, ``completed`` when the last
  piece passes its check, ``stopped`` on the way out.

It stays one module: each part above is plumbing of the one loop that feeds the one session
(no protocol logic lives here), and they share its connection table and its pump.

>>> import asyncio, tempfile
>>> from pathlib import Path
>>> from p2pkit.bittorrent.wire.create import create_from_contents
>>> from p2pkit.bittorrent.wire.metainfo import Metainfo
>>> content = {"a.bin": bytes(range(256)) * 300}
>>> meta = Metainfo.parse(create_from_contents("demo", content, piece_length=16384))
>>> async def swarm(seed_dir, leech_dir):
...     seeder = TorrentClient(meta, seed_dir, listen=("127.0.0.1", 0))
...     await seeder.start()
...     leecher = TorrentClient(meta, leech_dir, listen=("127.0.0.1", 0),
...                             peers=[("127.0.0.1", seeder.listen_port)])
...     await leecher.start()
...     await asyncio.wait_for(leecher.wait_complete(), 10)
...     await leecher.close(), await seeder.close()
...     return leecher.session.complete
>>> with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
...     (Path(a) / "demo").mkdir()
...     _ = (Path(a) / "demo" / "a.bin").write_bytes(content["a.bin"])
...     asyncio.run(swarm(Path(a), Path(b)))
...     (Path(b) / "demo" / "a.bin").read_bytes() == content["a.bin"]
True
True
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pkit.bittorrent.mse.connection import MseConnection, MseEstablished, PayloadReceived
from p2pkit.bittorrent.mse.keylog import KeyLogEntry, KeyLogWriter
from p2pkit.bittorrent.peer.session import (
    REQUEST_QUEUE,
    BlockRequested,
    DhtNodeSeen,
    DownloadStopped,
    LeafHashesWanted,
    MetadataCompleted,
    PeerClosed,
    PeersDiscovered,
    PieceDownloaded,
    PieceLayerVerified,
    TorrentSession,
)
from p2pkit.bittorrent.peer.storage import Storage
from p2pkit.bittorrent.tracker.client import Announce, TrackerClient, TrackerError, TrackerTiers
from p2pkit.bittorrent.utp.endpoint import MTU_POLICIES, UtpEndpoint, UtpStream
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.bittorrent.wire.utp import looks_like_utp
from p2pkit.core import NEED_DATA
from p2pkit.errors import P2PKitError
from p2pkit.first_flight import defer_accept, unread_bytes

__all__ = ["ENCRYPTION_POLICIES", "MAX_CONNECTIONS_PER_ADDRESS", "TRANSPORTS", "ClientStats",
           "TorrentClient", "new_peer_id"]

log = logging.getLogger("p2pkit.bittorrent.peer.client")

#: Azureus-style peer id prefix (BEP 20): client "PK", version 0.1.0.0.
PEER_ID_PREFIX = b"-PK0100-"
#: Bytes of complete pieces waiting for their hash check before we stop reading from peers.
MAX_PENDING_CHECK_BYTES = 64 * 1024 * 1024
#: Seconds an outgoing TCP connection may take.
CONNECT_TIMEOUT = 10.0
#: Times one address is dialled again after a failed connection (backing off up to 60 s).
MAX_REDIALS = 8
#: Seconds one tracker announce may take (retransmissions included).
TRACKER_TIMEOUT = 30.0
#: Tracker re-announce interval when a tracker does not say.
DEFAULT_INTERVAL = 1800
#: Seconds between DHT ``get_peers`` + ``announce_peer`` rounds (BEP 5 peers expire after 30
#: minutes on most nodes), and after a round that found nobody.
DHT_INTERVAL = 300.0
DHT_RETRY = 5.0
#: Incoming connections kept from one IP address at once (``max_per_address``). A new one
#: beyond it replaces that address's oldest connection that has not sent a valid handshake yet,
#: or is refused when all of them have: one host cannot fill the peer slots with silent sockets.
MAX_CONNECTIONS_PER_ADDRESS = 8
#: Bytes of a first flight: BEP 3's pstrlen and 19-byte pstr, or the start of an MSE Ya. An
#: unauthenticated connection that sent this much is evicted only after those that did not.
FIRST_FLIGHT_BYTES = 20
#: Seconds a new connection may take to send its first flight before any newcomer may replace
#: it (a newcomer with a first flight may replace it at once).
EVICTION_GRACE = 1.0
#: ``encryption`` settings (MSE, as libtorrent's enc_policy): prefer (the default of real
#: clients), require, plaintext.
ENCRYPTION_POLICIES = ("prefer", "require", "plaintext")
#: Addresses whose PEX uTP flag is remembered, at most.
MAX_TRANSPORT_HINTS = 4096
#: ``transport`` settings: TCP, uTP (BEP 29) or both (accept both, dial uTP first).
TRANSPORTS = ("both", "utp", "tcp")
#: TCP/UDP port pairs tried when port 0 is asked and the system's TCP port is taken over UDP.
PORT_PAIR_ATTEMPTS = 20
#: Seconds a uTP dial may take before TCP is tried (``transport="both"``; libutp's SYN is
#: resent after 1 and 2 s).
UTP_CONNECT_TIMEOUT = 3.5
#: crypto_provide bits (MSE (Vuze wiki)): 0x01 plaintext, 0x02 RC4.
_PROVIDE = {"prefer": 0x03, "require": 0x02}


def new_peer_id(rng: random.Random | None = None) -> bytes:
    """BEP 20 style: ``-PK0100-`` and 12 random printable bytes."""
    rng = rng or random.SystemRandom()
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return PEER_ID_PREFIX + bytes(rng.choice(alphabet) for _ in range(12))


@dataclass(frozen=True, kw_only=True)
class ClientStats:
    """A snapshot for progress displays."""

    verified: int
    total: int
    pieces_have: int
    pieces_total: int
    peers: int
    download_rate: float
    upload_rate: float
    failed_pieces: int
    complete: bool


class _PeerProtocol(asyncio.Protocol):
    """One TCP connection; hands everything to the client."""

    def __init__(self, client: TorrentClient, address: tuple[str, int] | None,
                 outgoing: bool) -> None:
        self.client = client
        self.address = address
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.paused_writing = False
        self.pending_reads: list[BlockRequested] = []
        #: The MSE layer below the session, or None (plaintext).
        self.layer: MseConnection | None = None
        #: Bytes received on this connection and when it opened (the eviction order).
        self.received = 0
        self.opened = 0.0

    def write(self, data: bytes) -> None:
        """Send peer-wire bytes (through the MSE layer when there is one)."""
        layer = self.layer
        if layer is not None:
            if data:
                layer.send_payload(data)
            data = layer.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def endpoints(self) -> tuple[str, str]:
        """(initiator, responder) as ``host:port`` (``[v6]:port``), for the key log."""
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname") or ("?", 0)
        remote = self.transport.get_extra_info("peername") or ("?", 0)
        ends = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p, *_ in (local, remote)]
        return (ends[0], ends[1]) if self.outgoing else (ends[1], ends[0])

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.address is None:
            peer = transport.get_extra_info("peername")
            self.address = (peer[0], peer[1]) if peer else None
        self.opened = self.client._now()
        self.client._connected(self)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.client._received(self, data)

    def unread(self) -> int:
        """Bytes the kernel holds for this connection that the event loop has not read yet
        (``FIONREAD``; 0 where it cannot tell, e.g. a uTP stream)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        return unread_bytes(sock)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(self)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.client._resume_writing(self)


class TorrentClient:
    """Downloads and/or seeds one torrent (from a :class:`Metainfo` or a :class:`MagnetLink`)
    into ``root``; see the module docstring.

    ``listen``: address for incoming connections (port 0 picks one); ``bind``: source address
    for outgoing connections (defaults to the listening host unless it is a wildcard);
    ``peers``: addresses to dial at start; ``trackers``: announce to the torrent's trackers.
    """

    def __init__(self, source: Metainfo | MagnetLink, root: Path | str, *,
                 listen: tuple[str, int] = ("0.0.0.0", 6881), bind: str | None = None,
                 peers: Iterable[tuple[str, int]] = (), trackers: bool = True,
                 max_peers: int = 50, max_per_address: int = MAX_CONNECTIONS_PER_ADDRESS,
                 upload_slots: int | None = 4,
                 peer_id: bytes | None = None, rng: random.Random | None = None,
                 on_progress: Callable[[ClientStats], None] | None = None,
                 tracker_client: TrackerClient | None = None,
                 dht_bootstrap: Iterable[tuple[str, int]] | None = None,
                 dht_port: int | None = None, request_queue: int = REQUEST_QUEUE,
                 encryption: str = "prefer", keylog: str | Path | None = None,
                 transport: str = "both", utp_mtu: str = "ethernet") -> None:
        if encryption not in ENCRYPTION_POLICIES:
            raise ValueError(f"encryption {encryption!r} is not one of {ENCRYPTION_POLICIES}")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport {transport!r} is not one of {TRANSPORTS}")
        if utp_mtu not in MTU_POLICIES:
            raise ValueError(f"utp_mtu {utp_mtu!r} is not one of {MTU_POLICIES}")
        #: Which transports carry peer connections (see the module docstring).
        self.transport = transport
        self.utp: UtpEndpoint | None = None
        #: Ceiling of uTP's path MTU search (:data:`~p2pkit.bittorrent.utp.endpoint.MTU_POLICIES`).
        self.utp_mtu = utp_mtu
        #: MSE policy (see the module docstring) and the key log path.
        self.encryption = encryption
        self.keylog_path = Path(keylog) if keylog is not None else None
        self._keylog: KeyLogWriter | None = None
        #: Addresses whose MSE handshake failed: dialled in plaintext (``prefer`` only).
        self._plaintext_peers: set[tuple[str, int]] = set()
        self.root = Path(root)
        self.rng = rng or random.Random()
        self.peer_id = peer_id or new_peer_id()
        self.metainfo = source if isinstance(source, Metainfo) else None
        self.magnet = source if isinstance(source, MagnetLink) else None
        self.listen = listen
        self.bind = bind if bind is not None else (None if listen[0] in ("0.0.0.0", "::")
                                                   else listen[0])
        self.initial_peers = list(peers)
        if self.magnet is not None:
            self.initial_peers += [(p.host, p.port) for p in self.magnet.peers]
        self.use_trackers = trackers
        self.max_peers = max_peers
        self.max_per_address = max_per_address
        #: Seconds an unauthenticated connection is safe from a newcomer that has sent no
        #: first flight either (``_evict``).
        self.eviction_grace = EVICTION_GRACE
        self.upload_slots = upload_slots
        #: Requests kept outstanding per peer (the pipeline depth; a peer's BEP 10 ``reqq``
        #: lowers it).
        self.request_queue = request_queue
        self.on_progress = on_progress
        self.tracker_client = tracker_client or TrackerClient(rng=self.rng)
        self.storage: Storage | None = None
        self.session: TorrentSession | None = None
        self.listen_port = listen[1]
        self.banned: set[str] = set()
        self.errors: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._protocols: dict[int, _PeerProtocol] = {}
        self._keys: dict[_PeerProtocol, int] = {}
        self._next_key = 0
        self._dialling: set[tuple[str, int]] = set()
        #: BEP 11 ``added.f`` 0x04 per address learnt by PEX: True speaks uTP, False does not
        #: (dialled over TCP at once); at most MAX_TRANSPORT_HINTS remembered.
        self._utp_hint: dict[tuple[str, int], bool] = {}
        self._redials: dict[tuple[str, int], int] = {}
        self._known: set[tuple[str, int]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._pending_checks = 0
        self._pending_bytes = 0
        self._reading_paused = False
        self._complete = asyncio.Event()
        #: Why the download stopped short, if it did (see :meth:`wait_complete`).
        self.fatal: str | None = None
        self._tasks: set[asyncio.Task] = set()
        self._check_tasks: set[asyncio.Task] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rates: list[tuple[float, int, int]] = []
        #: BEP 5: DHT nodes to join through; ``None`` runs no DHT node (never the public
        #: routers: p2pkit only joins a DHT it is pointed at).
        self.dht_bootstrap = list(dht_bootstrap) if dht_bootstrap is not None else None
        self.dht_port = dht_port
        self.dht: Any = None

    # -----------------------------------------------------------------------------------------
    # Life cycle

    async def start(self) -> None:
        """Re-check existing data (resume), listen, dial the known peers, announce."""
        self._loop = asyncio.get_running_loop()
        now = self._now()
        if self.metainfo is not None:
            have = await self._open_storage(self.metainfo)
            self.session = TorrentSession(peer_id=self.peer_id, metainfo=self.metainfo,
                                          have=have, rng=self.rng,
                                          upload_slots=self.upload_slots,
                                          request_queue=self.request_queue, now=now)
        else:
            assert self.magnet is not None
            info_hash = self.magnet.info_hash_v1 or self.magnet.info_hash_v2[:20]
            self.session = TorrentSession(peer_id=self.peer_id, info_hash=info_hash,
                                          info_hash_v2=self.magnet.info_hash_v2,
                                          rng=self.rng, upload_slots=self.upload_slots,
                                          request_queue=self.request_queue, now=now)
        if self.session.complete:
            self._complete.set()
        if self.keylog_path is not None:
            self._keylog = KeyLogWriter(self.keylog_path)
        host, port = self.listen
        if self.transport != "utp":
            self._server = await self._loop.create_server(
                lambda: _PeerProtocol(self, None, False), host, port)
            defer_accept(self._server)  # BEP 3: the initiator speaks first
            self.listen_port = self._server.sockets[0].getsockname()[1]
        if self.dht_bootstrap is not None and not (self.metainfo and self.metainfo.private):
            await self._start_dht()
        if self.transport != "tcp":
            await self._start_utp()
        self.session.listen_port = self.listen_port
        for address in self.initial_peers:
            self.connect(address)
        if self.use_trackers and self._tracker_urls():
            self._spawn(self._announce_loop())
        if self.dht is not None:
            self._spawn(self._dht_loop())
        self._schedule()

    async def _open_storage(self, metainfo: Metainfo) -> bytearray:
        self.storage = Storage(metainfo, self.root)
        return await asyncio.to_thread(self.storage.check)

    async def wait_complete(self) -> None:
        """Return once every piece has passed its hash check; raise
        :class:`~p2pkit.errors.P2PKitError` if the download cannot go on (:attr:`fatal`)."""
        await self._complete.wait()
        if self.fatal is not None:
            raise P2PKitError(self.fatal)

    def _stop(self, reason: str) -> None:
        """The download cannot go on (storage failing, metadata p2pkit cannot use)."""
        log.error("%s", reason)
        self.errors.append(reason)
        if self.fatal is None:
            self.fatal = reason
        self._complete.set()

    async def close(self) -> None:
        """Announce ``stopped``, close every connection and the storage."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.close()
        for proto in list(self._protocols.values()):
            if proto.transport is not None:
                proto.transport.close()
        if self.utp is not None:
            self.utp.close()
        # Pieces being checked and written finish first (a write cut by closing the storage
        # would only cost a re-check, but there is no need for it).
        checks = [t for t in self._tasks if t in self._check_tasks]
        if checks:
            await asyncio.gather(*checks, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self.dht is not None:
            self.dht.close()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.use_trackers and self.session is not None and self._tracker_urls():
            with contextlib.suppress(P2PKitError, OSError, asyncio.TimeoutError):
                await self._announce_once("stopped", timeout=5.0)
        if self.storage is not None:
            await asyncio.to_thread(self.storage.close)
        if self._keylog is not None:
            self._keylog.close()

    def _spawn(self, coro: Any, *, check: bool = False) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if check:
            self._check_tasks.add(task)
            task.add_done_callback(self._check_tasks.discard)

    def _now(self) -> float:
        return time.monotonic()

    # -----------------------------------------------------------------------------------------
    # Connections

    def connect(self, address: tuple[str, int]) -> None:
        """Dial ``address`` unless it is us, banned, already connected or over the limit."""
        address = (str(address[0]), int(address[1]))
        if self._closing or address[0] in self.banned or address in self._dialling:
            return
        if (address[0] in (self.listen[0], self.bind) and address[1] == self.listen_port):
            return
        if address in self._known or len(self._protocols) + len(self._dialling) >= \
                self.max_peers:
            return
        self._dialling.add(address)
        self._spawn(self._dial(address))

    async def _dial(self, address: tuple[str, int]) -> None:
        assert self._loop is not None
        tcp_only = self.transport == "both" and self._utp_hint.get(address) is False
        if self.utp is not None and not tcp_only:
            try:
                await self.utp.connect(address, lambda: _PeerProtocol(self, address, True),
                                       timeout=UTP_CONNECT_TIMEOUT if self.transport == "both"
                                       else CONNECT_TIMEOUT)
            except (TimeoutError, OSError) as e:
                log.info("no uTP connection to %s:%s: %s", *address, e)
                if self.transport == "utp":
                    self._dialling.discard(address)
                    self._redial_later(address)
                    return
            else:
                self._dialling.discard(address)
                return
        try:
            local = (self.bind, 0) if self.bind else None
            await asyncio.wait_for(self._loop.create_connection(
                lambda: _PeerProtocol(self, address, True), address[0], address[1],
                local_addr=local), CONNECT_TIMEOUT)
        except (TimeoutError, OSError) as e:
            log.info("cannot connect to %s:%s: %s", *address, e)
            self._dialling.discard(address)
            self._redial_later(address)
        else:
            self._dialling.discard(address)

    def _redial_later(self, address: tuple[str, int]) -> None:
        """Dial again after 1, 2, 4 … 60 s, at most MAX_REDIALS times: a peer that was not
        listening yet, or that closed before its handshake (libtorrent does while it checks
        its files)."""
        attempts = self._redials.get(address, 0)
        if self._closing or attempts >= MAX_REDIALS or self._loop is None:
            return
        self._redials[address] = attempts + 1
        self._loop.call_later(min(2.0 ** attempts, 60.0), self.connect, address)

    def _connected(self, proto: _PeerProtocol) -> None:
        assert self.session is not None and proto.transport is not None
        if self._closing or (proto.address and proto.address[0] in self.banned) or (
                not proto.outgoing and not self._admit(proto)):
            proto.transport.abort()
            return
        key = self._next_key
        self._next_key += 1
        self._protocols[key] = proto
        self._keys[proto] = key
        if proto.outgoing and proto.address:
            self._known.add(proto.address)
        if self._reading_paused:
            proto.transport.pause_reading()
        log.info("connected %s %s:%s", "to" if proto.outgoing else "from", *(proto.address or
                                                                            ("?", 0)))
        self._add_layer(proto)
        utp = proto.transport.get_extra_info("transport") == "utp" or (
            proto.address is not None and self._utp_hint.get(proto.address) is True)
        self.session.add_peer(key, outgoing=proto.outgoing, address=proto.address,
                              now=self._now(), utp=utp)
        self._pump()

    def _add_layer(self, proto: _PeerProtocol) -> None:
        """MSE below the session, as :attr:`encryption` says (module docstring)."""
        assert self.session is not None
        policy = self.encryption
        if policy == "plaintext" or (proto.outgoing and proto.address in self._plaintext_peers):
            return
        if proto.outgoing:
            proto.layer = MseConnection.initiator(info_hash=self.session.info_hash,
                                                  rng=self.rng, now=self._now(),
                                                  provide=_PROVIDE[policy])
        else:
            proto.layer = MseConnection.responder(info_hashes=[self.session.info_hash],
                                                  rng=self.rng, now=self._now(),
                                                  provide=_PROVIDE[policy],
                                                  allow_legacy=policy == "prefer")
        proto.write(b"")  # an initiator's Ya + PadA

    def _admit(self, proto: _PeerProtocol) -> bool:
        """Room for an incoming connection: within the per-address limit and ``max_peers``,
        making room by evicting the oldest unauthenticated connection when there is none."""
        host = proto.address[0] if proto.address else None
        same = [p for p in self._protocols.values()
                if not p.outgoing and p.address and p.address[0] == host]
        if host is not None and len(same) >= self.max_per_address and not self._evict(same,
                                                                                     proto):
            log.info("refused %s: %d connections from that address", host, len(same))
            return False
        if len(self._protocols) >= self.max_peers and not self._evict(
                list(self._protocols.values()), proto):
            log.info("refused %s: all %d peer slots hold handshaken or recent peers", host,
                     self.max_peers)
            return False
        return True

    def _evict(self, candidates: list[_PeerProtocol], newcomer: _PeerProtocol) -> bool:
        """Close one of ``candidates`` that has not sent a valid handshake, to make room for
        ``newcomer``; False (the newcomer is refused) when none may go.

        The order: connections that have not sent even a first flight
        (:data:`FIRST_FLIGHT_BYTES`) before those that have, the oldest first. Bytes the kernel
        already holds count as sent (:meth:`_PeerProtocol.unread`): in a burst of accepts the
        loop reads no socket until the burst is handled. A connection younger than
        :attr:`eviction_grace` goes only for a newcomer that has sent a first flight while it
        has not: replacing a socket that has said nothing by another that has said nothing
        gains nothing, and under a flood it killed well-behaved peers that had connected a few
        milliseconds earlier and not written yet (the old rule, "received nothing for longest",
        picked them first: every attacker had sent its byte later)."""
        assert self.session is not None
        waiting: list[tuple[bool, float, int, _PeerProtocol]] = []
        for proto in candidates:
            key = self._keys.get(proto)
            state = self.session.peers.get(key) if key is not None else None
            if state is not None and state.conn.their_handshake is None:
                flight = proto.received >= FIRST_FLIGHT_BYTES or \
                    proto.received + proto.unread() >= FIRST_FLIGHT_BYTES
                waiting.append((flight, proto.opened, key, proto))
        if not waiting:
            return False
        waiting.sort(key=lambda item: item[:3])
        now = self._now()
        newcomer_flight: bool | None = None
        victim = None
        for flight, opened, _, proto in waiting:
            if now - opened >= self.eviction_grace:
                victim = proto
                break
            if not flight:
                if newcomer_flight is None:
                    newcomer_flight = newcomer.unread() >= FIRST_FLIGHT_BYTES
                if newcomer_flight:
                    victim = proto
                    break
        if victim is None:
            return False
        log.info("evicting %s:%s: no handshake yet, oldest of %d", *(victim.address or ("?", 0)),
                 len(waiting))
        if victim.transport is not None:
            victim.transport.abort()
        self._lost(victim)  # now, not at connection_lost: its slot is the new one's
        return True

    def _received(self, proto: _PeerProtocol, data: bytes) -> None:
        key = self._keys.get(proto)
        if key is None or self.session is None:
            return
        try:
            if proto.layer is not None:
                self._receive_through(proto, key, data)
            else:
                self.session.receive_data(key, data, self._now())
        except Exception as e:  # a bug one peer's bytes reached: drop that peer only
            log.warning("closing %s: %s: %s", proto.address, type(e).__name__, e)
            if proto.transport is not None:
                proto.transport.abort()
            self._lost(proto)
            return
        self._pump()

    def _receive_through(self, proto: _PeerProtocol, key: int, data: bytes) -> None:
        """Bytes of an MSE connection: the layer decrypts, the session gets the payload."""
        layer = proto.layer
        assert layer is not None and self.session is not None
        now = self._now()
        layer.receive_data(data, now)
        while (event := layer.next_event()) is not NEED_DATA:
            if isinstance(event, PayloadReceived):
                self.session.receive_data(key, event.data, now)
            elif isinstance(event, MseEstablished):
                log.info("%s %s:%s: MSE %s", "to" if proto.outgoing else "from",
                         *(proto.address or ("?", 0)), event.method)
                if self._keylog is not None and event.secret is not None:
                    initiator, responder = proto.endpoints()
                    self._keylog.write(KeyLogEntry(initiator=initiator, responder=responder,
                                                   info_hash=event.info_hash,
                                                   secret=event.secret, method=event.method))
        proto.write(b"")  # Yb, crypto_select, the held handshake

    def _lost(self, proto: _PeerProtocol) -> None:
        key = self._keys.pop(proto, None)
        if key is None:
            return
        self._protocols.pop(key, None)
        fallback = False
        if proto.address and proto.outgoing:
            self._known.discard(proto.address)
            state = self.session.peers.get(key) if self.session is not None else None
            fallback = (self.encryption == "prefer" and proto.layer is not None
                        and not proto.layer.established and not self._closing)
            if fallback:  # the MSE exchange failed: the same address again, in plaintext
                log.info("MSE with %s:%s failed: dialling it in plaintext", *proto.address)
                self._plaintext_peers.add(proto.address)
            elif state is not None and state.conn.their_handshake is None:
                self._redial_later(proto.address)
        if self.session is not None:
            self.session.receive_data(key, b"", self._now())
            self.session.remove_peer(key, self._now())
            self._pump()
        if fallback and proto.address is not None:
            self._spawn(self._dial_plaintext(proto.address))

    async def _dial_plaintext(self, address: tuple[str, int]) -> None:
        """Dial ``address`` again (in plaintext: it is in ``_plaintext_peers``) once the dial
        that failed is over: a connection refused right away is lost before its ``_dial``
        has even returned, while the address still counts as being dialled."""
        for _ in range(100):
            if address not in self._dialling:
                break
            await asyncio.sleep(0.01)
        self.connect(address)

    def _resume_writing(self, proto: _PeerProtocol) -> None:
        reads, proto.pending_reads = proto.pending_reads, []
        for event in reads:
            self._read_block(event)
        self._pump()

    # -----------------------------------------------------------------------------------------
    # Actions

    def _pump(self) -> None:
        """Act on the session's events and write what it wants sent."""
        session = self.session
        if session is None:
            return
        while (event := session.next_event()) is not NEED_DATA:
            if isinstance(event, BlockRequested):
                proto = self._protocols.get(event.peer)
                if proto is not None and proto.paused_writing:
                    proto.pending_reads.append(event)
                else:
                    self._read_block(event)
            elif isinstance(event, LeafHashesWanted):
                self._read_leaf_pieces(event)
            elif isinstance(event, PieceDownloaded):
                self._check_piece(event)
            elif isinstance(event, PeerClosed):
                self._close_peer(event)
            elif isinstance(event, PeersDiscovered):
                for address, utp in zip(event.addresses, event.utp or
                                        (None,) * len(event.addresses), strict=True):
                    if utp is not None:
                        if len(self._utp_hint) >= MAX_TRANSPORT_HINTS:
                            self._utp_hint.clear()
                        self._utp_hint[address] = utp
                    self.connect(address)
            elif isinstance(event, MetadataCompleted):
                self._spawn(self._metadata_received(event.metainfo))
            elif isinstance(event, PieceLayerVerified) and self.storage is not None:
                try:
                    self.storage.add_piece_layer(event.pieces_root, event.hashes)
                except P2PKitError as e:
                    self._stop(f"piece layer refused by storage: {e}")
            elif isinstance(event, DownloadStopped):
                self._stop(event.reason)
            elif isinstance(event, DhtNodeSeen) and self.dht is not None:
                self._spawn(self._dht_ping(event.address))
        for key, proto in list(self._protocols.items()):
            data = session.data_to_send(key)
            if data:
                proto.write(data)
        if session.complete and not self._complete.is_set() and not self._pending_checks:
            log.info("complete: all %d pieces verified", session.picker.piece_count)
            self._complete.set()
            if self.use_trackers and self._tracker_urls():
                self._spawn(self._announce_once("completed", timeout=TRACKER_TIMEOUT))
        self._schedule()

    def _read_block(self, event: BlockRequested) -> None:
        assert self.session is not None and self.storage is not None
        length = event.length
        # A v2 file's last piece: the part past the file's end is BEP 52 zero padding.
        inside = min(length, self.session.piece_length(event.index) - event.begin)
        try:
            data = self.storage.read(event.index, event.begin, inside) if inside > 0 else b""
            if inside < length:
                data += bytes(length - max(inside, 0))
        except P2PKitError as e:
            self.errors.append(str(e))
            log.warning("cannot read piece %d: %s", event.index, e)
            return
        self.session.block_read(event.peer, event.index, event.begin, data, self._now())

    def _read_leaf_pieces(self, event: LeafHashesWanted) -> None:
        """Read the pieces a BEP 52 leaf-hash request covers (at most 512 blocks, 8 MiB),
        inline like a block, so the ``hashes`` follow the ``piece`` they were asked after."""
        assert self.session is not None and self.storage is not None
        pieces = {}
        for index in event.pieces:
            try:
                pieces[index] = self.storage.read_piece(index)
            except P2PKitError as e:
                self.errors.append(str(e))
                log.warning("cannot read piece %d: %s", index, e)
        self.session.leaf_pieces_read(event.peer, event.request, pieces, self._now())

    def _check_piece(self, event: PieceDownloaded) -> None:
        self._pending_checks += 1
        self._pending_bytes += len(event.data)
        if self._pending_bytes >= MAX_PENDING_CHECK_BYTES and not self._reading_paused:
            self._pause_reading(True)
        self._spawn(self._verify_and_write(event), check=True)

    async def _verify_and_write(self, event: PieceDownloaded) -> None:
        storage = self.storage
        assert storage is not None
        try:
            ok = await asyncio.to_thread(_verify_and_write, storage, event.index, event.data)
        except P2PKitError as e:
            # Our disk failed, not the peers: nobody is blamed, the download stops.
            self._stop(f"cannot store piece {event.index}: {e}")
            return
        finally:
            self._pending_checks -= 1
            self._pending_bytes -= len(event.data)
        if self._reading_paused and self._pending_bytes <= MAX_PENDING_CHECK_BYTES // 2:
            self._pause_reading(False)
        if self.session is not None and not self._closing:
            self.session.piece_checked(event.index, ok, self._now())
            self._pump()

    def _pause_reading(self, pause: bool) -> None:
        self._reading_paused = pause
        for proto in self._protocols.values():
            if proto.transport is not None and not proto.transport.is_closing():
                (proto.transport.pause_reading if pause else proto.transport.resume_reading)()

    def _close_peer(self, event: PeerClosed) -> None:
        proto = self._protocols.get(event.peer)
        log.info("closing %s: %s", proto.address if proto else event.peer, event.reason)
        if event.ban and proto is not None and proto.address is not None:
            self.banned.add(proto.address[0])
        if proto is not None and proto.transport is not None:
            data = self.session.data_to_send(event.peer) if self.session else b""
            if data:
                proto.write(data)
            proto.transport.close()

    async def _metadata_received(self, metainfo: Metainfo) -> None:
        self.metainfo = metainfo
        have = await self._open_storage(metainfo)
        assert self.session is not None
        self.session.start(metainfo, have, now=self._now())
        self._pump()

    # -----------------------------------------------------------------------------------------
    # Timers

    def _schedule(self) -> None:
        if self._closing or self.session is None or self._loop is None:
            return
        when = self.session.get_timer()
        if when is None:
            return
        when = max(when, self._now())
        if self._timer is not None:
            if abs(self._timer.when() - when) < 0.05:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(when + 0.001, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is None or self._closing:
            return
        now = self._now()
        self.session.handle_timer(now)
        self._report(now)
        self._pump()

    def _report(self, now: float) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats(now))

    def stats(self, now: float | None = None) -> ClientStats:
        """Progress figures; rates over the last few seconds."""
        now = self._now() if now is None else now
        session = self.session
        assert session is not None
        down = sum(s.conn.downloaded for s in session.peers.values())
        up = sum(s.conn.uploaded for s in session.peers.values())
        self._rates.append((now, down, up))
        self._rates = [r for r in self._rates if r[0] >= now - 5.0]
        t0, d0, u0 = self._rates[0]
        span = max(now - t0, 1e-9)
        picker = session.picker
        total = self.metainfo.total_length if self.metainfo else 0
        return ClientStats(
            verified=session.verified_bytes, total=total,
            pieces_have=picker.have_count if picker else 0,
            pieces_total=picker.piece_count if picker else 0, peers=len(session.peers),
            download_rate=max(down - d0, 0) / span if now > t0 else 0.0,
            upload_rate=max(up - u0, 0) / span if now > t0 else 0.0,
            failed_pieces=session.failed_pieces, complete=session.complete)

    # -----------------------------------------------------------------------------------------
    # DHT (BEP 5)

    async def _start_dht(self) -> None:
        from p2pkit.dht.server import DhtServer

        host = self.bind or self.listen[0]
        port = self.dht_port if self.dht_port is not None else self.listen_port
        self.dht = await DhtServer.start(host, port, rng=self.rng)
        assert self.session is not None
        self.session.dht_port = self.dht.address[1]

    async def _start_utp(self) -> None:
        """uTP (BEP 29) on the DHT node's socket when it has the listening port, else on a
        socket of its own with the listening port's number."""
        host = self.bind or self.listen[0]
        dht = self.dht
        if dht is not None and (self.listen_port in (0, dht.address[1])):
            self.listen_port = dht.address[1]
            self.utp = UtpEndpoint(dht.sendto, dht.address, rng=self.rng,
                                   on_accept=self._utp_accepted)
            utp = self.utp

            def other(data: bytes, addr: tuple[str, int]) -> None:
                if looks_like_utp(data):
                    utp.datagram_received(data, addr)

            dht.on_other_datagram = other
        else:
            for attempt in range(PORT_PAIR_ATTEMPTS):
                try:
                    self.utp = await UtpEndpoint.bind(host, self.listen_port, rng=self.rng,
                                                      mtu=self.utp_mtu,
                                                      on_accept=self._utp_accepted)
                    break
                except OSError as e:
                    # port 0 asked: the TCP port the system chose may be taken over UDP; take
                    # another pair rather than fail (a port given explicitly fails at once)
                    if (e.errno != errno.EADDRINUSE or self.listen[1] != 0 or self._server is None
                            or attempt == PORT_PAIR_ATTEMPTS - 1):
                        raise
                    self._server.close()
                    await self._server.wait_closed()
                    self._server = await self._loop.create_server(
                        lambda: _PeerProtocol(self, None, False), host, 0)
                    defer_accept(self._server)  # BEP 3: the initiator speaks first
                    self.listen_port = self._server.sockets[0].getsockname()[1]
            self.listen_port = self.utp.address[1]

    def _utp_accepted(self, stream: UtpStream) -> None:
        """An incoming uTP connection: the same protocol object as an incoming TCP one."""
        proto = _PeerProtocol(self, None, False)
        stream.set_protocol(proto)
        proto.connection_made(stream)

    async def _dht_ping(self, address: tuple[str, int]) -> None:
        with contextlib.suppress(P2PKitError, OSError, TimeoutError):
            await self.dht.ping(address, timeout=10.0)

    async def _dht_loop(self) -> None:
        """Join through the bootstrap nodes, then look for peers (``get_peers``) and announce
        ourselves (``announce_peer``) every few minutes; sooner while nobody was found."""
        assert self.session is not None
        info_hash = self.session.info_hash
        if self.dht_bootstrap:
            with contextlib.suppress(P2PKitError, OSError, TimeoutError):
                await self.dht.bootstrap(self.dht_bootstrap, timeout=30.0)
        while not self._closing:
            found = 0
            try:
                done = await self.dht.get_peers(info_hash, timeout=60.0)
                found = len(done.peers)
                for peer in done.peers:
                    self.connect(peer)
                await self.dht.announce_peer(info_hash, self.listen_port, timeout=60.0)
            except (P2PKitError, OSError, TimeoutError) as e:
                log.info("dht: %s", e)
            await asyncio.sleep(DHT_INTERVAL if found else DHT_RETRY)

    # -----------------------------------------------------------------------------------------
    # Trackers

    def _tracker_urls(self) -> list[list[str]]:
        if self.metainfo is not None and self.metainfo.trackers:
            return [list(t) for t in self.metainfo.trackers]
        if self.magnet is not None and self.magnet.trackers:
            return [[t] for t in self.magnet.trackers]
        return []

    async def _announce_loop(self) -> None:
        event = "started"
        while not self._closing:
            interval = DEFAULT_INTERVAL
            try:
                result = await self._announce_once(event, timeout=TRACKER_TIMEOUT)
                interval = max(result.interval, 10)
                event = ""
            except (TrackerError, P2PKitError) as e:
                log.warning("tracker: %s", e)
                interval = 60
            await asyncio.sleep(interval)

    async def _announce_once(self, event: str, *, timeout: float) -> Any:
        assert self.session is not None
        if not hasattr(self, "_tiers"):
            self._tiers = TrackerTiers(self._tracker_urls(), rng=self.rng)
        request = Announce(info_hash=self.session.info_hash, peer_id=self.peer_id,
                           port=self.listen_port, uploaded=self.session.uploaded_bytes,
                           downloaded=self.session.verified_bytes, left=self.session.left()
                           if self.session.picker else 1, event=event,
                           numwant=None if event == "stopped" else 50,
                           key=int.from_bytes(self.peer_id[-4:], "big"))
        _, result = await self.tracker_client.announce_tiers(self._tiers, request,
                                                             timeout=timeout)
        if event != "stopped":
            for peer in result.peers:
                self.connect((peer.host, peer.port))
        return result



def _verify_and_write(storage: Storage, index: int, data: bytearray) -> bool:
    """Worker thread: hash-check the piece and, only if it is good, write it."""
    if not storage.verify(index, data):
        return False
    storage.write(index, data)
    return True

