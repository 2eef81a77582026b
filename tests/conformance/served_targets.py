"""p2pkit's four servers on 127.0.0.1 (a DHT node, a tracker over HTTP and UDP, a seeder of the
test torrent, a Gnutella ultrapeer), served from one thread's event loop so CLI subprocesses
and pytest runs in the test can reach them all: the targets of tests/conformance/
test_bad_input.py (each one is also the wrong protocol for the others)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.tracker.core import TrackerCore
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.dht.server import DhtServer
from p2pkit.gnutella.server import GnutellaServer
from tests.conformance.bt_helpers import write_torrent


@dataclass(frozen=True)
class Targets:
    """Where each server listens (``HOST:PORT``; the tracker's URLs) and the torrent seeded."""

    dht: str
    tracker_http: str
    tracker_udp: str
    bittorrent: str
    gnutella: str
    torrent: Path


@contextlib.contextmanager
def served(root: Path, host: str = "127.0.0.1", ports: dict[str, int] | None = None
           ) -> Iterator[Targets]:
    """The four servers on ``host`` until the block ends, each on its port of ``ports``
    (``dht``, ``tracker`` for HTTP and UDP, ``bittorrent``, ``gnutella``; missing: any free
    port). ``root`` receives the seeded torrent (``root/hybrid.torrent``) and its content."""
    ports = ports or {}
    torrent = root / "hybrid.torrent"
    torrent.write_bytes(write_torrent(root, "hybrid"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    closers = []

    def call(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    async def close_all() -> None:
        for close in reversed(closers):
            result = close()
            if asyncio.iscoroutine(result):
                await result

    try:
        dht = call(DhtServer.start(host, ports.get("dht", 0), rng=random.Random(7)))
        closers.append(dht.close)
        tracker = TrackerServer(TrackerCore(rng=random.Random(7)))
        call(tracker.start(host=host, http_port=ports.get("tracker", 0),
                           udp_port=ports.get("tracker", 0)))
        closers.append(tracker.close)
        client = TorrentClient(Metainfo.parse(torrent.read_bytes()), root,
                               listen=(host, ports.get("bittorrent", 0)), trackers=False,
                               rng=random.Random(3),
                               # TCP only: the harness speaks TCP, and uTP would want the UDP
                               # port the DHT node holds (both on 6881 in the plugin test)
                               transport="tcp")
        call(client.start())
        closers.append(client.close)
        servent = GnutellaServer(host=host, port=ports.get("gnutella", 0), ultrapeer=True,
                                 seed=7)
        call(servent.start())
        closers.append(servent.close)
        yield Targets(dht=f"{host}:{dht.address[1]}",
                      tracker_http=f"http://{host}:{tracker.http_port}/announce",
                      tracker_udp=f"udp://{host}:{tracker.udp_port}",
                      bittorrent=f"{host}:{client.listen_port}",
                      gnutella=f"{host}:{servent.port}", torrent=torrent)
    finally:
        with contextlib.suppress(Exception):
            call(close_all())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
