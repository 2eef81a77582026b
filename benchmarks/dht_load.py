"""Queries answered per second by three Mainline DHT servers under one loopback load generator.

BEP 5 §KRPC Protocol: "The queries [...] ping, find_node, get_peers". One generator (an asyncio
UDP client on 127.0.0.1) keeps ``window`` well-formed queries outstanding, each with a distinct
4-byte transaction id, built with :mod:`p2pkit.dht.krpc`; an answer (response or error)
whose ``t`` matches an outstanding query frees its slot for the next query; a query unanswered
after :data:`QUERY_TIMEOUT` counts as lost and is replaced. The same generator then queries, one
after the other and for the same time:

1. p2pkit's node (:class:`p2pkit.dht.server.DhtServer` in its own process, 127.0.0.2,
   on the standard library's event loop),
2. the same on uvloop's event loop (127.0.0.5; only when uvloop is installed),
3. libtorrent 2.0's DHT (python3-libtorrent session, 127.0.0.3),
4. npm bittorrent-dht 11 (node, ``bootstrap: false``, 127.0.0.4),

with every rate limit that would measure a limit rather than speed raised (see ``docs/
dht-performance.md``). Before the load, a few p2pkit "filler" nodes (127.0.1.x) bootstrap from
each target so that find_node/get_peers answers carry real ``nodes``.

This is the scenario script: it must run inside ``unshare -n`` with ``lo`` up (it refuses to run
if it sees any interface but ``lo``) and prints one JSON document::

    unshare -n sh -c 'ip link set lo mtu 1500 && ip link set lo up && exec timeout 120 \
        /work/venv/bin/python benchmarks/dht_load.py --lt-python /usr/bin/python3 --npm-dir DIR'
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from p2pkit.dht import krpc  # noqa: E402
from p2pkit.dht.security import RateLimiter  # noqa: E402
from p2pkit.dht.server import DhtServer, new_event_loop  # noqa: E402
from p2pkit.errors import ParseError  # noqa: E402

#: The targets, in the order they are loaded: name -> (address, UDP port).
TARGETS = {
    "p2pkit": ("127.0.0.2", 6881),
    "p2pkit-uvloop": ("127.0.0.5", 6881),
    "libtorrent": ("127.0.0.3", 6881),
    "bittorrent-dht": ("127.0.0.4", 6881),
}
#: The event loop of each p2pkit target (``p2pkit-uvloop`` runs only when uvloop is installed).
P2PKIT_LOOPS = {"p2pkit": "asyncio", "p2pkit-uvloop": "uvloop"}
GENERATOR_HOST = "127.0.0.1"
#: Query methods sent, in turn.
KINDS = ("ping", "find_node", "get_peers")
#: Seconds before an unanswered query counts as lost (its slot is reused).
QUERY_TIMEOUT = 1.0
#: Every n-th answer is fully decoded with krpc.decode (the rest are matched by ``t`` only).
VALIDATE_EVERY = 50
#: Filler nodes bootstrapped from each target before the load.
FILLERS = 16
#: Distinct prebuilt queries per method (each with its own random target / info_hash).
TEMPLATES = 256
_T_PLACEHOLDER = b"\xfe\xed\xfa\xce"

LIBTORRENT_TARGET = r'''
import json, sys
import libtorrent as lt

host, port = sys.argv[1], int(sys.argv[2])
s = lt.session({
    "listen_interfaces": f"{host}:{port}", "outgoing_interfaces": host,
    "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": "",
    "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
    "dht_prefer_verified_node_ids": False, "dht_ignore_dark_internet": False,
    "dht_enforce_node_id": False,
    "dht_block_ratelimit": 1000000000, "dht_upload_rate_limit": 1000000000,
    "alert_mask": lt.alert_category.error,
})
print(json.dumps({"ready": True, "version": lt.__version__}), flush=True)
for line in sys.stdin:
    print(json.dumps({"dht_nodes": s.status().dht_nodes}), flush=True)
'''

BITTORRENT_DHT_TARGET = r'''
import DHT from 'bittorrent-dht'
import readline from 'readline'
import { readFileSync } from 'fs'

const [host, port] = process.argv.slice(2)
const dht = new DHT({ bootstrap: false })
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const pkg = JSON.parse(readFileSync('node_modules/bittorrent-dht/package.json', 'utf8'))
dht.on('error', (err) => out({ error: String(err) }))
dht.listen(Number(port), host, () => out({ ready: true, version: pkg.version }))
readline.createInterface({ input: process.stdin }).on('line', () => {
  out({ dht_nodes: dht.toJSON().nodes.length })
})
'''


@dataclass
class LoadResult:
    """What the generator saw of one target during the measured window."""

    target: str
    seconds: float = 0.0
    window: int = 0
    sent: int = 0
    answered: int = 0
    responses: int = 0
    errors: int = 0
    lost: int = 0
    unmatched: int = 0
    validated: int = 0
    invalid: int = 0
    nodes_in_answers: list[int] = field(default_factory=list, repr=False)
    mean_nodes_per_answer: float | None = None
    answered_per_s: float = 0.0
    loss_pct: float = 0.0
    generator_cpu_s: float = 0.0
    target_cpu_s: float | None = None
    #: The same split: in the process itself, and in the kernel (socket calls, loopback).
    target_user_cpu_s: float | None = None
    target_system_cpu_s: float | None = None
    #: Answers per CPU second the target process used (its efficiency, whatever the contention).
    answered_per_target_cpu_s: float | None = None


def query_templates(rng: random.Random, node_id: bytes) -> list[tuple[bytes, int]]:
    """Encoded queries, each with the byte offset of its 4-byte transaction id."""
    out = []
    for i in range(TEMPLATES * len(KINDS)):
        kind = KINDS[i % len(KINDS)]
        arguments: dict = {"id": node_id}
        if kind == "find_node":
            arguments["target"] = rng.randbytes(20)
        elif kind == "get_peers":
            arguments["info_hash"] = rng.randbytes(20)
        data = krpc.encode(krpc.query(kind, _T_PLACEHOLDER, **arguments))
        out.append((data, data.index(b"1:t4:" + _T_PLACEHOLDER) + 5))
    return out


class LoadGenerator(asyncio.DatagramProtocol):
    """Keeps ``window`` queries outstanding at ``target`` and counts the answers."""

    def __init__(self, target: tuple[str, int], window: int, rng: random.Random) -> None:
        self.target = target
        self.window = window
        self.templates = query_templates(rng, rng.randbytes(20))
        self.outstanding: dict[bytes, float] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.counter = rng.randrange(1 << 30)
        self.sending = False
        self.measuring = False
        self.result: LoadResult | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def _send_one(self, now: float) -> None:
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        t = self.counter.to_bytes(4, "big")
        data, at = self.templates[self.counter % len(self.templates)]
        self.transport.sendto(data[:at] + t + data[at + 4:], self.target)
        self.outstanding[t] = now
        if self.measuring:
            self.result.sent += 1

    def fill(self, now: float) -> None:
        while self.sending and len(self.outstanding) < self.window:
            self._send_one(now)

    def expire(self, now: float) -> None:
        old = [t for t, at in self.outstanding.items() if now - at > QUERY_TIMEOUT]
        for t in old:
            del self.outstanding[t]
        if self.measuring:
            self.result.lost += len(old)
        self.fill(now)

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        at = data.rfind(b"1:t4:")
        t = data[at + 5:at + 9] if at >= 0 else b""
        if self.outstanding.pop(t, None) is None:
            if self.measuring:
                self.result.unmatched += 1
            return
        if self.measuring:
            result = self.result
            result.answered += 1
            if data.endswith(b"1:y1:ee"):
                result.errors += 1
            else:
                result.responses += 1
            if result.answered % VALIDATE_EVERY == 0:
                self._validate(data)
        self.fill(time.monotonic())

    def _validate(self, data: bytes) -> None:
        try:
            message = krpc.decode(data)
        except ParseError:
            self.result.invalid += 1
            return
        self.result.validated += 1
        if message.y == "r" and "nodes" in message.r:
            self.result.nodes_in_answers.append(len(message.r.nodes))


def _process_cpu(pid: int | None) -> tuple[float, float] | None:
    """User and system CPU seconds of process ``pid`` (all its threads), from /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def run_load(name: str, target: tuple[str, int], *, seconds: float, window: int,
                   warmup: float = 1.0, seed: int = 1, pid: int | None = None) -> LoadResult:
    """Load ``target`` for ``warmup + seconds``; count only the last ``seconds``."""
    loop = asyncio.get_running_loop()
    transport, gen = await loop.create_datagram_endpoint(
        lambda: LoadGenerator(target, window, random.Random(seed)),
        local_addr=(GENERATOR_HOST, 0))
    try:
        gen.result = LoadResult(target=name, window=window)
        gen.sending = True
        gen.fill(time.monotonic())

        async def ticking(until: float) -> None:
            while (now := time.monotonic()) < until:
                gen.expire(now)
                await asyncio.sleep(0.05)

        await ticking(time.monotonic() + warmup)
        cpu0, target_cpu0 = time.process_time(), _process_cpu(pid)
        gen.measuring = True
        start = time.monotonic()
        await ticking(start + seconds)
        gen.measuring = False
        elapsed = time.monotonic() - start
        cpu1, target_cpu1 = time.process_time(), _process_cpu(pid)
        gen.sending = False
        await asyncio.sleep(QUERY_TIMEOUT)
        result = gen.result
        if result.nodes_in_answers:
            result.mean_nodes_per_answer = round(
                sum(result.nodes_in_answers) / len(result.nodes_in_answers), 2)
        result.nodes_in_answers = []
        result.seconds = round(elapsed, 3)
        result.answered_per_s = round(result.answered / elapsed, 1)
        result.loss_pct = round(100.0 * result.lost / max(1, result.sent), 3)
        result.generator_cpu_s = round(cpu1 - cpu0, 3)
        if target_cpu0 is not None and target_cpu1 is not None:
            result.target_user_cpu_s = round(target_cpu1[0] - target_cpu0[0], 3)
            result.target_system_cpu_s = round(target_cpu1[1] - target_cpu0[1], 3)
            result.target_cpu_s = round(result.target_user_cpu_s + result.target_system_cpu_s, 3)
            if result.target_cpu_s > 0:
                result.answered_per_target_cpu_s = round(result.answered / result.target_cpu_s, 1)
        return result
    finally:
        transport.close()


