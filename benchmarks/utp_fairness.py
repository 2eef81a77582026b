"""LEDBAT yielding to TCP (BEP 29 §congestion control): a uTP flow and a TCP flow through one
bottleneck on loopback, throughput of each over time, and a plot.

BEP 29: "uTP is designed to [...] not to compete with TCP traffic" and its congestion control
"use[s] one way buffer delay as the main congestion measurement": once a competing flow fills
the bottleneck's queue past the 100 ms target, a uTP sender shrinks its window and leaves the
link to the other flow. This script shows it with p2pkit's uTP (:mod:`p2pkit.bittorrent.utp`)
against the kernel's TCP (cubic by default, ``--tcp-cc``):

* Everything runs inside ONE ``unshare -n`` network namespace (the script re-runs itself
  there, bounded by ``timeout``): ``lo`` with MTU 1500, whose incoming packets pass through a
  token bucket on an ``ifb`` device (:data:`BOTTLENECK`: ``tbf rate RATE burst 32kb latency
  300ms``, the link and its queue; this kernel has no ``sch_netem``). Traffic goes 127.0.0.2
  -> 127.0.0.3 only.
* The uTP flow (its own sender and receiver processes, :class:`UtpEndpoint`) runs from 0 to
  ``--duration`` s; the TCP flow (two more processes, plain sockets) from ``--tcp-start`` to
  ``--tcp-stop``. Each receiver counts bytes per 0.25 s; the uTP sender samples its LEDBAT
  state (the queueing delay it measures and its window). All four stop by themselves and are
  waited for by PID.

    /work/venv/bin/python benchmarks/utp_fairness.py --out docs/_static/utp-fairness.png \
        --json docs/_static/utp-fairness.json

(``--replot docs/_static/utp-fairness.json --out ...`` draws the plot again.) The JSON holds
every sample and per-phase means (MB = 10**6 bytes); docs/protocols/utp.md
shows the plot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENDER, RECEIVER = "127.0.0.2", "127.0.0.3"
UTP_PORT, TCP_PORT = 7000, 7001
TICK = 0.25
#: The bottleneck: what arrives on lo is redirected to an ifb device whose token bucket is the
#: link and its queue. Shaping lo's own egress would not do: TCP Small Queues keep a TCP
#: socket's bytes in a local qdisc to about two packets, so a local queue starves TCP of a
#: share whatever the other flow does; lo hands packets over (and frees them from the socket's
#: account) before its ingress, as a real link hands them to a router.
BOTTLENECK = (
    "ip link add ifb0 type ifb",
    "ip link set ifb0 up",
    "tc qdisc add dev lo handle ffff: ingress",
    "tc filter add dev lo parent ffff: protocol all u32 match u32 0 0 action mirred egress "
    "redirect dev ifb0",
    "tc qdisc add dev ifb0 root tbf rate RATE burst 32kb latency 300ms",
)
CHUNK = 64 * 1024


def in_namespace() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


class Counter:
    """Bytes received per TICK since ``start`` (monotonic clock, shared by the processes)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.bins: dict[int, int] = {}

    def add(self, n: int) -> None:
        slot = int((time.monotonic() - self.start) / TICK)
        self.bins[slot] = self.bins.get(slot, 0) + n


def dump(path: str, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload))


# -- the four roles ------------------------------------------------------------------------

