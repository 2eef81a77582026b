"""Loopback BitTorrent downloads (BEP 3): p2pkit vs libtorrent vs aria2 from one seeder, and a
10-peer p2pkit swarm.

Two scenarios, each run inside ONE ``unshare -n`` network namespace whose only interface is
``lo`` (brought up; MTU left at the kernel's loopback default, 65536, unless ``--mtu``), every
peer on its own 127.0.0.x address, every process bounded in time and started (and, if need be,
killed) by this script only:

``download`` (the issue's comparison)
    One libtorrent seeder (127.0.0.2:6881, :data:`LT_SEED_SETTINGS`: libtorrent's own
    ``high_performance_seed`` profile, plaintext TCP only) serves a deterministic random file
    (:func:`ensure_content`, cached under ``.benchmarks/peer-download/``; v1 torrent, 1 MiB
    pieces). Then, one after the other, each downloader fetches it into a fresh directory:

    1. p2pkit: ``p2pkit bt download T -o DIR --listen 127.0.0.3:6881 --peer 127.0.0.2:6881
       --no-trackers -q --json`` (exits 0 only when every piece passed its SHA-1 check);
    2. libtorrent 2.0 (python3-libtorrent, 127.0.0.4; :data:`LT_LEECH_SETTINGS`), dialling the
       seeder and exiting at ``torrent_finished_alert`` (every piece checked);
    3. aria2 1.36 (127.0.0.5), which cannot be given a peer: it learns the seeder from the p2pkit
       HTTP tracker on 127.0.0.1:6969 (the seeder announces there once at start, so the
       tracker's interval is long enough never to expire it; p2pkit and libtorrent are given
       the seeder's address directly), ``--seed-time=0`` so it exits when verified.

    Each downloader is timed from its process start to its exit (it exits once everything is
    verified); its peak RSS is ``ru_maxrss`` from ``wait4`` and, by polling
    ``/proc/PID/status``, the largest ``RssAnon`` (heap) and ``RssFile`` (file pages it maps:
    libtorrent 2.0 writes through mmap) seen. The result's SHA-256 is checked afterwards.

``swarm``
    One p2pkit seeder (127.0.0.2) and 9 p2pkit leechers (127.0.0.11-19), each leecher started
    once the previous one listens and given the seeder and the (up to) :data:`SWARM_DIAL`
    previously started leechers with ``--peer``. Per peer: seconds to verified completion and
    bytes uploaded/downloaded, measured from outside by polling ``ss -tin`` (TCP
    ``bytes_acked`` / ``bytes_received`` of every socket, by local address), so that "leechers
    upload to each other" is visible whatever the client reports.

Run standalone (it re-runs itself under ``unshare -n`` when it sees more than ``lo``)::

    P2PKIT_BENCH_SIZE_MB=256 /work/venv/bin/python benchmarks/peer_download.py download
    /work/venv/bin/python benchmarks/peer_download.py swarm --size-mb 256

It prints one JSON document on its last line; ``benchmarks/test_bench_peer_download.py`` runs it
under pytest-benchmark. Figures: ``docs/peer-performance.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from p2pkit.bittorrent.wire.create import create_torrent  # noqa: E402
from p2pkit.bittorrent.wire.metainfo import Metainfo  # noqa: E402

#: Where the content file and its torrent are cached (ignored by git).
CACHE = ROOT / ".benchmarks" / "peer-download"
#: Environment variable overriding the content size in MiB (default :data:`DEFAULT_SIZE_MB`).
SIZE_ENV = "P2PKIT_BENCH_SIZE_MB"
DEFAULT_SIZE_MB = 1024
SWARM_DEFAULT_SIZE_MB = 256
#: Seed of the deterministic random content.
CONTENT_SEED = 4
PIECE_LENGTH = 1 << 20
#: Python with the libtorrent binding (Debian's python3-libtorrent).
LT_PYTHON = os.environ.get("P2PKIT_LIBTORRENT_PYTHON", "/usr/bin/python3")
P2PKIT_COMMAND = (sys.executable, "-c", "import sys; from p2pkit.cli import main; sys.exit(main())")
SEEDER = ("127.0.0.2", 6881)
TRACKER = ("127.0.0.1", 6969)
DOWNLOADERS = {"p2pkit": ("127.0.0.3", 6881), "libtorrent": ("127.0.0.4", 6881),
               "aria2": ("127.0.0.5", 6881)}
#: Swarm: leechers and how many earlier leechers each one dials.
SWARM_LEECHERS = 9
SWARM_DIAL = 3
#: Seconds a process may take to become ready (seeder checked, leecher listening).
READY_TIMEOUT = 60.0
#: Seconds between TERM and KILL of what this script started.
KILL_GRACE = 5.0
POLL = 0.02
SS_POLL = 0.2

#: libtorrent's own profile for seeding fast, with what a loopback run needs (see INTEROP.md):
#: plaintext, TCP only (uTP on loopback is LEDBAT-throttled), no DHT/LSD/UPnP/NAT-PMP.
LT_COMMON_SETTINGS = {
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": "", "in_enc_policy": 2, "out_enc_policy": 2,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
}
#: The seeder also accepts an MSE/PE handshake (aria2 always opens with one) but selects
#: plaintext in it, so every downloader gets the same unencrypted stream; refusing MSE costs
#: aria2 a reconnect one second later.
LT_SEED_SETTINGS = {"profile": "high_performance_seed", **LT_COMMON_SETTINGS,
                    "in_enc_policy": 1, "allowed_enc_level": 1}
LT_LEECH_SETTINGS = {"profile": "high_performance_seed", **LT_COMMON_SETTINGS}

#: One libtorrent session seeding or leeching one torrent. Argument: a JSON document with role,
#: host, port, torrent, save, dial, trackers, settings. Prints READY when it seeds (seeder) or
#: listens (leecher), DONE at ``torrent_finished_alert``; a leecher then exits 0.
LIBTORRENT_PEER = r'''
import json, signal, sys, time
import libtorrent as lt

cfg = json.loads(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
settings = dict(cfg["settings"])
profile = settings.pop("profile", None)
pack = getattr(lt, profile)() if profile else lt.default_settings()
pack.update(settings)
pack.update({"listen_interfaces": "%s:%d" % (cfg["host"], cfg["port"]),
             "outgoing_interfaces": cfg["host"],
             "alert_mask": lt.alert_category.error | lt.alert_category.status})
s = lt.session(pack)
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(cfg["torrent"])
atp.save_path = cfg["save"]
atp.trackers = cfg["trackers"]
h = s.add_torrent(atp)
for peer in cfg["dial"]:
    host, port = peer.rsplit(":", 1)
    h.connect_peer((host, int(port)))
leech = cfg["role"] == "leech"
if leech:
    print("READY", flush=True)
while True:
    s.wait_for_alert(500)
    for a in s.pop_alerts():
        if isinstance(a, lt.torrent_finished_alert):
            print("DONE", flush=True)
            if leech:
                sys.exit(0)
        elif isinstance(a, lt.torrent_error_alert):
            print("ERROR", a.message(), flush=True)
    if not leech and h.status().is_seeding and not getattr(s, "ready", False):
        s.ready = True
        print("READY", lt.__version__, flush=True)
'''


# ---------------------------------------------------------------------------------------------
# Content


@dataclass(frozen=True)
class Content:
    """The cached content file (``directory / name``), its torrent and digests."""

    directory: Path
    name: str
    torrent: Path
    size: int
    sha256: str
    info_hash: str

    @property
    def path(self) -> Path:
        return self.directory / self.name


def size_mb_from_env(default: int = DEFAULT_SIZE_MB) -> int:
    """:data:`SIZE_ENV` if set (a positive integer of MiB), else ``default``."""
    text = os.environ.get(SIZE_ENV, "")
    return int(text) if text.strip().isdigit() and int(text) > 0 else default


def ensure_content(size_mb: int, cache: Path = CACHE) -> Content:
    """A ``size_mb`` MiB file of random bytes (seed :data:`CONTENT_SEED`) and its v1 torrent with
    1 MiB pieces, made once and reused (a JSON sidecar records the digests)."""
    name = f"content-{size_mb}MiB.bin"
    directory = cache / f"{size_mb}MiB"
    sidecar = directory / "content.json"
    torrent = directory / f"{name}.torrent"
    size = size_mb << 20
    if sidecar.exists() and torrent.exists() and (directory / name).exists() and \
            (directory / name).stat().st_size == size:
        return Content(directory=directory, torrent=torrent, **json.loads(sidecar.read_text()))
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(CONTENT_SEED)
    digest = hashlib.sha256()
    with open(directory / name, "wb") as f:
        for _ in range(size_mb):
            chunk = rng.randbytes(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    data = create_torrent(directory / name, piece_length=PIECE_LENGTH, version="v1")
    torrent.write_bytes(data)
    record = {"name": name, "size": size, "sha256": digest.hexdigest(),
              "info_hash": Metainfo.parse(data).info_hash_v1.hex()}
    sidecar.write_text(json.dumps(record))
    return Content(directory=directory, torrent=torrent, **record)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Processes


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Run:
    """One process this script started, and what was measured of it."""

    name: str
    argv: list[str]
    log: Path
    started: float = 0.0
    seconds: float | None = None
    exit_status: int | None = None
    max_rss_kib: int = 0
    rss_anon_kib: int = 0
    rss_file_kib: int = 0
    user_s: float = 0.0
    system_s: float = 0.0
    stopped: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> Run:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=str(ROOT), env=env,
                                            preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def poll(self) -> bool:
        """Sample /proc/PID/status; reap the process if it exited (True then)."""
        if self.exit_status is not None:
            return True
        self._sample()
        pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.seconds = time.monotonic() - self.started
        self.exit_status = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.exit_status
        self.max_rss_kib = usage.ru_maxrss
        self.user_s, self.system_s = usage.ru_utime, usage.ru_stime
        return True

    def _sample(self) -> None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        for key, attr in (("RssAnon", "rss_anon_kib"), ("RssFile", "rss_file_kib")):
            match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
            if match:
                setattr(self, attr, max(getattr(self, attr), int(match.group(1))))

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL)
        return True

    def wait_for_log(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return True
            if self.poll():
                return False
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """TERM, then KILL after :data:`KILL_GRACE` (only this PID, which we started)."""
        if self.process is None or self.poll():
            return
        self.stopped = True
        self.process.send_signal(signal.SIGTERM)
        if not self.wait(KILL_GRACE):
            self.process.kill()
            self.wait(KILL_GRACE)

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def figures(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("process", "argv", "log")}


def listening(host: str, port: int) -> bool:
    """A TCP socket listens on ``host:port`` (from /proc/net/tcp, without connecting)."""
    want = f"{''.join(f'{int(b):02X}' for b in reversed(host.split('.')))}:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == want and line.split()[3] == "0A" for line in lines)


def wait_listening(run: Run, host: str, port: int, timeout: float = READY_TIMEOUT,
                   tick: Callable[[], None] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(host, port):
            return True
        if run.poll():
            return False
        if tick is not None:
            tick()
        time.sleep(0.02)
    return False


def libtorrent_argv(work: Path, role: str, address: tuple[str, int], torrent: Path, save: Path,
                    *, dial: list[str] = (), trackers: list[str] = (),
                    settings: dict | None = None) -> list[str]:
    script = work / "lt_peer.py"
    if not script.exists():
        script.write_text(LIBTORRENT_PEER)
    cfg = {"role": role, "host": address[0], "port": address[1], "torrent": str(torrent),
           "save": str(save), "dial": list(dial), "trackers": list(trackers),
           "settings": settings or {}}
    return [LT_PYTHON, str(script), json.dumps(cfg)]


def p2pkit_download_argv(torrent: Path, out: Path, address: tuple[str, int],
                         peers: list[str], *, timeout: float) -> list[str]:
    argv = [*P2PKIT_COMMAND, "bt", "download", str(torrent), "-o", str(out), "--listen",
            f"{address[0]}:{address[1]}", "--no-trackers", "-q", "--json",
            "--timeout", str(int(timeout))]
    for peer in peers:
        argv += ["--peer", peer]
    return argv


def aria2_argv(torrent: Path, out: Path, address: tuple[str, int], tracker: str) -> list[str]:
    return ["aria2c", f"--interface={address[0]}", f"--listen-port={address[1]}",
            f"--dir={out}", f"--bt-tracker={tracker}", "--enable-dht=false",
            "--enable-dht6=false", "--disable-ipv6=true", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--seed-time=0", "--file-allocation=none",
            "--bt-require-crypto=false", "--summary-interval=0", "--console-log-level=warn",
            "--allow-overwrite=true", str(torrent)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    try:
        lt = subprocess.run([LT_PYTHON, "-c", "import libtorrent; print(libtorrent.__version__)"],
                            capture_output=True, text=True, timeout=20)
        out["libtorrent"] = lt.stdout.strip()
    except OSError:
        pass
    if shutil.which("aria2c"):
        first = subprocess.run(["aria2c", "--version"], capture_output=True, text=True,
                               timeout=20).stdout.splitlines()
        out["aria2"] = first[0].split()[-1] if first else "?"
    return out


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "loadavg_before": os.getloadavg(),
            "lo_mtu": int(Path("/sys/class/net/lo/mtu").read_text())}


# ---------------------------------------------------------------------------------------------
# The download comparison


def download_timeout(size: int) -> float:
    """Seconds one downloader gets: generous (a floor of 1 MB/s plus a minute)."""
    return 60 + size / 1e6


def run_download(content: Content, work: Path, downloaders: list[str],
                 profile: Path | None = None) -> dict:
    """Seeder up, then each downloader in turn; returns the figures."""
    started: list[Run] = []
    results: dict[str, dict] = {}
    timeout = download_timeout(content.size)
    tracker_url = f"http://{TRACKER[0]}:{TRACKER[1]}/announce"
    try:
        if "aria2" in downloaders:
            tracker = Run("tracker", [sys.executable, "-c",
                                      "from p2pkit.cli.bt_tracker import tracker; tracker()",
                                      "--listen", f"{TRACKER[0]}:{TRACKER[1]}", "--no-udp",
                                      "--interval", "1800"], work / "tracker.log").start(_env())
            started.append(tracker)
            if not wait_listening(tracker, *TRACKER):
                raise RuntimeError(f"tracker not listening: {tracker.tail()}")
        seeder = Run("seeder", libtorrent_argv(
            work, "seed", SEEDER, content.torrent, content.directory,
            trackers=[tracker_url] if "aria2" in downloaders else [],
            settings=LT_SEED_SETTINGS), work / "seeder.log").start()
        started.append(seeder)
        if not seeder.wait_for_log("READY", READY_TIMEOUT + content.size / 50e6):
            raise RuntimeError(f"libtorrent seeder not ready: {seeder.tail()}")
        seeder_version = seeder.tail().split("READY", 1)[1].split()[0]
        for name in downloaders:
            out = work / f"dl-{name}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            address = DOWNLOADERS[name]
            peer = f"{SEEDER[0]}:{SEEDER[1]}"
            if name == "p2pkit":
                argv = p2pkit_download_argv(content.torrent, out, address, [peer],
                                            timeout=timeout)
                if profile is not None:
                    argv = _profiled(argv, profile, work)
            elif name == "libtorrent":
                argv = libtorrent_argv(work, "leech", address, content.torrent, out,
                                       dial=[peer], settings=LT_LEECH_SETTINGS)
            else:
                argv = aria2_argv(content.torrent, out, address, tracker_url)
            run = Run(name, argv, work / f"{name}.log").start(_env())
            started.append(run)
            if not run.wait(timeout):
                run.stop()
            figures = run.figures()
            target = out / content.name
            figures["sha256_ok"] = target.exists() and sha256_of(target) == content.sha256
            figures["complete"] = run.exit_status == 0 and not run.stopped and \
                figures["sha256_ok"]
            if figures["complete"]:
                figures["mb_per_s"] = round(content.size / run.seconds / 1e6, 2)
                figures["mib_per_s"] = round(content.size / run.seconds / (1 << 20), 2)
            else:
                figures["log_tail"] = run.tail()
            figures["peak_rss_mb"] = round(run.max_rss_kib / 1024, 1)
            results[name] = figures
            shutil.rmtree(out, ignore_errors=True)
        seeder_alive = not seeder.poll()
    finally:
        for run in reversed(started):
            run.stop()
    summary = summarize(results)
    return {"scenario": "download", "size": content.size, "piece_length": PIECE_LENGTH,
            "info_hash": content.info_hash, "seeder": {"kind": "libtorrent",
                                                       "version": seeder_version,
                                                       "alive_at_end": seeder_alive,
                                                       "cpu_s": round(seeder.user_s +
                                                                      seeder.system_s, 2)},
            "downloaders": results, "summary": summary}


PROFILE_LAUNCHER = '''
import cProfile, sys
from p2pkit.cli import main
out = sys.argv.pop(1)
profiler = cProfile.Profile()
try:
    profiler.runcall(main)
except SystemExit as e:
    code = e.code
else:
    code = 0
profiler.dump_stats(out)
sys.exit(code)
'''


def _profiled(argv: list[str], profile: Path, work: Path) -> list[str]:
    launcher = work / "profile_launcher.py"
    launcher.write_text(PROFILE_LAUNCHER)
    return [sys.executable, str(launcher), str(profile), *argv[3:]]


def summarize(results: dict[str, dict]) -> dict:
    """MB/s per downloader, p2pkit's ratio to each other one and to the fastest of them."""
    rates = {name: r["mb_per_s"] for name, r in results.items() if r.get("complete")}
    summary: dict = {"mb_per_s": rates,
                     "peak_rss_mb": {name: r["peak_rss_mb"] for name, r in results.items()},
                     "complete": {name: r["complete"] for name, r in results.items()}}
    if "p2pkit" in rates:
        others = {n: v for n, v in rates.items() if n != "p2pkit"}
        for name, rate in others.items():
            summary[f"p2pkit_vs_{name}"] = round(rates["p2pkit"] / rate, 3)
        if others:
            fastest = max(others, key=others.get)
            summary["fastest_other"] = fastest
            summary["p2pkit_vs_fastest"] = round(rates["p2pkit"] / others[fastest], 3)
    return summary


