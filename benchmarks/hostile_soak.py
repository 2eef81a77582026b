"""Hostile-peer soak (issue 13): each server under an attacker mix, beside well-behaved peers.

For each server (``bt seed``, ``bt tracker`` over HTTP, ``dht serve``, ``gnutella serve
--ultrapeer`` sharing a file), started as its own ``python -m p2pkit`` process on 127.0.0.1,
three phases of ``--phase`` seconds each:

1. quiet: well-behaved peers only (a whole download from the seeder, an HTTP announce, a DHT
   ``ping``, a Gnutella leaf handshake plus an HTTP download of the shared file), one after
   the other, each timed;
2. attack: the same, while attackers from 100 source addresses (127.0.0.2-127.0.0.101) run:
   silent sockets (a byte, then nothing), slowloris (a byte a second), garbage, oversized
   frames (a 4 GiB BitTorrent length, a 64 KiB HTTP head, a QRP RESET of 1 G slots, 20 KB
   datagrams), peers that never read (uploads of the shared file), connect/close churn, and
   for the DHT floods of garbage and oversized datagrams;
3. recovery: well-behaved peers only again.

It records the well-behaved peers' success rate and median/p95 latency per phase, the CPU
seconds the server used in each phase, the server's peak RSS and open file descriptors (from ``/proc``, sampled every 0.2 s), its RSS at the end
of the quiet phase and of the recovery phase (and, with ``--settle S``, after S more idle
seconds), whether the server logged a traceback, and whether it stopped with exit 0 on
SIGTERM. ``--logs DIR`` keeps the servers' logs and every failed well-behaved run (phase,
step, error) in ``DIR/failures.jsonl``. ``--attacker-nice 19`` runs the attacker process
at the lowest CPU priority: on a real network the attackers do not share the server's CPU,
here they share two cores with it. No server here decompresses anything a peer sends
(no MSE, no Gnutella deflate, no HTTP content coding), so there is no compression bomb to send.

It starts hundreds of connections: run it only inside ``unshare -n`` with ``lo`` up (it refuses
when it sees another interface)::

    unshare -n sh -c 'ip link set lo up && exec timeout 2400 \\
        /work/venv/bin/python benchmarks/hostile_soak.py --phase 200 --json'

``tests/interop/test_hostile_soak.py`` runs it for a few seconds per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from p2pkit import bencode  # noqa: E402
from p2pkit.bittorrent.peer.client import TorrentClient  # noqa: E402
from p2pkit.bittorrent.wire.create import create_torrent  # noqa: E402
from p2pkit.bittorrent.wire.metainfo import Metainfo  # noqa: E402
from p2pkit.core import NEED_DATA  # noqa: E402
from p2pkit.dht.server import DhtServer  # noqa: E402
from p2pkit.gnutella import connection_state as cs  # noqa: E402
from p2pkit.gnutella.descriptors import Descriptor  # noqa: E402
from p2pkit.gnutella.events import ConnectionClosed  # noqa: E402
from p2pkit.gnutella.servent import Servent  # noqa: E402

SOURCES = [f"127.0.0.{i}" for i in range(2, 102)]
PORTS = {"bt seed": 16881, "bt tracker": 16969, "dht serve": 16882, "gnutella serve": 16346}
SHARED_SIZE = 8 * 1024 * 1024
TORRENT_SIZE = 2 * 1024 * 1024
GOOD_TIMEOUT = 20.0
HUGE_RESET = Descriptor.build(dict(guid=b"R" * 16, type="route_table_update", ttl=1, hops=0,
                                   variant="reset", table_length=1 << 30, infinity=7))


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


# --- the server processes -------------------------------------------------------------------


def server_argv(name: str, work: Path) -> list[str]:
    listen = ["--listen", f"127.0.0.1:{PORTS[name]}"]
    return {
        "bt seed": ["bt", "seed", str(work / "album.torrent"), "--data", str(work / "data"),
                    *listen, "--no-trackers", "-q"],
        "bt tracker": ["bt", "tracker", *listen],
        "dht serve": ["dht", "serve", *listen],
        "gnutella serve": ["gnutella", "serve", "--ultrapeer", "--share",
                           str(work / "share"), *listen],
    }[name]


def prepare(work: Path) -> Metainfo:
    rng = random.Random(13)
    (work / "data" / "album").mkdir(parents=True)
    (work / "data" / "album" / "a.bin").write_bytes(rng.randbytes(TORRENT_SIZE))
    (work / "album.torrent").write_bytes(create_torrent(work / "data" / "album",
                                                        piece_length=65536))
    (work / "share").mkdir()
    (work / "share" / "soak file.bin").write_bytes(rng.randbytes(SHARED_SIZE))
    return Metainfo.parse((work / "album.torrent").read_bytes())


async def listening(port: int, limit: float = 20.0) -> None:
    """Until a socket of this network namespace listens on TCP ``port`` or is bound to UDP
    ``port`` (``/proc/net/tcp`` state 0A, LISTEN; ``/proc/net/udp`` state 07), at most
    ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for table, state in (("tcp", "0A"), ("udp", "07")):
            for line in Path("/proc/net", table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].endswith(f":{port:04X}") and fields[3] == state:
                    return
        await asyncio.sleep(0.05)