class Target:
    """A target server in a subprocess that prints one JSON line per stdin line."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, info: dict) -> None:
        self.name, self.proc, self.info = name, proc, info

    @classmethod
    async def start(cls, name: str, argv: list[str], cwd: str | None = None) -> Target:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE)
        target = cls(name, proc, {})
        target.info = await target._line(20.0)
        return target

    async def _line(self, timeout: float) -> dict:
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited")
        return json.loads(line)

    async def status(self) -> dict:
        self.proc.stdin.write(b"status\n")
        await self.proc.stdin.drain()
        return await self._line(10.0)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def serve_p2pkit(host: str, port: int) -> None:
    """The p2pkit target: a DhtServer with the per-source rate limit raised out of the way."""
    unlimited = RateLimiter(rate=1e12, burst=1e12)
    server = await DhtServer.start(host, port, rate_limit=unlimited)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True, "version": f"event loop {type(loop).__module__}"}),
          flush=True)
    while await reader.readline():
        print(json.dumps({"dht_nodes": len(server.node.table),
                          "rate_limited": server.node.stats.get("rate_limited", 0)}), flush=True)
    server.close()


def profile_node(count: int, top: int = 25) -> str:
    """cProfile of :meth:`Node.receive_datagram` + :meth:`Node.datagrams_to_send` answering
    ``count`` generator queries in-process (no sockets), the node knowing :data:`FILLERS`
    nodes; returns the report (internal time, then cumulative) with queries per CPU second."""
    import cProfile
    import io
    import pstats

    from p2pkit.dht.node import Node

    rng = random.Random(7)
    node = Node(rng=rng, now=0.0, rate_limit=RateLimiter(rate=1e12, burst=1e12),
                maintenance_interval=None)
    for i in range(FILLERS):
        node.table.seen_response(rng.randbytes(20), (f"127.0.1.{i + 1}", 6881), now=0.0)
    templates = query_templates(rng, rng.randbytes(20))
    stream = []
    for i in range(count):
        data, at = templates[i % len(templates)]
        stream.append(data[:at] + i.to_bytes(4, "big") + data[at + 4:])

    clock = [1.0]

    def serve() -> None:
        for data in stream:
            clock[0] += 1e-4
            now = clock[0]
            node.receive_datagram(data, (GENERATOR_HOST, 40000), now)
            node.datagrams_to_send(now)

    start = time.process_time()
    serve()
    plain = time.process_time() - start
    profiler = cProfile.Profile()
    profiler.runcall(serve)
    out = io.StringIO()
    out.write(f"{count} queries in {plain:.3f} CPU s without the profiler: "
              f"{count / plain:.0f} queries per CPU second; table {len(node.table)} nodes\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


async def scenario(args: argparse.Namespace, work: str) -> dict:
    """Start the three targets, give them neighbours, load each in turn."""
    lt_script = Path(work, "libtorrent_target.py")
    lt_script.write_text(LIBTORRENT_TARGET)
    js_script = Path(args.npm_dir, f"bittorrent_dht_target_{os.getpid()}.mjs")
    js_script.write_text(BITTORRENT_DHT_TARGET)
    argvs = {name: [sys.executable, str(Path(__file__).resolve()), "--p2pkit-loop", loop,
                    "--serve-p2pkit", *map(str, TARGETS[name])]
             for name, loop in P2PKIT_LOOPS.items()
             if loop == "asyncio" or importlib.util.find_spec(loop) is not None}
    argvs["libtorrent"] = [args.lt_python, str(lt_script), *map(str, TARGETS["libtorrent"])]
    argvs["bittorrent-dht"] = ["node", str(js_script), *map(str, TARGETS["bittorrent-dht"])]
    addresses = [TARGETS[name] for name in argvs]
    targets: dict[str, Target] = {}
    fillers: list[DhtServer] = []
    report: dict = {"window": args.window, "seconds": args.seconds, "rounds": args.rounds,
                    "kinds": list(KINDS), "fillers": FILLERS, "runs": []}
    try:
        for name, argv in argvs.items():
            cwd = args.npm_dir if name == "bittorrent-dht" else None
            targets[name] = await Target.start(name, argv, cwd=cwd)
        report["versions"] = {name: t.info.get("version") for name, t in targets.items()}
        for i in range(FILLERS):
            fillers.append(await DhtServer.start(f"127.0.1.{i + 1}", 6881,
                                                 rng=random.Random(100 + i),
                                                 maintenance_interval=None))
        for filler in fillers:
            await filler.bootstrap(addresses, timeout=5)
        await asyncio.sleep(2.0)  # let the targets' verification pings come back
        for filler in fillers:  # a second round: targets now know each other's fillers
            await filler.bootstrap(addresses, timeout=5)
        await asyncio.sleep(1.0)
        report["routing_table_sizes"] = {name: (await t.status())["dht_nodes"]
                                         for name, t in targets.items()}
        for round_ in range(args.rounds):
            for name in argvs:
                addr = TARGETS[name]
                result = await run_load(name, addr, seconds=args.seconds, window=args.window,
                                        seed=round_ + 1, pid=targets[name].proc.pid)
                report["runs"].append(asdict(result))
        report["p2pkit_target_status"] = await targets["p2pkit"].status()
    finally:
        for filler in fillers:
            filler.close()
        for target in targets.values():
            await target.stop()
        js_script.unlink(missing_ok=True)
    return report


def summarize(report: dict) -> dict[str, dict]:
    """Per target: the median answered/s (and per target CPU second) over rounds, the total
    loss %, and each p2pkit target's ratios to the others: of the medians, and the median of
    the per-round ratios (each round loads every target once, one after the other)."""

    def median(values: list) -> float:
        values = sorted(v for v in values if v is not None)
        return values[len(values) // 2] if values else 0.0

    summary: dict[str, dict] = {}
    names = list(dict.fromkeys(r["target"] for r in report["runs"]))
    for name in names:
        runs = [r for r in report["runs"] if r["target"] == name]
        sent = sum(r["sent"] for r in runs)
        summary[name] = {
            "answered_per_s": median([r["answered_per_s"] for r in runs]),
            "answered_per_target_cpu_s": median([r["answered_per_target_cpu_s"] for r in runs]),
            "loss_pct": round(100.0 * sum(r["lost"] for r in runs) / max(1, sent), 3),
            "errors": sum(r["errors"] for r in runs),
        }
    for ours in (n for n in names if n in P2PKIT_LOOPS):
        for name in ("libtorrent", "bittorrent-dht"):
            if name not in summary:
                continue
            for key, label in (("answered_per_s", "ratio_to"),
                               ("answered_per_target_cpu_s", "cpu_ratio_to")):
                a, b = summary[ours][key], summary[name][key]
                summary[ours][f"{label}_{name}"] = round(a / b, 3) if b else None
            mine = [r["answered_per_s"] for r in report["runs"] if r["target"] == ours]
            theirs = [r["answered_per_s"] for r in report["runs"] if r["target"] == name]
            summary[ours][f"median_round_ratio_to_{name}"] = round(
                median([a / b for a, b in zip(mine, theirs) if b]), 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lt-python", default="/usr/bin/python3")
    parser.add_argument("--npm-dir", help="a directory with node_modules/bittorrent-dht")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per target")
    parser.add_argument("--window", type=int, default=64, help="queries kept outstanding")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the three targets")
    parser.add_argument("--p2pkit-loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help=argparse.SUPPRESS)
    parser.add_argument("--serve-p2pkit", nargs=2, metavar=("HOST", "PORT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=int, metavar="N",
                        help="no network: profile p2pkit's Node answering N queries in-process")
    args = parser.parse_args()
    if args.profile:
        print(profile_node(args.profile))
        return
    if args.serve_p2pkit:
        with asyncio.Runner(loop_factory=lambda: new_event_loop(args.p2pkit_loop)) as runner:
            runner.run(serve_p2pkit(args.serve_p2pkit[0], int(args.serve_p2pkit[1])))
        return
    if not _only_loopback():
        parser.error("run me inside `unshare -n` (only lo may exist)")
    if not args.npm_dir:
        parser.error("--npm-dir is required")
    with tempfile.TemporaryDirectory() as work:
        report = asyncio.run(scenario(args, work))
    report["summary"] = summarize(report)
    report["loadavg"] = os.getloadavg()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
