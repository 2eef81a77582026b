"""The servent's memory comes back after a hostile churn (issue 13): the low-water-mark trim
(:mod:`p2pkit.gnutella.heap_trim`) in memory, then a real ``gnutella serve`` process whose RSS
is read from ``/proc`` before and after hundreds of leaves and ultrapeers that complete their
handshake (each one a deflater and a discovery ping) and send a QRP RESET too big (Bye 400)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.heap_trim import HeapTrimmer, malloc_trim
from p2pkit.gnutella.qrp import MAX_TABLE_LENGTH
from p2pkit.gnutella.servent import MAX_CONNECTIONS_PER_ADDRESS, MAX_LEAVES, Servent
from tests.cli.test_servers_stop import _wait_for

ROOT = Path(__file__).parents[2]
HUGE_RESET = Descriptor.build(dict(guid=b"R" * 16, type="route_table_update", ttl=1, hops=0,
                                   variant="reset", table_length=MAX_TABLE_LENGTH * 256,
                                   infinity=7))


def test_trims_once_the_burst_is_over_and_not_during_it():
    trims = []
    trimmer = HeapTrimmer(trim=lambda: trims.append(True) or True)
    live = [*range(0, 200, 10), 150, 120, 80, 51]  # up to 190, then down to 51 (above 47.5)
    assert not any(trimmer.note(n, t * 0.1) for t, n in enumerate(live))
    assert trimmer.note(47, 3.0) and trimmer.trims == 1 and trimmer.peak == 47
    assert not trimmer.note(0, 3.5)  # the peak is 47 now: a quarter of it is 11, but too soon
    assert trimmer.note(0, 8.0)  # MIN_TRIM_INTERVAL later
    assert not trimmer.note(5, 9.0) and not trimmer.note(0, 20.0)  # a small peak: no trim
    assert len(trims) == 2


def test_a_trim_refused_for_being_too_soon_is_owed_until_it_is_done():
    """The end of a burst: its first closes trim at the low-water mark, its last ones close
    within a second; without the owed trim the heap they freed stayed until the next burst
    (the servent's RSS +1.1 MB after the probe's recovery, given back by a manual trim)."""
    trims = []
    trimmer = HeapTrimmer(trim=lambda: trims.append(True) or True)
    for live in range(300, 74, -1):
        trimmer.note(live, 10.0)
    assert trims == [True] and trimmer.retry_at is None  # at 75 = 300 / 4
    for live in range(74, -1, -1):
        assert not trimmer.note(live, 10.5)
    assert trimmer.retry_at == 15.0  # 75 closed since the trim, 0 live: owed
    assert trimmer.note(0, 15.0) and len(trims) == 2 and trimmer.retry_at is None
    trimmer.note(40, 16.0)
    trimmer.note(0, 17.0)  # 40 closed but too soon: owed
    trimmer.note(60, 18.0)  # a new burst before the retry: no longer owed
    assert trimmer.retry_at is None and not trimmer.note(60, 20.0)


def test_malloc_trim_runs_here():
    assert malloc_trim() in (True, False)  # glibc here; elsewhere it does nothing


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def _hostile_peer(port: int, source: str, seed: int, role: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        conn = Servent(role=role, rng=random.Random(seed)).connect("up", 0.0)
        writer.write(conn.data_to_send())
        while conn.state != cs.ESTABLISHED:
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                return
            conn.receive_data(data, 0.0)
            writer.write(conn.data_to_send())
        writer.write(HUGE_RESET)
        await asyncio.wait_for(reader.read(65536), 5)  # the Bye 400 (or the ping before it)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.transport.abort()


async def _rounds(port: int, rounds: int, seed: int) -> None:
    """``rounds`` times, MAX_LEAVES - 2 leaves and as many ultrapeers at once, at most
    MAX_CONNECTIONS_PER_ADDRESS - 1 from each of 127.0.0.2, 127.0.0.3, … (loopback: any
    127/8 address is ours)."""
    per_address = MAX_CONNECTIONS_PER_ADDRESS - 1
    roles = ["leaf", "ultrapeer"] * (MAX_LEAVES - 2)
    for r in range(rounds):
        await asyncio.gather(*(
            _hostile_peer(port, f"127.0.0.{2 + i // per_address}", seed + r * 100 + i, role)
            for i, role in enumerate(roles)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_rss_returns_near_its_baseline_after_a_hostile_churn(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "gnutella", "serve", "--ultrapeer",
                             "--listen", "127.0.0.1:0", "--duration", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        seen: list[str] = []
        _wait_for(proc, "on 127.0.0.1:", seen)
        port = int(re.search(r"on 127\.0\.0\.1:(\d+)", "".join(seen)).group(1))
        asyncio.run(_rounds(port, 2, seed=0))  # warm-up: lazily built tables, first arenas
        time.sleep(0.5)
        baseline = _rss_kib(proc.pid)
        started = time.monotonic()
        asyncio.run(_rounds(port, 12, seed=10_000))
        took = time.monotonic() - started
        time.sleep(0.5)
        after = _rss_kib(proc.pid)
        # 672 hostile handshakes, 56 at once. Before (zlib's default state of 262 KiB per
        # deflated link, a 600 s route per discovery ping, no trim): +11.0 and +18.6 MB in two
        # runs. After: +1.1 and +1.5 MB (+1.8 MB with the trim turned off).
        assert after - baseline < 4 * 1024, (baseline, after, took)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
