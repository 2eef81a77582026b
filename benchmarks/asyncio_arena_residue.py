"""Does a burst of asyncio tasks leave obmalloc arenas behind, without p2pkit? (issue 13)

The Gnutella servent's RSS after a hostile soak stays a few MB above its baseline although
no Python object of the attack is left (``servent_memory_probe.py --census``): what stays is
obmalloc arenas (1 MiB each) that CPython keeps while any block in them is in use. This
script reproduces that with asyncio alone: ``--concurrent`` tasks at a time, each awaiting a
future, ``--rounds`` times, then ``gc.collect()``; it prints the arenas and the RSS before,
at the peak and after::

    /work/venv/bin/python benchmarks/asyncio_arena_residue.py --concurrent 300 --rounds 100
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile


def arenas() -> int:
    """obmalloc arenas allocated now (``sys._debugmallocstats``, which writes to fd 2)."""
    with tempfile.TemporaryFile() as f:
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode()
    return int(re.search(r"# arenas allocated current\s*=\s*(\d+)", text).group(1))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))


async def _round(concurrent: int) -> tuple[int, int]:
    """``concurrent`` tasks, each awaiting a future, all woken; (arenas, RSS) at their peak."""
    loop = asyncio.get_running_loop()

    async def waiter(future: asyncio.Future) -> None:
        await future

    futures = [loop.create_future() for _ in range(concurrent)]
    tasks = [asyncio.ensure_future(waiter(f)) for f in futures]
    await asyncio.sleep(0)
    peak = (arenas(), rss_kib())
    for f in futures:
        f.set_result(None)
    await asyncio.wait(tasks)
    return peak


async def burst(concurrent: int, rounds: int, cycle: bool) -> dict:
    gc.collect()
    figures = {"before": (arenas(), rss_kib())}
    figures["peak"] = max([await _round(concurrent) for _ in range(rounds)])
    await asyncio.sleep(0)
    gc.collect()
    figures["after"] = (arenas(), rss_kib())
    if cycle:
        cycle_future_iter_freelist()
        figures["after FutureIter freelist cycled"] = (arenas(), rss_kib())
    return {k: {"arenas": a, "rss_anon_kib": r} for k, (a, r) in figures.items()}


def cycle_future_iter_freelist(size: int = 300) -> None:
    """Free for real the blocks kept in ``_asyncio``'s FutureIter free list (255 entries in
    CPython 3.11, one per ``await`` of a future; they stay allocated, wherever the burst put
    them): take them out, put as many fresh ones in, then free the old ones (the list is
    full)."""
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(2 * size)]
    old = [f.__await__() for f in futures[:size]]
    fresh = [f.__await__() for f in futures[size:]]
    del fresh
    del old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrent", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--cycle", action="store_true",
                        help="then cycle the FutureIter free list and count again")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(burst(args.concurrent, args.rounds, args.cycle))))


if __name__ == "__main__":
    main()