def proc_figures(pid: int) -> tuple[int, int]:
    """(RSS in bytes, open file descriptors) of ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak_rss, self.peak_fds, self.last_rss = pid, 0, 0, 0

    async def run(self) -> None:
        while True:
            with contextlib.suppress(OSError, StopIteration):
                rss, fds = proc_figures(self.pid)
                self.peak_rss, self.peak_fds = max(self.peak_rss, rss), max(self.peak_fds, fds)
                self.last_rss = rss
            await asyncio.sleep(0.2)


# --- well-behaved peers ---------------------------------------------------------------------


class RunFailed(Exception):
    """A well-behaved run that went wrong, and how (recorded with ``--logs``)."""


#: run number -> (the step it is in, when that step began): where a failed run stopped.
_steps: dict[int, tuple[str, float]] = {}


def step(n: int, what: str) -> None:
    _steps[n] = (what, time.monotonic())


async def good_bt(work: Path, meta: Metainfo, n: int) -> bool:
    leecher = TorrentClient(meta, work / f"leech{n}", listen=("127.0.0.1", 0), trackers=False,
                            peers=[("127.0.0.1", PORTS["bt seed"])])
    step(n, "download")
    await leecher.start()
    try:
        await asyncio.wait_for(leecher.wait_complete(), GOOD_TIMEOUT)
        return leecher.session.complete
    finally:
        await leecher.close()
        for f in (work / f"leech{n}").rglob("*.bin"):
            f.unlink()


async def good_tracker(work: Path, meta: Metainfo, n: int) -> bool:
    step(n, "connect")
    reader, writer = await asyncio.open_connection("127.0.0.1", PORTS["bt tracker"])
    try:
        # 50 peers announcing again and again (distinct ids would fill MAX_PEERS_PER_SWARM)
        query = (f"info_hash={'%42' * 20}&peer_id=-PK0100-{n % 50:012d}&port={7000 + n % 50}"
                 "&uploaded=0&downloaded=0&left=0&compact=1")
        writer.write(f"GET /announce?{query} HTTP/1.0\r\n\r\n".encode())
        step(n, "announce")
        answer = await asyncio.wait_for(reader.read(), GOOD_TIMEOUT)
        head, _, body = answer.partition(b"\r\n\r\n")
        return head.startswith(b"HTTP/1.") and b" 200 " in head and b"interval" in body
    finally:
        writer.close()


_dht_client: list[DhtServer] = []


async def good_dht(work: Path, meta: Metainfo, n: int) -> bool:
    if not _dht_client:
        _dht_client.append(await DhtServer.start("127.0.0.1", 0))
    step(n, "ping")
    done = await _dht_client[0].ping(("127.0.0.1", PORTS["dht serve"]), timeout=GOOD_TIMEOUT)
    return done is not None


async def good_gnutella(work: Path, meta: Metainfo, n: int) -> bool:
    leaf = Servent(role="leaf", rng=random.Random(n))
    step(n, "handshake connect")
    reader, writer = await asyncio.open_connection("127.0.0.1", PORTS["gnutella serve"])
    try:
        conn = leaf.connect("up", 0.0)
        writer.write(conn.data_to_send())
        step(n, "handshake")
        while conn.state != cs.ESTABLISHED:
            data = await asyncio.wait_for(reader.read(65536), GOOD_TIMEOUT)
            if not data:
                conn.receive_data(b"", 0.0)
            else:
                conn.receive_data(data, 0.0)
                writer.write(conn.data_to_send())
            if conn.state in (cs.CLOSED, cs.CLOSING) or not data:
                closed = [e for e in iter(conn.next_event, NEED_DATA)
                          if isinstance(e, ConnectionClosed)]
                raise RunFailed(f"handshake ended in state {conn.state}: " + "; ".join(
                    f"{e.code} {e.reason} (by peer: {e.by_peer})" for e in closed))
    finally:
        writer.close()
    step(n, "download connect")
    reader, writer = await asyncio.open_connection("127.0.0.1", PORTS["gnutella serve"])
    try:
        writer.write(b"GET /get/1/soak%20file.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        step(n, "download")
        answer = await asyncio.wait_for(reader.read(), GOOD_TIMEOUT)
        head, _, body = answer.partition(b"\r\n\r\n")
        if body != (work / "share" / "soak file.bin").read_bytes():
            status = head.split(b"\r\n")[0]
            raise RunFailed(f"download: {status!r}, {len(body)} bytes")
        return True
    finally:
        writer.close()


GOOD: dict[str, Callable[[Path, Metainfo, int], Awaitable[bool]]] = {
    "bt seed": good_bt, "bt tracker": good_tracker, "dht serve": good_dht,
    "gnutella serve": good_gnutella}


# --- attackers ------------------------------------------------------------------------------


def _first_bytes(name: str, meta: Metainfo) -> dict[str, bytes]:
    handshake = (b"\x13BitTorrent protocol" + bytes(8) + meta.info_hash_v1 + b"-XX0000-attacker00")
    return {
        "bt seed": {"silent": b"\x13", "oversized": handshake + b"\xff\xff\xff\xf0\x07",
                    "garbage": None, "never_read": None},
        "bt tracker": {"silent": b"GET /", "oversized": b"GET /announce?" + b"a" * 65536,
                       "garbage": None, "never_read": None},
        "gnutella serve": {"silent": b"GN", "oversized": HUGE_RESET,
                           "garbage": None,
                           "never_read": b"GET /get/1/soak%20file.bin HTTP/1.1\r\n\r\n"},
    }[name]


class Attack:
    """The attacker mix against one TCP server (or the DHT's UDP port)."""

    def __init__(self, name: str, meta: Metainfo, rng: random.Random) -> None:
        self.name, self.meta, self.rng = name, meta, rng
        self.port = PORTS[name]
        self.tasks: list[asyncio.Task] = []
        self.sent = 0
        self.stopping = False

    def start(self, per_kind: int) -> None:
        if self.name == "dht serve":
            self.tasks = [asyncio.ensure_future(self._udp_flood(i)) for i in range(8)]
            return
        first = _first_bytes(self.name, self.meta)
        kinds = [self._silent, self._slowloris, self._garbage, self._churn, self._oversized]
        if first["never_read"]:
            kinds.append(self._never_read)
        for i in range(per_kind):
            for kind in kinds:
                self.tasks.append(asyncio.ensure_future(self._forever(kind, i, first)))

    async def stop(self) -> None:
        self.stopping = True  # Python 3.11's wait_for can swallow a cancellation: ask too
        pending = set(self.tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)

    async def _forever(self, kind, i, first) -> None:
        while not self.stopping:
            source = SOURCES[(i * 7 + len(self.tasks)) % len(SOURCES)]
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(self.rng.choice(SOURCES), 0))
            except OSError:
                await asyncio.sleep(0.1)
                continue
            del source
            try:
                await kind(reader, writer, first)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()
            self.sent += 1
            await asyncio.sleep(0.01)

    async def _hold(self, reader) -> None:
        while await reader.read(65536):
            pass

    async def _silent(self, reader, writer, first) -> None:
        writer.write(first["silent"])
        await self._hold(reader)

    async def _slowloris(self, reader, writer, first) -> None:
        for byte in first["silent"] * 1000:
            if reader.at_eof() or writer.is_closing():
                return
            writer.write(bytes([byte]))
            await asyncio.sleep(1.0)

    async def _garbage(self, reader, writer, first) -> None:
        writer.write(self.rng.randbytes(4096))
        await asyncio.wait_for(self._hold(reader), 30)

    async def _churn(self, reader, writer, first) -> None:
        await asyncio.sleep(0.05)

    async def _oversized(self, reader, writer, first) -> None:
        if self.name == "gnutella serve":  # a leaf's handshake first, then the RESET
            conn = Servent(role="leaf", rng=random.Random(self.rng.random())).connect("up", 0)
            writer.write(conn.data_to_send())
            while conn.state != cs.ESTABLISHED:
                data = await asyncio.wait_for(reader.read(65536), 10)
                if not data:
                    return
                conn.receive_data(data, 0.0)
                writer.write(conn.data_to_send())
        writer.write(first["oversized"])
        await asyncio.wait_for(self._hold(reader), 30)

    async def _never_read(self, reader, writer, first) -> None:
        writer.transport.pause_reading()
        writer.write(first["never_read"])
        await asyncio.sleep(30)

    async def _udp_flood(self, i: int) -> None:
        loop = asyncio.get_running_loop()
        transports = []
        for source in SOURCES[i::8]:
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(source, 0))
            transports.append(transport)
        big = bencode.encode({b"t": b"aa", b"y": b"q", b"q": b"ping",
                              b"a": {b"id": b"x" * 20, b"p": b"p" * 20000}})
        try:
            while not self.stopping:
                for transport in transports:
                    kind = self.rng.random()
                    data = big if kind < 0.3 else self.rng.randbytes(self.rng.randrange(1, 1400))
                    transport.sendto(data, ("127.0.0.1", self.port))
                    self.sent += 1
                await asyncio.sleep(0.01)
        finally:
            for transport in transports:
                transport.close()


