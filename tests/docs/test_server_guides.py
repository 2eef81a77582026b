"""Every ``sh`` block of the servers guide (docs/guide/servers.md) runs as written, on
loopback inside ``unshare -n``, and prints what the guide says a server answers."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from tests.interop.conftest import _can_unshare, require, run_in_netns

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide" / "servers.md"
BLOCKS = re.findall(r"^```sh\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), flags=re.M | re.S)
#: Seconds a block may take (each stops by itself after about five).
TIMEOUT = 60

#: Block (by the server it starts) -> what its output must hold.
EXPECTED = {
    "dht serve": [r"127\.0\.0\.1:6881 id [0-9a-f]{40}", r"127\.0\.0\.1:51413",
                  r"queries_answered=[1-9]",
                  r"dht serve stopped"],
    "gnutella serve": [r"free-software-song\.txt\s+urn:sha1:[A-Z2-7]{32}"],
    "bt tracker": [r"complete: 1", r"0x0102030405060708090a0b0c0d0e0f1011121314:"],
    "ipfs serve": [r"12D3KooW\w+", r"ipfs serve stopped"],
}


def test_every_server_has_a_block():
    assert sorted(next(k for k in EXPECTED if k in b) for b in BLOCKS) == sorted(EXPECTED)


@pytest.mark.parametrize("server", sorted(EXPECTED))
def test_block_runs_on_loopback(server: str, tmp_path: Path) -> None:
    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")
    block = next(b for b in BLOCKS if server in b)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT)}
    argv = ["bash", "-c", f"set -e\n{block}"]
    done = run_in_netns(argv, timeout=TIMEOUT, cwd=str(tmp_path), env={**os.environ, **env})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert "Traceback" not in output
    for pattern in EXPECTED[server]:
        assert re.search(pattern, output), (pattern, output[-2000:])
