"""Exercise of chapter 11: the learner's block reader, graded by the conformance suite.

The learner writes ``read_block(content, piece_length, index, begin, length)``, the one line
chapter 11's buggy peer gets wrong. The checker plugs it into a seed (:class:`LearnerSeed`, a
:class:`~p2pkit.bittorrent.peer.session.TorrentSession` on 127.0.0.1, port chosen by the
system, closed at the end) and runs the BEP 3 cases that request data
(``bittorrent/bep3/request/*`` and ``bittorrent/bep3/piece/*`` that read blocks) against it with
:func:`~p2pkit.conformance.stream_runner.run_stream_cases`: the verdicts are the suite's.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from p2pkit.bittorrent.peer.session import BlockRequested, PeerClosed, TorrentSession
from p2pkit.bittorrent.wire.create import create_from_contents
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.conformance import catalog
from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
from p2pkit.conformance.runner import RunReport
from p2pkit.conformance.stream_runner import run_stream_cases
from p2pkit.core import NEED_DATA
from p2pkit.tutorial.exercise import Exercise, ExerciseFailed

__all__ = ["EXERCISES", "LearnerSeed", "READ_CASES"]

#: The cases whose verdict depends on the bytes a seed reads for a request (BEP 3 §request,
#: §piece); the refusals of bad requests are the session's job, not the learner's function.
READ_CASES = ("bittorrent/bep3/request/first-block", "bittorrent/bep3/request/last-block",
              "bittorrent/bep3/request/pipelined", "bittorrent/bep3/piece/first-piece-data",
              "bittorrent/bep3/piece/last-piece-data", "bittorrent/bep3/piece/within-torrent")
ReadBlock = Callable[[bytes, int, int, int, int], bytes]


class LearnerSeed:
    """Chapter 11's seed: serves ``content`` on 127.0.0.1, reading blocks with ``read_block``."""

    def __init__(self, content: bytes, torrent: bytes, read_block: ReadBlock) -> None:
        self.content, self.meta, self.read_block = content, Metainfo.parse(torrent), read_block
        self.session = TorrentSession(peer_id=b"-CO0001-learnerpeer!", metainfo=self.meta,
                                      have=bytearray([1]) * self.meta.piece_count,
                                      rng=random.Random(1))
        self.writers: dict[object, asyncio.StreamWriter] = {}
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.writers[peer] = writer
        self.session.add_peer(peer, outgoing=False, now=time.monotonic())
        try:
            self._pump()
            while (data := await reader.read(65536)) and peer in self.session.peers:
                self.session.receive_data(peer, data, time.monotonic())
                self._pump()
        except Exception:  # noqa: BLE001 - the learner's function may raise anything: drop
            pass
        finally:
            if peer in self.session.peers:
                self.session.remove_peer(peer, time.monotonic())
            self.writers.pop(peer, None)
            writer.close()

    def _pump(self) -> None:
        s, now = self.session, time.monotonic()
        while (event := s.next_event()) is not NEED_DATA:
            if isinstance(event, BlockRequested):
                block = bytes(self.read_block(self.content, self.meta.piece_length,
                                              event.index, event.begin, event.length))
                s.block_read(event.peer, event.index, event.begin, block, now)
            elif isinstance(event, PeerClosed) and event.peer in self.writers:
                self.writers[event.peer].close()
        for peer, writer in list(self.writers.items()):
            if peer in s.peers and (data := s.data_to_send(peer)):
                writer.write(data)

    async def close(self) -> None:
        self.server.close()
        for writer in list(self.writers.values()):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2.0)


async def grade(read_block: ReadBlock) -> RunReport:
    """Chapter 11's torrent (10 pieces of 32 KiB, the last one short) seeded with
    ``read_block`` and graded by :data:`READ_CASES`."""
    content = random.Random(11).randbytes(300_001)
    torrent = create_from_contents("course-album.bin", content, piece_length=32768)
    cases = [c for c in catalog("bittorrent") if c.id in READ_CASES]
    seed = LearnerSeed(content, torrent, read_block)
    await seed.start()
    try:
        return await run_stream_cases(cases, ("127.0.0.1", seed.port),
                                      BitTorrentWire(TorrentFacts.from_torrent(torrent)),
                                      rng=random.Random(1), timeout=2.0, silence=0.15)
    finally:
        await seed.close()


def _check_read_block(read_block: ReadBlock) -> None:
    read_block(bytes(64), 32, 0, 0, 16)  # NotImplementedError says "not written yet" at once
    report = asyncio.run(grade(read_block))
    if len(report.results) != len(READ_CASES):
        raise ExerciseFailed(f"the suite ran {len(report.results)} of {len(READ_CASES)} cases")
    failed = [r for r in report.results if r.verdict != "pass"]
    if failed:
        raise ExerciseFailed(
            f"the conformance suite graded a seed using your read_block: {len(failed)} of "
            f"{len(report.results)} cases did not pass: " + "; ".join(
                f"{r.case.id}: {r.verdict}{' (' + r.reason + ')' if r.reason else ''}"
                for r in failed[:3]))


EXERCISES: dict[int, list[Exercise]] = {
    11: [Exercise(11, 4, "read_block", "the bytes a seed sends for a request",
                  "index counts pieces of piece_length bytes and begin is an offset inside the "
                  "piece (BEP 3 §request): the block starts at index * piece_length + begin; "
                  "return content[start:start + length]", _check_read_block)],
}
