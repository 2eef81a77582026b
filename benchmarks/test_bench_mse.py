"""MSE/PE's cost (MSE (Vuze wiki)): a p2pkit-to-p2pkit download on loopback with
``encryption="plaintext"`` against ``"require"`` (RC4 both ways), and the layer alone.

    python -m pytest -o addopts="" -p no:cacheprovider benchmarks/test_bench_mse.py \
        --benchmark-only --benchmark-columns=min,median,rounds

Two TorrentClients in one process on 127.0.0.1 (as tests/bittorrent/peer/test_client.py), a
64 MiB single-file torrent in 256 KiB pieces (``P2PKIT_BENCH_MSE_MB`` overrides the size).
No timing asserts: the figures are recorded in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil

import pytest

from p2pkit.bittorrent.mse.connection import MseConnection, events
from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo

SIZE_MB = int(os.environ.get("P2PKIT_BENCH_MSE_MB", "64"))


@pytest.fixture(scope="module")
def torrent(tmp_path_factory):
    root = tmp_path_factory.mktemp("mse-bench")
    data = root / "seed" / "blob.bin"
    data.parent.mkdir()
    with data.open("wb") as out:
        for i in range(SIZE_MB):
            out.write(hashlib.shake_256(b"%d" % i).digest(1 << 20))
    meta = Metainfo.parse(create_torrent(data, piece_length=262144))
    return meta, root


async def _download(meta, root, encryption: str) -> None:
    leech = root / "leech"
    shutil.rmtree(leech, ignore_errors=True)
    seeder = TorrentClient(meta, root / "seed", listen=("127.0.0.1", 0), trackers=False,
                           encryption=encryption)
    await seeder.start()
    leecher = TorrentClient(meta, leech, listen=("127.0.0.1", 0), trackers=False,
                            peers=[("127.0.0.1", seeder.listen_port)], encryption=encryption)
    await leecher.start()
    try:
        await asyncio.wait_for(leecher.wait_complete(), 300)
    finally:
        await leecher.close()
        await seeder.close()
    assert leecher.session.complete


@pytest.mark.parametrize("encryption", ["plaintext", "require"])
def test_loopback_download(benchmark, torrent, encryption):
    meta, root = torrent
    benchmark.pedantic(lambda: asyncio.run(_download(meta, root, encryption)), rounds=3,
                       iterations=1)
    benchmark.extra_info["size_mb"] = SIZE_MB
    benchmark.extra_info["mb_per_s"] = round(SIZE_MB * 1.048576 / benchmark.stats["min"], 1)


def test_rc4_layer_alone(benchmark):
    """16 MiB of payload through an established RC4 pair, in 16 KiB writes (both ends)."""
    ih = bytes(20)
    a = MseConnection.initiator(info_hash=ih, rng=random.Random(1), now=0.0, provide=0x02)
    b = MseConnection.responder(info_hashes=[ih], rng=random.Random(2), now=0.0, provide=0x02)
    a.send_payload(b"x")
    for _ in range(3):
        b.receive_data(a.data_to_send(), 0.0)
        a.receive_data(b.data_to_send(), 0.0)
    events(b)  # MseEstablished and the first payload
    block = bytes(16384)

    def run():
        for _ in range(1024):
            a.send_payload(block)
            b.receive_data(a.data_to_send(), 0.0)
        assert sum(len(e.data) for e in events(b)) == 1024 * len(block)

    benchmark(run)
    benchmark.extra_info["mb_per_s"] = round(16 * 1.048576 / benchmark.stats["min"], 1)