async def utp_receiver(args: argparse.Namespace) -> None:
    from p2pkit.bittorrent.utp.endpoint import UtpEndpoint

    counter = Counter(args.start)

    class Count(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            counter.add(len(data))

    def accepted(stream) -> None:
        protocol = Count()
        stream.set_protocol(protocol)
        protocol.connection_made(stream)

    endpoint = await UtpEndpoint.bind(RECEIVER, UTP_PORT, on_accept=accepted)
    await asyncio.sleep(args.start + args.duration + 1.0 - time.monotonic())
    endpoint.close()
    dump(args.result, {"bins": counter.bins})


async def utp_sender(args: argparse.Namespace) -> None:
    from p2pkit.bittorrent.utp.endpoint import UtpEndpoint

    endpoint = await UtpEndpoint.bind(SENDER, 0)
    block = os.urandom(CHUNK)
    can_write = asyncio.Event()
    can_write.set()

    class Push(asyncio.Protocol):
        def pause_writing(self) -> None:
            can_write.clear()

        def resume_writing(self) -> None:
            can_write.set()

    await asyncio.sleep(max(args.start - time.monotonic(), 0))
    stream, _ = await endpoint.connect((RECEIVER, UTP_PORT), Push, timeout=5.0)
    conn = endpoint.core.connections[stream.key]
    samples = []
    end = args.start + args.duration

    async def sample() -> None:
        while (now := time.monotonic()) < end:
            samples.append((round(now - args.start, 3), conn.cc.our_delay / 1000,
                            round(conn.cc.max_window), conn.mtu.size))
            await asyncio.sleep(TICK)

    sampler = asyncio.create_task(sample())
    while time.monotonic() < end:
        try:
            await asyncio.wait_for(can_write.wait(), max(end - time.monotonic(), 0.01))
        except TimeoutError:
            break
        stream.write(block)
        await asyncio.sleep(0)
    await sampler
    stats = dict(conn.stats)
    endpoint.close()
    dump(args.result, {"ledbat": samples, "stats": stats})


def tcp_receiver(args: argparse.Namespace) -> None:
    counter = Counter(args.start)
    with socket.create_server((RECEIVER, TCP_PORT)) as server:
        server.settimeout(args.start + args.duration + 1.0 - time.monotonic())
        try:
            conn, _ = server.accept()
        except TimeoutError:
            dump(args.result, {"bins": {}})
            return
        with conn:
            conn.settimeout(2.0)
            try:
                while data := conn.recv(CHUNK):
                    counter.add(len(data))
            except TimeoutError:
                pass
    dump(args.result, {"bins": counter.bins})


def tcp_sender(args: argparse.Namespace) -> None:
    time.sleep(max(args.start + args.tcp_start - time.monotonic(), 0))
    block = os.urandom(CHUNK)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The congestion control of the competing flow (this machine's default is bbr, which
        # does not fill queues; cubic and reno do, as the TCP flows LEDBAT is meant to yield
        # to). Setting one outside tcp_allowed_congestion_control needs CAP_NET_ADMIN.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, args.tcp_cc.encode())
        sock.bind((SENDER, 0))
        sock.connect((RECEIVER, TCP_PORT))
        sock.settimeout(1.0)
        stop = args.start + args.tcp_stop
        while time.monotonic() < stop:
            try:
                sock.send(block)
            except TimeoutError:
                continue
    dump(args.result, {})


# -- the run -------------------------------------------------------------------------------

def run_all(args: argparse.Namespace, work: Path) -> dict:
    for cmd in BOTTLENECK:
        subprocess.run([part.replace("RATE", args.rate) for part in cmd.split()], check=True,
                       timeout=10)
    start = time.monotonic() + 2.0  # every process is up by then
    procs = []
    roles = [r for r in ("utp-receiver", "tcp-receiver", "utp-sender", "tcp-sender")
             if r.split("-")[0] in args.flows]
    for role in roles:
        cmd = [sys.executable, __file__, "--role", role, "--start", repr(start),
               "--tcp-cc", args.tcp_cc,
               "--result", str(work / f"{role}.json"), "--duration", str(args.duration),
               "--tcp-start", str(args.tcp_start), "--tcp-stop", str(args.tcp_stop)]
        procs.append(subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}))
    if args.debug:
        time.sleep(max(start + args.tcp_start + 5 - time.monotonic(), 0))
        for cmd in (["tc", "-s", "qdisc", "show", "dev", "ifb0"], ["ss", "-tinu"]):
            print(subprocess.run(cmd, capture_output=True, text=True).stdout, file=sys.stderr)
    for proc in procs:
        try:
            proc.wait(args.duration + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    empty = {"utp-receiver": {"bins": {}}, "tcp-receiver": {"bins": {}},
             "utp-sender": {"ledbat": [], "stats": {}}}
    results = {role: json.loads((work / f"{role}.json").read_text()) if role in roles
               else empty[role] for role in empty}
    slots = int(args.duration / TICK)

    def series(role: str) -> list[float]:
        bins = {int(k): v for k, v in results[role]["bins"].items()}
        return [bins.get(i, 0) / TICK / 1e6 for i in range(slots)]

    utp, tcp = series("utp-receiver"), series("tcp-receiver")

    def mean(values: list[float], a: float, b: float) -> float:
        part = values[int(a / TICK):int(b / TICK)]
        return round(sum(part) / max(len(part), 1), 2)

    # Phases, leaving 2 s after each change for the flows to settle.
    phases = {"utp alone": (2.0, args.tcp_start),
              "both": (args.tcp_start + 2.0, args.tcp_stop),
              "utp alone again": (args.tcp_stop + 2.0, args.duration)}
    return {
        "rate": args.rate, "tcp_cc": args.tcp_cc, "tick_s": TICK, "tcp_start": args.tcp_start,
        "tcp_stop": args.tcp_stop, "utp_MB_per_s": utp, "tcp_MB_per_s": tcp,
        "ledbat": results["utp-sender"]["ledbat"], "utp_stats": results["utp-sender"]["stats"],
        "phase_means_MB_per_s": {name: {"utp": mean(utp, a, b), "tcp": mean(tcp, a, b)}
                                 for name, (a, b) in phases.items()},
    }


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tick = result["tick_s"]
    times = [i * tick for i in range(len(result["utp_MB_per_s"]))]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    top.plot(times, result["utp_MB_per_s"], label="uTP (p2pkit, LEDBAT)", color="tab:blue")
    top.plot(times, result["tcp_MB_per_s"], label=f"TCP (kernel, {result['tcp_cc']})",
             color="tab:red")
    top.axvspan(result["tcp_start"], result["tcp_stop"], color="0.92")
    top.set_ylabel("MB/s received")
    top.set_title(f"uTP against TCP through one {result['rate']} bottleneck (tbf)")
    top.legend(loc="upper right")
    ledbat = result["ledbat"]
    bottom.plot([s[0] for s in ledbat], [s[1] for s in ledbat], color="tab:blue",
                label="uTP queueing delay (ms)")
    bottom.axhline(100, color="0.5", linestyle="--", label="CCONTROL_TARGET 100 ms")
    bottom.axvspan(result["tcp_start"], result["tcp_stop"], color="0.92")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("seconds")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role")
    parser.add_argument("--start", type=float)
    parser.add_argument("--result")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--tcp-start", type=float, default=15.0)
    parser.add_argument("--tcp-stop", type=float, default=45.0)
    parser.add_argument("--rate", default="20mbit")
    parser.add_argument("--tcp-cc", default="cubic", help="TCP congestion control")
    parser.add_argument("--flows", nargs="*", default=["utp", "tcp"],
                        help="which flows run (one alone gives its baseline)")
    parser.add_argument("--debug", action="store_true", help="print the queue and sockets")
    parser.add_argument("--out", type=Path, help="the plot (PNG)")
    parser.add_argument("--json", type=Path, help="the samples")
    parser.add_argument("--replot", type=Path, help="only draw --out from this JSON")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.out)
        return
    if args.role:
        role = {"utp-receiver": utp_receiver, "utp-sender": utp_sender,
                "tcp-receiver": tcp_receiver, "tcp-sender": tcp_sender}[args.role]
        if asyncio.iscoroutinefunction(role):
            asyncio.run(role(args))
        else:
            role(args)
        return
    if not in_namespace():
        script = "ip link set lo mtu 1500 && ip link set lo up && exec \"$@\""
        os.execvp("timeout", ["timeout", "-k", "5", str(int(args.duration + 90)), "unshare",
                              "-n", "sh", "-c", script, "sh", sys.executable, *sys.argv])
    import tempfile

    with tempfile.TemporaryDirectory(prefix="utp-fair-") as tmp:
        result = run_all(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.out:
        plot(result, args.out)
    print(json.dumps(result["phase_means_MB_per_s"]))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
