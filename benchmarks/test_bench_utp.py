"""uTP (BEP 29) against TCP: a p2pkit-to-p2pkit download on loopback with ``transport="tcp"``
against ``"utp"``, and the socket core alone on the in-memory network.

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_utp.py \
        --benchmark-only --benchmark-columns=min,median,rounds

Two TorrentClients in one process on 127.0.0.1, plaintext, a 32 MiB single-file torrent in
256 KiB pieces (``P2PKIT_BENCH_UTP_MB`` overrides the size); ``utp/interface`` lets uTP's path
MTU search go up to the interface's MTU (``utp_mtu="interface"``). Two processes and loss:
``benchmarks/utp_transfer.py``. No timing asserts: figures in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil

import pytest

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.utp.events import DataReceived
from p2pkit.bittorrent.utp.multiplexer import UtpMultiplexer
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.core import DatagramEndpoint, MemoryNetwork

SIZE_MB = int(os.environ.get("P2PKIT_BENCH_UTP_MB", "32"))


@pytest.fixture(scope="module")
def torrent(tmp_path_factory):
    root = tmp_path_factory.mktemp("utp-bench")
    data = root / "seed" / "blob.bin"
    data.parent.mkdir()
    with data.open("wb") as out:
        for i in range(SIZE_MB):
            out.write(hashlib.shake_256(b"%d" % i).digest(1 << 20))
    meta = Metainfo.parse(create_torrent(data, piece_length=262144))
    return meta, root


async def _download(meta, root, transport):
    transport, _, utp_mtu = transport.partition("/")
    utp_mtu = utp_mtu or "ethernet"
    leech = root / "leech"
    shutil.rmtree(leech, ignore_errors=True)
    seeder = TorrentClient(meta, root / "seed", listen=("127.0.0.1", 0), trackers=False,
                           encryption="plaintext", transport=transport, utp_mtu=utp_mtu)
    await seeder.start()
    leecher = TorrentClient(meta, leech, listen=("127.0.0.1", 0), trackers=False,
                            encryption="plaintext", transport=transport, utp_mtu=utp_mtu,
                            peers=[("127.0.0.1", seeder.listen_port)])
    await leecher.start()
    try:
        await asyncio.wait_for(leecher.wait_complete(), 300)
    finally:
        await leecher.close()
        await seeder.close()
    assert leecher.session.complete


@pytest.mark.parametrize("transport", ["tcp", "utp", "utp/interface"])
def test_download(benchmark, torrent, transport):
    meta, root = torrent
    benchmark.pedantic(lambda: asyncio.run(_download(meta, root, transport)), rounds=3,
                       iterations=1)
    benchmark.extra_info["MB_per_s"] = SIZE_MB * 1048576 / benchmark.stats["median"] / 1e6


def _core_transfer(size: int) -> None:
    net = MemoryNetwork(seed=1, latency=(0.001, 0.001))
    a, b = UtpMultiplexer(rng=random.Random(1)), UtpMultiplexer(rng=random.Random(2))
    got = [0]

    def on_b(event):
        if isinstance(event, DataReceived):
            got[0] += len(event.data)

    end_a = DatagramEndpoint(net, ("10.0.0.1", 1), a)
    DatagramEndpoint(net, ("10.0.0.2", 1), b, on_b)
    key = a.connect(("10.0.0.2", 1), now=0.0)
    a.send(key, bytes(size))
    end_a.pump()
    net.run(stop=lambda: got[0] == size)
    assert got[0] == size


def test_core_on_memory_network(benchmark):
    """4 MiB through two cores (every datagram built and parsed), no sockets."""
    benchmark.pedantic(_core_transfer, args=(4 << 20,), rounds=3, iterations=1)