# --- one server -----------------------------------------------------------------------------


async def phase_runs(name: str, work: Path, meta: Metainfo, seconds: float,
                     counter: list[int], failures: list[dict] | None = None,
                     label: str = "") -> list[tuple[bool, float]]:
    """Well-behaved runs one after the other for ``seconds``: (succeeded, seconds taken).
    Each failed run is appended to ``failures``: its phase, number, the step it stopped in
    and for how long, and the error."""
    good = GOOD[name]
    results: list[tuple[bool, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or not results:
        counter[0] += 1
        n = counter[0]
        start = time.monotonic()
        error = ""
        try:
            ok = await asyncio.wait_for(good(work, meta, n), GOOD_TIMEOUT)
        except Exception as e:  # any error is a failed run: recorded, not raised
            ok, error = False, f"{type(e).__name__}: {e}"
        now = time.monotonic()
        where, since = _steps.pop(n, ("?", start))
        if not ok and failures is not None:
            failures.append({"phase": label, "run": n, "at_s": round(now - failures_epoch, 1),
                             "step": where, "step_s": round(now - since, 3),
                             "total_s": round(now - start, 3), "error": error or "False"})
        results.append((ok, now - start))
        await asyncio.sleep(0.05)
    return results


failures_epoch = time.monotonic()


def summary(results: list[tuple[bool, float]]) -> dict:
    """Success rate, median and p95 latency of well-behaved runs."""
    latencies = sorted(t for ok, t in results if ok)
    return {"runs": len(results), "success": sum(ok for ok, _ in results) / len(results),
            "median_s": round(statistics.median(latencies), 4) if latencies else None,
            "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 4) if latencies
            else None}


async def phase(name: str, work: Path, meta: Metainfo, seconds: float, counter: list[int],
                failures: list[dict] | None = None, label: str = ""):
    return summary(await phase_runs(name, work, meta, seconds, counter, failures, label))


def attacker_argv(name: str, work: Path, per_kind: int, nice: int) -> list[str]:
    return [sys.executable, __file__, "--attacker", name, "--work", str(work),
            "--per-kind", str(per_kind), "--nice", str(nice)]


async def soak_one(name: str, work: Path, meta: Metainfo, seconds: float,
                   per_kind: int, alternate: int = 1, *, nice: int = 0,
                   logs: Path | None = None, settle: float = 0.0) -> dict:
    log = open((logs or work) / f"{name.replace(' ', '-')}.log", "w+b")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", *server_argv(name, work)],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    failures: list[dict] = []
    sampler = Sampler(proc.pid)
    sampling = asyncio.ensure_future(sampler.run())
    counter = [0]
    try:
        await listening(PORTS[name])  # imports, then the listening socket
        cpu = {"quiet": 0.0, "attack": 0.0, "recovery": 0.0}
        runs: dict[str, list[tuple[bool, float]]] = {"quiet": [], "attack": []}
        rounds, sent, baseline = [], 0, None
        for _ in range(alternate):  # quiet and attack alternated: machine load cancels out
            before = proc_cpu_seconds(proc.pid)
            quiet = await phase_runs(name, work, meta, seconds, counter, failures, "quiet")
            cpu["quiet"] += proc_cpu_seconds(proc.pid) - before
            if baseline is None:
                baseline = sampler.last_rss
            # the attackers in their own process, so they do not slow the well-behaved loop
            attacker = subprocess.Popen(attacker_argv(name, work, per_kind, nice),
                                        env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
            before = proc_cpu_seconds(proc.pid)
            try:
                hostile = await phase_runs(name, work, meta, seconds, counter, failures,
                                           "attack")
            finally:
                attacker.send_signal(signal.SIGTERM)
                try:
                    out, _ = attacker.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    attacker.kill()
                    out, _ = attacker.communicate(timeout=5)
            cpu["attack"] += proc_cpu_seconds(proc.pid) - before
            sent += int(out.decode().strip() or 0)
            runs["quiet"] += quiet
            runs["attack"] += hostile
            q, a = summary(quiet), summary(hostile)
            rounds.append({"quiet_p95_s": q["p95_s"], "attack_p95_s": a["p95_s"],
                           "quiet_median_s": q["median_s"], "attack_median_s": a["median_s"]})
        before = proc_cpu_seconds(proc.pid)
        recovery = await phase(name, work, meta, seconds, counter, failures, "recovery")
        cpu["recovery"] += proc_cpu_seconds(proc.pid) - before
        await asyncio.sleep(1.0)
        after = sampler.last_rss
        settled = None
        if settle:  # idle: the caches' lifetimes run out (the servent's own pings: 30 s)
            await asyncio.sleep(settle)
            settled = sampler.last_rss
    finally:
        sampling.cancel()
        proc.send_signal(signal.SIGTERM)
        try:
            exit_status = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            exit_status = proc.wait(5)
    log.seek(0)
    text = log.read().decode(errors="replace")
    log.close()
    result = {"server": name, "quiet": summary(runs["quiet"]),
              "attack": summary(runs["attack"]), "recovery": recovery,
              "attack_connections": sent,
              "server_cpu_s": {p: round(t, 2) for p, t in cpu.items()},
              "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
              "baseline_rss_mb": round(baseline / 2**20, 1),
              "recovered_rss_mb": round(after / 2**20, 1), "peak_fds": sampler.peak_fds,
              "tracebacks": text.count("Traceback"), "exit_status": exit_status,
              "attacker_nice": nice, "failures": failures[:20]}
    if settled is not None:
        result["settled_rss_mb"] = round(settled / 2**20, 1)
        result["settle_s"] = settle
    if logs is not None:
        with open(logs / "failures.jsonl", "a") as f:
            for failure in failures:
                f.write(json.dumps({"server": name, **failure}) + "\n")
    if alternate > 1:
        result["rounds"] = rounds
    return result


async def main_async(args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="p2pkit-soak-") as tmp:
        work = Path(tmp)
        meta = prepare(work)
        results = []
        for name in args.servers:
            results.append(await soak_one(name, work, meta, args.phase, args.per_kind,
                                          args.alternate, nice=args.attacker_nice,
                                          logs=args.logs, settle=args.settle))
            if not args.json:
                print(json.dumps(results[-1]), flush=True)
        for client in _dht_client:
            client.close()
        return results


def markdown_table(results: list[dict]) -> str:
    """The docs' table (docs/guide/hostile-peers.md) from the results."""
    def latency(phase: dict) -> str:
        return f"{phase['median_s'] * 1000:.1f} / {phase['p95_s'] * 1000:.1f}" \
            if phase["median_s"] is not None else "-"
    def settled(r: dict) -> str:
        return f" (→ {r['settled_rss_mb']} MB {r['settle_s']:g} s later)" \
            if "settled_rss_mb" in r else ""
    rows = ["| Server | Well-behaved success (quiet / attack / recovery) | Latency ms, median / "
            "p95 (quiet) | (attack) | Attacker connections | Peak RSS | RSS quiet → after "
            "recovery | Peak fds | Tracebacks | Exit on SIGTERM |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        success = " / ".join(  # 99.9 %, not a rounded 100 %, when one run failed
            f"{r[p]['success']:.0%} ({r[p]['runs']})" if r[p]["success"] in (0.0, 1.0) else
            f"{r[p]['success']:.1%} ({r[p]['runs']})" for p in ("quiet", "attack", "recovery"))
        rows.append(f"| `{r['server']}` | {success} | {latency(r['quiet'])} | "
                    f"{latency(r['attack'])} | {r['attack_connections']} | "
                    f"{r['peak_rss_mb']} MB | {r['baseline_rss_mb']} → "
                    f"{r['recovered_rss_mb']} MB{settled(r)} | {r['peak_fds']} | {r['tracebacks']} | "
                    f"{r['exit_status']} |")
    return "\n".join(rows)


async def attacker_main(name: str, work: Path, per_kind: int, nice: int = 0) -> None:
    """The attacker process: run the mix until SIGTERM, then print how many it sent. With
    ``nice`` > 0 it first lowers its own CPU priority (``os.nice``): real attackers do not
    run on the server's CPU, and this makes the machine's cores serve the server and the
    well-behaved peers first."""
    if nice:
        os.nice(nice)
    meta = Metainfo.parse((work / "album.torrent").read_bytes())
    attack = Attack(name, meta, random.Random(1))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    attack.start(per_kind)
    await stop.wait()
    await attack.stop()
    print(attack.sent, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", type=float, default=200.0,
                        help="seconds per phase (quiet, attack, recovery)")
    parser.add_argument("--per-kind", type=int, default=25,
                        help="attacker connections of each kind at once")
    parser.add_argument("--alternate", type=int, default=1, metavar="K",
                        help="quiet and attack phases alternated K times (then recovery); "
                        "the quiet and attack figures pool the K phases of each kind")
    parser.add_argument("--servers", nargs="+", default=list(PORTS), choices=list(PORTS))
    parser.add_argument("--json", action="store_true", help="one JSON document at the end")
    parser.add_argument("--markdown", type=Path, metavar="JSONL",
                        help="print the docs' table from a results file (one JSON a line)")
    parser.add_argument("--attacker-nice", type=int, default=0, metavar="N",
                        help="the attacker process runs at this niceness (19: lowest CPU "
                        "priority; 0: the same as the server)")
    parser.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                        help="after the recovery phase, wait this long idle and report the "
                        "RSS again (settled_rss_mb: the caches' lifetimes have run out)")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="keep the servers' logs here, and every failed well-behaved run "
                        "(phase, step, error) in DIR/failures.jsonl")
    parser.add_argument("--attacker", choices=list(PORTS), help=argparse.SUPPRESS)
    parser.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.markdown:
        lines = args.markdown.read_text().splitlines()
        print(markdown_table([json.loads(line) for line in lines if line.strip()]))
        return
    if not only_loopback():
        sys.exit("hostile_soak: run me inside `unshare -n` (only lo may exist)")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    if args.attacker:
        asyncio.run(attacker_main(args.attacker, args.work, args.per_kind, args.nice))
        return
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