# ---------------------------------------------------------------------------------------------
# The p2pkit swarm


class SocketCounters:
    """Bytes sent (acked) and received per TCP connection, from ``ss -tin``, kept at their
    largest value seen (a connection closed between two polls loses its last bytes)."""

    _ADDR = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s+(\S+):(\d+)")

    def __init__(self) -> None:
        self.sockets: dict[tuple[str, int, str, int], list[int]] = {}
        self.next_poll = 0.0

    def tick(self) -> None:
        """:meth:`poll` if the last one is :data:`SS_POLL` seconds old."""
        if time.monotonic() >= self.next_poll:
            self.poll()
            self.next_poll = time.monotonic() + SS_POLL

    def poll(self) -> None:
        text = subprocess.run(["ss", "-tinH", "state", "all"], capture_output=True, text=True,
                              timeout=10).stdout
        key = None
        for line in text.splitlines():
            match = self._ADDR.match(line)
            if match:
                key = (match.group(1), int(match.group(2)), match.group(3), int(match.group(4)))
                continue
            if key is None:
                continue
            acked = re.search(r"bytes_acked:(\d+)", line)
            received = re.search(r"bytes_received:(\d+)", line)
            if acked or received:
                value = self.sockets.setdefault(key, [0, 0])
                value[0] = max(value[0], int(acked.group(1)) if acked else 0)
                value[1] = max(value[1], int(received.group(1)) if received else 0)
            key = None

    def by_host(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (host, _port, remote, _rport), (sent, received) in self.sockets.items():
            entry = out.setdefault(host, {"uploaded": 0, "downloaded": 0, "connections": 0,
                                          "uploaded_to": {}})
            entry["uploaded"] += sent
            entry["downloaded"] += received
            entry["connections"] += 1
            entry["uploaded_to"][remote] = entry["uploaded_to"].get(remote, 0) + sent
        return out


def run_swarm(content: Content, work: Path, leechers: int = SWARM_LEECHERS,
              dial: int = SWARM_DIAL) -> dict:
    """One p2pkit seeder, ``leechers`` p2pkit leechers; every leecher to completion."""
    timeout = 120 + leechers * content.size / 5e6
    started: list[Run] = []
    counters = SocketCounters()
    peers: list[tuple[str, int]] = []
    try:
        seeder = Run("seeder", [*P2PKIT_COMMAND, "bt", "seed", str(content.torrent), "--data",
                                str(content.directory), "--listen", f"{SEEDER[0]}:{SEEDER[1]}",
                                "--no-trackers", "-q", "--json", "--duration",
                                str(int(timeout + READY_TIMEOUT))],
                     work / "seeder.log").start(_env())
        started.append(seeder)
        if not wait_listening(seeder, *SEEDER, timeout=READY_TIMEOUT + content.size / 50e6):
            raise RuntimeError(f"p2pkit seeder not listening: {seeder.tail()}")
        t0 = time.monotonic()
        runs: list[tuple[Run, tuple[str, int]]] = []
        for i in range(leechers):
            address = (f"127.0.0.{11 + i}", 6881)
            dial_to = [f"{SEEDER[0]}:{SEEDER[1]}"] + [f"{h}:{p}" for h, p in peers[-dial:]]
            out = work / f"leecher{i + 1}"
            shutil.rmtree(out, ignore_errors=True)
            run = Run(f"leecher{i + 1}", p2pkit_download_argv(content.torrent, out, address,
                                                              dial_to, timeout=timeout),
                      work / f"leecher{i + 1}.log").start(_env())
            started.append(run)
            runs.append((run, address))
            if not wait_listening(run, *address, tick=counters.tick):
                raise RuntimeError(f"{run.name} not listening: {run.tail()}")
            peers.append(address)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            counters.tick()
            if all(run.poll() for run, _ in runs):
                break
            time.sleep(POLL)
        counters.poll()
        all_done = time.monotonic() - t0
        for run, _ in runs:
            run.stop()
        seeder.stop()
    finally:
        for run in reversed(started):
            run.stop()
    traffic = counters.by_host()
    per_peer = {}
    for run, address in runs:
        figures = run.figures()
        out = work / run.name
        target = out / content.name
        figures["sha256_ok"] = target.exists() and sha256_of(target) == content.sha256
        figures["complete"] = run.exit_status == 0 and not run.stopped and figures["sha256_ok"]
        figures["started_after_s"] = round(run.started - t0, 3)
        figures["address"] = f"{address[0]}:{address[1]}"
        figures["peak_rss_mb"] = round(run.max_rss_kib / 1024, 1)
        host = traffic.get(address[0], {})
        figures["uploaded"] = host.get("uploaded", 0)
        figures["downloaded"] = host.get("downloaded", 0)
        figures["connections"] = host.get("connections", 0)
        if not figures["complete"]:
            figures["log_tail"] = run.tail()
        per_peer[run.name] = figures
        shutil.rmtree(out, ignore_errors=True)
    seed_traffic = traffic.get(SEEDER[0], {})
    leecher_upload = sum(p["uploaded"] for p in per_peer.values())
    times = [p["seconds"] for p in per_peer.values() if p["complete"]]
    summary = {
        "leechers": leechers, "complete": sum(p["complete"] for p in per_peer.values()),
        "all_complete_s": round(all_done, 2),
        "per_peer_s": {n: round(p["seconds"], 2) if p["seconds"] else None
                       for n, p in per_peer.items()},
        "fastest_peer_s": round(min(times), 2) if times else None,
        "slowest_peer_s": round(max(times), 2) if times else None,
        "seeder_uploaded": seed_traffic.get("uploaded", 0),
        "leechers_uploaded": leecher_upload,
        "leecher_share_of_upload": round(leecher_upload / max(
            leecher_upload + seed_traffic.get("uploaded", 0), 1), 3),
        "aggregate_mb_per_s": round(leechers * content.size / all_done / 1e6, 2),
        "max_peak_rss_mb": max(p["peak_rss_mb"] for p in per_peer.values()),
        "seeder_cpu_s": round(seeder.user_s + seeder.system_s, 2),
        "seeder_peak_rss_mb": round(seeder.max_rss_kib / 1024, 1),
    }
    return {"scenario": "swarm", "size": content.size, "piece_length": PIECE_LENGTH,
            "info_hash": content.info_hash, "dial": dial, "peers": per_peer,
            "seeder_uploaded_to": seed_traffic.get("uploaded_to", {}), "summary": summary}


# ---------------------------------------------------------------------------------------------
# Entry point


#: Set in the environment of the re-run inside the namespace (never re-run twice).
NETNS_ENV = "P2PKIT_BENCH_IN_NETNS"


def only_loopback() -> bool:
    """Only ``lo`` in this network namespace (/proc/net/dev is per namespace; /sys is not)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return [line.split(":", 1)[0].strip() for line in lines] == ["lo"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("download", "swarm"))
    parser.add_argument("--size-mb", type=int, default=None,
                        help=f"content size in MiB (default ${SIZE_ENV}, else 1024 for "
                             "download and 256 for swarm)")
    parser.add_argument("--downloaders", default=",".join(DOWNLOADERS),
                        help="comma-separated, in order (default: %(default)s)")
    parser.add_argument("--leechers", type=int, default=SWARM_LEECHERS)
    parser.add_argument("--profile", type=Path, help="cProfile p2pkit's downloader into FILE")
    parser.add_argument("--mtu", type=int, help="set lo's MTU (default: leave it)")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one "
                                                  "on the cache's filesystem)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds before the whole namespace is killed")
    args = parser.parse_args()
    default = DEFAULT_SIZE_MB if args.scenario == "download" else SWARM_DEFAULT_SIZE_MB
    size_mb = args.size_mb or size_mb_from_env(default)
    content = ensure_content(size_mb)
    if not only_loopback():
        if os.environ.get(NETNS_ENV):
            parser.error("still not alone in a network namespace after unshare -n")
        mtu = f"ip link set lo mtu {args.mtu} && " if args.mtu else ""
        script = f'{mtu}ip link set lo up && exec "$@"'
        done = subprocess.run(["timeout", "-k", "5", str(int(args.timeout)), "unshare", "-n",
                               "sh", "-c", script, "sh", sys.executable, __file__,
                               *sys.argv[1:], "--size-mb", str(size_mb)],
                              env={**os.environ, NETNS_ENV: "1"})
        sys.exit(done.returncode)
    # SIGTERM (the outer ``timeout``) unwinds, so that the ``finally`` blocks stop our peers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.mtu:
        subprocess.run(["ip", "link", "set", "lo", "mtu", str(args.mtu)], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=args.work or CACHE) as tmp:
        work = Path(tmp)
        info = {"machine": machine(), "versions": versions(), "size_mb": size_mb}
        if args.scenario == "download":
            downloaders = [d for d in args.downloaders.split(",") if d]
            report = run_download(content, work, downloaders, profile=args.profile)
        else:
            report = run_swarm(content, work, leechers=args.leechers)
    report.update(info)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
