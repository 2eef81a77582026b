"""The BitTorrent peer-wire suite against real seeders: libtorrent 2.0 and aria2 1.36.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py; settings as in
tests/interop and ../shared/INTEROP.md: no DHT, LSD, UPnP, NAT-PMP, PEX, encryption): a
libtorrent session seeding the hybrid test torrent at 127.0.0.3:6881, aria2 seeding the v1
test torrent at 127.0.0.4:6881. The runner restarts a seeder that dies. The MUST cases each one
fails are the findings of docs/conformance.md; this test keeps that page true.

Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts third-party clients. This file is also the
scenario script run inside the namespace: ``python tests/conformance/test_real_peers.py OUT
[NAME,…]``. (transmission 3.00 is not in it: it unchokes only at its ten-second choke rounds,
so a full run takes about a quarter of an hour; see docs/conformance.md.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBTORRENT = ("127.0.0.3", 6881)
ARIA2 = ("127.0.0.4", 6881)

#: MUST cases each implementation fails (the findings page lists the evidence).
LIBTORRENT_MUST_FAILURES: set[str] = set()
ARIA2_MUST_FAILURES = {"bittorrent/bep3/handshake/with-first-messages",
                       "bittorrent/bep6/piece/unrequested-closes",
                       "bittorrent/bep6/disabled/suggest",
                       "bittorrent/bep9/request/out-of-range",
                       "bittorrent/bep9/request/unknown-msg-type-ignored"}


class Seeder:
    """A third-party seeder in a subprocess, restarted when it dies."""

    def __init__(self, argv: list[str], address: tuple[str, int], ready: str | None) -> None:
        self.argv = argv
        self.address = address
        self.ready = ready
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.log: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
            self.log.append(line)
            if not line or (self.ready and self.ready in line):
                break
            if self.ready is None and "SEED(" in line:  # aria2's progress line once seeding
                break
        asyncio.get_running_loop().create_task(self._drain())
        await asyncio.sleep(0.5)

    async def _drain(self) -> None:
        while self.proc and self.proc.returncode is None:
            line = await self.proc.stdout.readline()
            if not line:
                break
            self.log.append(line.decode())
            del self.log[:-200]

    async def restart(self) -> tuple[str, int]:
        await self.stop()
        self.restarts += 1
        await self.start()
        return self.address

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def _version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    return (done.stdout or done.stderr).split("\n")[0].strip()


async def scenario(out: Path, only: set[str] | None = None) -> dict:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
    from p2pkit.conformance.reporters import html, json_report
    from p2pkit.conformance.stream_runner import run_stream_cases
    from tests.conformance.bt_helpers import write_torrent
    from tests.interop.bittorrent_clients import LIBTORRENT_PEER

    work = Path(tempfile.mkdtemp())
    torrents = {}
    for version in ("hybrid", "v1"):
        (work / version).mkdir()
        torrents[version] = work / f"{version}.torrent"
        torrents[version].write_bytes(write_torrent(work / version, version))
    lt_cfg = {"role": "seed", "host": LIBTORRENT[0], "port": LIBTORRENT[1],
              "save": str(work / "hybrid"), "torrent": str(torrents["hybrid"]), "timeout": 600}
    seeders = {
        "libtorrent": (Seeder(["/usr/bin/python3", "-c", LIBTORRENT_PEER, json.dumps(lt_cfg)],
                              LIBTORRENT, "READY"), "hybrid",
                       _version(["/usr/bin/python3", "-c",
                                 "import libtorrent; print(libtorrent.__version__)"])),
        "aria2": (Seeder(["aria2c", f"--interface={ARIA2[0]}", f"--listen-port={ARIA2[1]}",
                          "--disable-ipv6=true", "--enable-dht=false", "--enable-dht6=false",
                          "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                          f"--dir={work / 'v1'}", "--file-allocation=none",
                          "--seed-ratio=0.0", "--check-integrity=true",
                          "--summary-interval=1", "--console-log-level=notice",
                          str(torrents["v1"])], ARIA2, None), "v1",
                  _version(["aria2c", "--version"])),
    }
    summary = {}
    for name, (seeder, version, client_version) in seeders.items():
        if only and name not in only:
            continue
        await seeder.start()
        wire = BitTorrentWire(TorrentFacts.from_file(torrents[version]))
        try:
            report = await run_stream_cases(catalog("bittorrent"), seeder.address, wire,
                                            name="bittorrent", timeout=2.0,
                                            restart=seeder.restart)
        finally:
            await seeder.stop()
        json_report.write(report, out / f"{name}.json")
        html.write(report, out / f"{name}.html")
        summary[name] = {"version": client_version, "restarts": seeder.restarts,
                         "duration": round(report.duration, 1), "counts": report.counts(),
                         "verdicts": {r.case.id: r.verdict for r in report.results},
                         "reasons": {r.case.id: r.reason for r in report.results
                                     if r.verdict not in ("pass", "informational")}}
    return summary


def _main() -> None:
    only = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else None
    print(json.dumps(asyncio.run(scenario(Path(sys.argv[1]), only))))


@pytest.mark.interop
def test_suite_against_real_seeders(tmp_path) -> None:
    from tests.interop.conftest import _can_unshare, in_ci, require, run_in_netns

    if not in_ci() and not os.environ.get("P2PKIT_INTEROP"):
        pytest.skip("starts third-party seeders: set P2PKIT_INTEROP=1 (always on in CI)")
    require(_can_unshare(), "unshare -n and ip")
    check = subprocess.run(["/usr/bin/python3", "-c", "import libtorrent"], capture_output=True)
    require(check.returncode == 0, "python3-libtorrent")
    require(subprocess.run(["sh", "-c", "command -v aria2c"]).returncode == 0, "aria2c")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = run_in_netns([sys.executable, __file__, str(tmp_path)], timeout=400, env=env,
                        cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    for name, expected in (("libtorrent", LIBTORRENT_MUST_FAILURES),
                           ("aria2", ARIA2_MUST_FAILURES)):
        verdicts = seen[name]["verdicts"]
        assert len(verdicts) >= 80 and "skipped" not in verdicts.values()
        failing = {case for case, v in verdicts.items() if v in ("fail", "target-died")}
        assert failing == expected, (name, failing, seen[name]["reasons"])


if __name__ == "__main__":
    _main()
