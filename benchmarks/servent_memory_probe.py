"""Where the Gnutella servent's memory goes during a hostile soak, and whether it comes back
(issue 13; results in docs/guide/hostile-peers.md).

Runs ``gnutella serve --ultrapeer`` (as ``benchmarks/hostile_soak.py`` does) in a process that
answers SIGUSR1 by appending one JSON line of memory figures to ``--out``: ``/proc/self/status``
(VmRSS, RssAnon, RssFile, Threads), glibc's ``mallinfo2()`` (C heap size, in use, free), the obmalloc
figures of ``sys._debugmallocstats()`` (arenas, bytes in allocated blocks) and, with
``--trace N``, tracemalloc's traced memory and its 15 biggest differences from the first
snapshot; SIGUSR2 calls ``malloc_trim(0)`` first. The driver takes the figures after a quiet
phase, after an attack phase (the soak's attacker process), after a recovery phase plus
12 s (and, with ``--settle S``, S seconds later), then once more after ``malloc_trim``. The
figures also count the live Python objects by type (``gc``), and list the objects alive that
were not at the first figures (``new_objects``: with ``--trace``, where they were allocated). Inside ``unshare -n`` only::

    unshare -n sh -c 'ip link set lo up && exec timeout 300 /work/venv/bin/python \\
        benchmarks/servent_memory_probe.py --attack 40 --quiet 15 --out probe.jsonl'
"""

from __future__ import annotations

import argparse
import array
import asyncio
import bisect
import ctypes
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _census(row: dict, first: dict) -> None:
    """Live Python objects by type, and those alive now that were not at the first figures
    (with tracemalloc, where they were allocated). It allocates a dict of every object: the
    figures taken after it are disturbed by it (``--census`` only)."""
    gc.collect()
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    reachable = {id(o): o for o in objects}  # and what they hold (str, bytes, int, float)
    for o in objects:
        for r in gc.get_referents(o):
            reachable.setdefault(id(r), r)
    if "types" in first:  # live Python objects by type, more than at the first figures
        row["gc_types"] = dict((types - first["types"]).most_common(15))
        # objects alive now that were not at the first figures: not a growth, replacements
        # (a cache's entries, a table's keys) that pin the obmalloc arenas they went into
        ids = first["ids"]
        new = [o for i, o in reachable.items()
               if ids[min(bisect.bisect_left(ids, i), len(ids) - 1)] != i]
        by_type: Counter = Counter()
        for o in new:
            by_type[type(o).__qualname__] += sys.getsizeof(o)
        row["new_objects"] = {"count": len(new), "bytes": sum(by_type.values()),
                              "by_type_bytes": dict(by_type.most_common(12)),
                              "sample": [repr(o)[:100] for o in new
                                         if not isinstance(o, array.array)][:60]}
        if tracemalloc.is_tracing():
            where: Counter = Counter()
            for o in new:
                tb = tracemalloc.get_object_traceback(o)
                if tb is not None:
                    where[" <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}"
                                      for f in list(tb)[-4:])] += 1
            row["new_objects"]["allocated_at"] = dict(where.most_common(15))
        del new
    else:
        first["types"] = types
        # one malloc'd buffer, no Python int per id: the probe must not fill obmalloc arenas
        first["ids"] = array.array("Q", sorted(reachable))
    del objects, reachable


