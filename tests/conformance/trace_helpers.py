"""p2pkit's own peers on 127.0.0.1 as the targets of replayed traces, one per protocol."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from p2pkit.capture.dissect import dissect
from p2pkit.conformance.runner import RunReport
from p2pkit.conformance.trace_replay import load_trace, replay, shipped_traces

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = DATA / "captures"
PACKAGE_DATA = Path(__file__).resolve().parents[2] / "p2pkit" / "data"
#: Info-hash (as in the handshake) -> the torrent a BitTorrent trace needs its target to seed
#: and the capture holding its content (the lab's .torrent files are p2pkit's package data).
TORRENTS = {
    "8e3f4515b630cdb09dfc315577611036fc7ac773": (
        PACKAGE_DATA / "libtorrent-magnet-pex.torrent",
        CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"),
    "53a4c27da212ea02bba649b6bc62c681e0ba1a49": (
        PACKAGE_DATA / "libtorrent-v2.torrent", CAPTURES / "bt-05-libtorrent-v2-magnet.pcap"),
}


def shipped(protocol: str) -> list[Path]:
    return [p for p in shipped_traces() if load_trace(p).manifest.protocol == protocol]


def content_from_capture(capture: Path, torrent: bytes, root: Path) -> None:
    """Write the torrent's files under ``root`` from the ``piece`` messages the capture holds
    (the dissector's decoded blocks), so p2pkit's seeder serves what libtorrent served."""
    from p2pkit.bittorrent.wire.metainfo import Metainfo

    meta = Metainfo.parse(torrent)
    data = bytearray(meta.total_length)
    for record in dissect(capture):
        if record.protocol == "bittorrent" and record.message == "piece":
            value = record.value
            start = value.index * meta.piece_length + value.begin
            data[start:start + len(value.piece)] = value.piece
    for f in meta.files:
        path = root.joinpath(meta.name, *f.path) if meta.multi_file else root.joinpath(*f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(data[f.offset:f.offset + f.length]))


@contextlib.asynccontextmanager
async def own_target(protocol: str, tmp_path: Path | None = None,
                     info_hash: str | None = None) -> AsyncIterator[Any]:
    """A fresh p2pkit peer for ``protocol``'s traces (a seeder of the torrent ``info_hash``);
    yields its (host, port)."""
    if protocol == "dht":
        from p2pkit.dht.server import DhtServer

        server = await DhtServer.start("127.0.0.1", 0, rng=random.Random(7))
        try:
            yield server.address
        finally:
            server.close()
    elif protocol == "tracker":
        from p2pkit.bittorrent.tracker.core import TrackerCore
        from p2pkit.bittorrent.tracker.server import TrackerServer

        server = TrackerServer(TrackerCore(rng=random.Random(7)))
        await server.start(host="127.0.0.1", http_port=0, udp_port=0)
        try:
            yield ("127.0.0.1", server.udp_port)
        finally:
            await server.close()
    elif protocol == "gnutella":
        from p2pkit.gnutella.server import GnutellaServer

        server = GnutellaServer(ultrapeer=True, seed=1)
        await server.start()
        try:
            yield ("127.0.0.1", server.port)
        finally:
            await server.close()
    elif protocol == "bittorrent":
        from p2pkit.bittorrent.peer.client import TorrentClient
        from p2pkit.bittorrent.wire.metainfo import Metainfo

        torrent_path, capture = TORRENTS[info_hash]
        torrent = torrent_path.read_bytes()
        content_from_capture(capture, torrent, tmp_path)
        client = TorrentClient(Metainfo.parse(torrent), tmp_path, listen=("127.0.0.1", 0),
                               trackers=False, rng=random.Random(3))
        await client.start()
        try:
            yield ("127.0.0.1", client.listen_port)
        finally:
            await client.close()
    else:
        raise ValueError(protocol)


def replay_against_own(protocol: str, traces: Iterable[Path], tmp_path: Path | None = None,
                       **options: Any) -> RunReport:
    """Replay trace directories against a fresh p2pkit peer of ``protocol``."""
    traces = [load_trace(t) for t in traces]
    info_hash = traces[0].manifest.info_hash

    async def run() -> RunReport:
        async with own_target(protocol, tmp_path, info_hash) as address:
            options.setdefault("timeout", 2.0)
            options.setdefault("rng", random.Random(5))
            return await replay(traces, address, **options)
    return asyncio.run(run())


def verdicts(report: RunReport) -> dict[str, str]:
    return {r.case.id: r.verdict for r in report.results}


def reasons(report: RunReport) -> dict[str, str]:
    return {r.case.id: r.reason for r in report.results}
