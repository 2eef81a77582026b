"""The BitTorrent matrix: the peer-wire suite against libtorrent 2.0, aria2 1.36,
transmission 3.00 and p2pkit's own seeder.

Inside ``unshare -n`` on loopback only (tests/interop/conftest.py; settings as in
tests/interop and ../shared/INTEROP.md: no DHT, LSD, UPnP, NAT-PMP, PEX, encryption): a
libtorrent session seeding the hybrid test torrent at 127.0.0.3:6881, aria2 seeding the v1
test torrent at 127.0.0.4:6881, p2pkit's ``TorrentClient`` seeding the hybrid torrent at
127.0.0.5:6881 and a transmission-daemon seeding the v1 torrent at 127.0.0.6:6881, all judged
at the same time. transmission unchokes only at its ten-second choke rounds, so one case after
the other would take a quarter of an hour; its cases run in :data:`TRANSMISSION_SHARDS`
concurrent runners instead (each connection from its own 127.42.x.y address, fewer runners
than its upload slots); aria2's in :data:`ARIA2_SHARDS`. The runner restarts a seeder that
dies. The matrix reports go to ``$P2PKIT_CONFORMANCE_ARTIFACTS/bittorrent``
(tests/conformance/real_matrix.py); the MUST cases each seeder fails must equal the committed
record docs/conformance-matrix/bittorrent.json, which docs/conformance-matrix.md draws and
docs/conformance.md's findings cite.

Opt-in outside CI (``P2PKIT_INTEROP=1``): it starts third-party clients. This file is also the
scenario script run inside the namespace: ``python tests/conformance/test_real_peers.py OUT
[NAME,…]``.
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
P2PKIT = ("127.0.0.5", 6881)
TRANSMISSION = ("127.0.0.6", 6881)
#: Concurrent runners against transmission (its upload slots per torrent: 14).
TRANSMISSION_SHARDS = 10
#: Concurrent runners against aria2: one case takes it about a second, so one case after the
#: other (two and a half minutes) made it the matrix's longest run.
ARIA2_SHARDS = 3
#: transmission answers a ut_metadata request 1.5 to 3 s later (on a later peer pulse): its
#: steps wait longer than the others' 2 s.
TRANSMISSION_TIMEOUT = 5.0
COMMAND = "P2PKIT_UPDATE_MATRIX=1 CI=true python -m pytest tests/conformance/test_real_peers.py"
#: transmission-daemon and its RPC poller (tests/interop/bittorrent_clients.py) as one process:
#: READY once the torrent is verified; TERM stops both. A restart starts from a fresh state.
TRANSMISSION_SEEDER = r'''
CFG=$1; RPC=$2; TORRENT=$3; DIR=$4; CONTROL=$5
rm -rf "$CFG/torrents" "$CFG/resume"
transmission-daemon -f -g "$CFG" >/dev/null 2>&1 & D=$!
bash "$CONTROL" "$RPC" "$TORRENT" "$DIR" seed & C=$!
trap 'kill $C $D 2>/dev/null; wait $C $D; exit 0' TERM INT
wait $C
kill $D; wait $D
'''

#: MUST cases each implementation fails (the findings page lists the evidence).
LIBTORRENT_MUST_FAILURES: set[str] = set()
P2PKIT_MUST_FAILURES: set[str] = set()
TRANSMISSION_MUST_FAILURES = {
    "bittorrent/bep6/piece/unrequested-closes"}
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
        self._restarting = asyncio.Lock()

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
        """Restart the seeder (once, when several runners find it dead at the same time)."""
        generation = self.restarts
        async with self._restarting:
            if self.restarts == generation:
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


def _transmission(work: Path, torrent: Path) -> Seeder:
    from tests.interop.bittorrent_clients import (
        TRANSMISSION_CONTROL,
        Peer,
        transmission_settings,
    )

    # Every case opens its own connections from a fresh address, and transmission frees a
    # closed peer only at its next reconnect pulse: with its default limit of 50 peers per
    # torrent, ten concurrent runners sometimes found the torrent full and the handshake
    # closed unanswered (a failure of the harness's set-up, not of the case).
    peer = Peer(name="transmission", kind="transmission", role="seed", host=TRANSMISSION[0],
                port=TRANSMISSION[1], data_dir=work / "v1-transmission", torrent=torrent,
                settings={"peer-limit-per-torrent": 1000, "peer-limit-global": 2000})
    config = work / "transmission"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(transmission_settings(peer)))
    (work / "control.sh").write_text(TRANSMISSION_CONTROL)
    (work / "seeder.sh").write_text(TRANSMISSION_SEEDER)
    rpc = f"{TRANSMISSION[0]}:{TRANSMISSION[1] + 1000}"
    return Seeder(["bash", str(work / "seeder.sh"), str(config), rpc, str(torrent),
                   str(peer.data_dir), str(work / "control.sh")], TRANSMISSION, "READY")


async def _sharded(cases: list, seeder: Seeder, wire: object, shards: int,
                   timeout: float) -> object:
    """``cases`` in ``shards`` concurrent runners against one seeder, as one report in
    catalog order (the cases are independent: each opens its own connections)."""
    from p2pkit.conformance.runner import RunReport
    from p2pkit.conformance.stream_runner import run_stream_cases

    began = time.monotonic()
    parts = await asyncio.gather(*(
        run_stream_cases(cases[i::shards], seeder.address, wire, name="bittorrent",
                         timeout=timeout, restart=seeder.restart) for i in range(shards)))
    by_id = {r.case.id: r for part in parts for r in part.results}
    return RunReport(protocol="bittorrent", target=parts[0].target, strict=False,
                     started=min(p.started for p in parts),
                     duration=time.monotonic() - began,
                     results=[by_id[c.id] for c in cases])


async def scenario(out: Path, only: set[str] | None = None) -> dict:
    from p2pkit.bittorrent.peer.client import TorrentClient
    from p2pkit.bittorrent.wire.metainfo import Metainfo
    from p2pkit.conformance import catalog
    from p2pkit.conformance.bittorrent import BitTorrentWire, TorrentFacts
    from p2pkit.conformance.stream_runner import run_stream_cases
    from tests.conformance.bt_helpers import write_torrent
    from tests.conformance.real_matrix import p2pkit_version, record, write_artifacts
    from tests.interop.bittorrent_clients import LIBTORRENT_PEER

    work = Path(tempfile.mkdtemp())
    torrents = {}
    for version in ("hybrid", "v1"):
        (work / version).mkdir()
        torrents[version] = work / f"{version}.torrent"
        torrents[version].write_bytes(write_torrent(work / version, version))
    (work / "v1-transmission").mkdir()
    write_torrent(work / "v1-transmission", "v1")
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
        "transmission": (_transmission(work, torrents["v1"]), "v1",
                         _version(["transmission-daemon", "-V"])),
    }
    implementations = {"libtorrent": "libtorrent (python3-libtorrent), hybrid torrent",
                       "aria2": "aria2, v1 torrent", "transmission": "transmission-daemon, "
                       "v1 torrent", "p2pkit": "p2pkit TorrentClient, hybrid torrent"}
    versions = {name: version for name, (_, _, version) in seeders.items()}
    versions["p2pkit"] = p2pkit_version()
    cases = list(catalog("bittorrent"))

    async def judge(name: str) -> object:
        seeder, version, _ = seeders[name]
        wire = BitTorrentWire(TorrentFacts.from_file(torrents[version]))
        await seeder.start()
        try:
            if name == "transmission":
                await asyncio.sleep(2)  # it closes the very first connection after verifying
                report = await _sharded(cases, seeder, wire, TRANSMISSION_SHARDS,
                                        TRANSMISSION_TIMEOUT)
            elif name == "aria2":
                report = await _sharded(cases, seeder, wire, ARIA2_SHARDS, 2.0)
            else:
                report = await run_stream_cases(cases, seeder.address, wire,
                                                name="bittorrent", timeout=2.0,
                                                restart=seeder.restart)
        finally:
            await seeder.stop()
        report.label = name
        return report

    async def own() -> object:
        meta = Metainfo.parse(torrents["hybrid"].read_bytes())
        client = TorrentClient(meta, work / "hybrid", listen=P2PKIT, trackers=False)
        await client.start()
        try:
            report = await run_stream_cases(
                cases, P2PKIT, BitTorrentWire(TorrentFacts.from_file(torrents["hybrid"])),
                name="bittorrent", timeout=2.0)
        finally:
            await client.close()
        report.label = "p2pkit"
        return report

    names = [name for name in seeders if not only or name in only]
    jobs = [judge(name) for name in names]
    if not only or "p2pkit" in only:
        jobs.append(own())
    reports = await asyncio.gather(*jobs)
    matrix = write_artifacts(reports, out)
    summary = record(matrix, {run.label: {"implementation": implementations[run.label],
                                          "version": versions[run.label]}
                              for run in matrix.runs}, COMMAND)
    summary["restarts"] = {name: seeders[name][0].restarts for name in names}
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
    for tool in ("aria2c", "transmission-daemon", "transmission-remote"):
        require(subprocess.run(["sh", "-c", f"command -v {tool}"]).returncode == 0, tool)
    from tests.conformance.real_matrix import artifacts_dir, check_against_record

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = artifacts_dir("bittorrent", tmp_path)
    done = run_in_netns([sys.executable, __file__, str(out)], timeout=400, env=env,
                        cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (out / "matrix.html").is_file() and (out / "matrix.xml").is_file()
    assert [t["label"] for t in seen["targets"]] == ["libtorrent", "aria2", "transmission",
                                                     "p2pkit"]
    for target in seen["targets"]:
        assert sum(target["counts"].values()) >= 80 and target["counts"]["skipped"] == 0
    check_against_record(seen, {"libtorrent": LIBTORRENT_MUST_FAILURES,
                                "aria2": ARIA2_MUST_FAILURES,
                                "transmission": TRANSMISSION_MUST_FAILURES,
                                "p2pkit": P2PKIT_MUST_FAILURES})


if __name__ == "__main__":
    _main()