def figures(out: Path, tag: str, first: dict, census: bool = False) -> None:
    """Append one line of memory figures to ``out``."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    row: dict = {"tag": tag}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                row[key + "_kib"] = int(value.split()[0])
            elif key == "Threads":
                row["threads"] = int(value)
    m = libc.mallinfo2()
    row["c_heap"] = {"size": m.arena, "in_use": m.uordblks, "free": m.fordblks,
                     "mmapped": m.hblkhd}
    with tempfile.TemporaryFile() as f:  # _debugmallocstats writes to the C stderr
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode()
    for key in ("arenas allocated current", "bytes in allocated blocks",
                "bytes in available blocks"):
        found = re.search(r"# " + key + r"\s*=\s*([\d,]+)", text)
        if found:
            row["obmalloc_" + key.replace(" ", "_")] = int(found.group(1).replace(",", ""))
    if census:
        _census(row, first)
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        row["traced"] = tracemalloc.get_traced_memory()[0]
        if "snapshot" in first:
            row["top"] = [str(s) for s in snapshot.compare_to(first["snapshot"], "lineno")[:15]]
            row["top_tracebacks"] = [
                [f"{s.size_diff:+d} B {s.count_diff:+d} blocks",  # no source lines: no linecache
                 *(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in list(s.traceback)[-8:])]
                for s in snapshot.compare_to(first["snapshot"], "traceback")[:8]]
        else:
            first["snapshot"] = snapshot
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def serve(out: Path, trace: int, census: bool, argv: list[str]) -> None:
    first: dict = {}
    signal.signal(signal.SIGUSR1, lambda *_: figures(out, "usr1", first, census))

    def trimmed(*_):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        figures(out, "after malloc_trim", first, census)
    signal.signal(signal.SIGUSR2, trimmed)
    if trace:
        tracemalloc.start(trace)
    from p2pkit.cli import main
    sys.exit(main(argv))


async def drive(args: argparse.Namespace) -> None:
    import hostile_soak as hs
    name = "gnutella serve"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        meta = hs.prepare(work)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if args.python_malloc:
            env["PYTHONMALLOC"] = args.python_malloc
        extra = (["--trace", str(args.trace)] if args.trace else []) + \
            (["--census"] if args.census else [])
        server = subprocess.Popen([sys.executable, __file__, "--serve", "--out", str(args.out),
                                   *extra, "--", *hs.server_argv(name, work)],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            await asyncio.sleep(3)
            counter = [0]
            phases = {"quiet": await hs.phase(name, work, meta, args.quiet, counter)}
            server.send_signal(signal.SIGUSR1)
            attacker = subprocess.Popen([sys.executable, hs.__file__, "--attacker", name,
                                         "--work", str(work), "--per-kind", str(args.per_kind)],
                                        env=env, stdout=subprocess.PIPE)
            try:
                phases["attack"] = await hs.phase(name, work, meta, args.attack, counter)
            finally:
                attacker.send_signal(signal.SIGTERM)
                sent = attacker.communicate(timeout=30)[0].decode().strip()
            server.send_signal(signal.SIGUSR1)
            phases["recovery"] = await hs.phase(name, work, meta, args.quiet, counter)
            await asyncio.sleep(12)  # handshake and first-byte timeouts
            server.send_signal(signal.SIGUSR1)
            if args.settle:  # idle: the caches' lifetimes (own pings: 30 s) run out
                await asyncio.sleep(args.settle)
                server.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1)
            server.send_signal(signal.SIGUSR2)
            await asyncio.sleep(1)
            print(json.dumps({"attack_connections": sent, **phases}))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attack", type=float, default=40.0, help="seconds of attack")
    parser.add_argument("--quiet", type=float, default=15.0,
                        help="seconds of the quiet and the recovery phase")
    parser.add_argument("--per-kind", type=int, default=25)
    parser.add_argument("--census", action="store_true",
                        help="count the live objects, and list those new since the first "
                        "figures (disturbs the figures after it)")
    parser.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                        help="figures once more after this long idle, before the trim")
    parser.add_argument("--trace", type=int, default=0, metavar="FRAMES",
                        help="tracemalloc with this many frames (slows the servent 3-5x)")
    parser.add_argument("--python-malloc", metavar="ALLOCATOR",
                        help="the servent's PYTHONMALLOC (malloc: no obmalloc arenas, every "
                        "small object in glibc's heap, which malloc_trim can give back)")
    parser.add_argument("--out", type=Path, default=Path("servent-memory.jsonl"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("argv", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.out.resolve(), args.trace, args.census, args.argv)
        return
    import hostile_soak as hs
    if not hs.only_loopback():
        sys.exit("servent_memory_probe: run me inside `unshare -n` (only lo may exist)")
    args.out = args.out.resolve()
    asyncio.run(drive(args))


if __name__ == "__main__":
    main()
