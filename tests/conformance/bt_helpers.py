"""Run the BitTorrent peer-wire suite against p2pkit's own seeder, in-process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from pathlib import Path

from p2pkit.bittorrent.peer.client import TorrentClient
from p2pkit.bittorrent.wire.create import create_from_contents
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.conformance import catalog
from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
from p2pkit.conformance.case import Case
from p2pkit.conformance.runner import RunReport
from p2pkit.conformance.stream_runner import run_stream_cases

#: Silence windows on loopback against an in-process peer can be short.
SILENCE = 0.15
#: 11 pieces of 32 KiB, the last one short: spare bits in the bitfield, a short last block,
#: files of more than two pieces for BEP 52, 2 metadata pieces… (``version`` picks v1, v2 or
#: hybrid).
CONTENTS = {"album/one.bin": 150_001, "album/two.bin": 180_000, "album/three.txt": 5}


def write_torrent(root: Path, version: str = "hybrid", seed: int = 5) -> bytes:
    """The test torrent's content under ``root`` and its .torrent bytes."""
    rng = random.Random(seed)
    contents = {name.partition("/")[2]: rng.randbytes(size) for name, size in CONTENTS.items()}
    for name, data in contents.items():
        path = root / "album" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return create_from_contents("album", contents, version=version, piece_length=32768)


async def _run(root: Path, cases: Iterable[Case] | None, version: str,
               **options: object) -> RunReport:
    torrent = write_torrent(root, version)
    meta = Metainfo.parse(torrent)
    client = TorrentClient(meta, root, listen=("127.0.0.1", 0), trackers=False,
                           rng=random.Random(3))
    await client.start()
    try:
        options.setdefault("timeout", 2.0)
        options.setdefault("silence", SILENCE)
        return await run_stream_cases(
            catalog("bittorrent") if cases is None else cases,
            ("127.0.0.1", client.listen_port), BitTorrentWire(TorrentFacts.from_torrent(torrent)),
            rng=random.Random(11), **options)
    finally:
        await client.close()


def run_against_own_seeder(root: Path, cases: Iterable[Case] | None = None, *,
                           version: str = "hybrid", **options: object) -> RunReport:
    """The catalog (or ``cases``) against a fresh p2pkit seeder of the test torrent."""
    return asyncio.run(_run(root, cases, version, **options))
