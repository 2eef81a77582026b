"""Every server stops cleanly on SIGINT and on SIGTERM: exit 0, one "stopped" line, no traceback.

Real subprocesses (``python -m p2pkit``) listening on 127.0.0.1 port 0, each bounded by
timeouts and killed by PID if anything goes wrong.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pkit.bittorrent.wire.create import create_torrent

ROOT = Path(__file__).parents[2]
#: Seconds a server gets to start (imports included) and then to stop.
START_TIMEOUT = 60
STOP_TIMEOUT = 20
#: A bound on every server, should the signal be lost.
DURATION = "120"


def _servers(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Command path -> (argv after ``p2pkit``, the text it prints once it is listening)."""
    (tmp / "data" / "album").mkdir(parents=True)
    (tmp / "data" / "album" / "a.bin").write_bytes(b"a" * 40000)
    torrent = tmp / "album.torrent"
    torrent.write_bytes(create_torrent(tmp / "data" / "album", piece_length=16384))
    listen = ["--listen", "127.0.0.1:0"]
    return {
        "bt seed": (["bt", "seed", str(torrent), "--data", str(tmp / "data"), *listen,
                     "--no-trackers", "-q", "--duration", DURATION], "seeding album on"),
        "bt tracker": (["bt", "tracker", *listen], "UDP tracker: "),
        "dht serve": (["dht", "serve", *listen, "--duration", DURATION], "listening: "),
        "gnutella serve": (["gnutella", "serve", *listen, "--duration", DURATION],
                           "leaf on 127.0.0.1:"),
        "ipfs serve": (["ipfs", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--duration",
                        DURATION], "listening on /ip4/127.0.0.1/tcp/"),
    }


def _wait_for(proc: subprocess.Popen, text: str, seen: list[str]) -> None:
    """Read stdout and stderr until ``text`` shows up (or fail after the timeout)."""
    deadline = time.monotonic() + START_TIMEOUT
    fds = [proc.stdout.fileno(), proc.stderr.fileno()]
    while time.monotonic() < deadline and text not in "".join(seen):
        ready, _, _ = select.select(fds, [], [], 0.5)
        for fd in ready:
            seen.append(os.read(fd, 65536).decode())
        if not ready and proc.poll() is not None:
            break
    if text not in "".join(seen):
        pytest.fail(f"never printed {text!r}: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_servers_stop_cleanly_on_signals(sig, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    servers = _servers(tmp_path)
    procs: dict[str, tuple[subprocess.Popen, list[str]]] = {}
    try:
        for name, (argv, _) in servers.items():
            procs[name] = (subprocess.Popen([sys.executable, "-m", "p2pkit", *argv], cwd=tmp_path,
                                            env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE), [])
        for name, (_, ready) in servers.items():
            _wait_for(procs[name][0], ready, procs[name][1])
        for proc, _ in procs.values():
            proc.send_signal(sig)
        for name, (proc, seen) in procs.items():
            out, err = proc.communicate(timeout=STOP_TIMEOUT)
            everything = "".join(seen) + out.decode() + err.decode()
            assert proc.returncode == 0, f"{name}: {everything}"
            assert "Traceback" not in everything, f"{name}: {everything}"
            stopped = [line for line in everything.splitlines() if "stopped" in line]
            assert stopped == [f"p2pkit: {name} stopped ({sig.name})"], everything
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
