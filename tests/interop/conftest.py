"""Interop test support: third-party clients run inside ``unshare -n`` on loopback only.

Network safety (HELPER_BRIEF): every client runs in a fresh network namespace whose only
interface is ``lo`` (brought up here), so traffic cannot leave 127.0.0.0/8 / ::1, and every
run is bounded in time. A test that needs a missing tool is skipped outside CI and fails when
``CI=true``, so interop cannot silently stop running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

#: Run by py-libp2p's own interpreter (it imports trio and libp2p), never imported here, not
#: even for --doctest-modules.
collect_ignore = ["py_libp2p_peer.py"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(available: bool, what: str) -> None:
    """Skip (outside CI) or fail (in CI) when ``what`` is not available."""
    if available:
        return
    if in_ci():
        pytest.fail(f"interop tool missing in CI: {what}")
    pytest.skip(f"needs {what}")


def require_executable(name: str) -> str:
    """The path of executable ``name`` (skip or fail when missing)."""
    path = shutil.which(name)
    require(path is not None, f"the {name!r} executable")
    return path


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_in_netns(argv: Sequence[str], *, timeout: float, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in a new network namespace with only ``lo`` up (MTU 1500, as on a real
    link); the whole namespace dies with the command or after ``timeout`` seconds."""
    script = 'ip link set lo mtu 1500 && ip link set lo up && exec "$@"'
    return subprocess.run(["timeout", "-k", "5", str(int(timeout)), "unshare", "-n", "sh", "-c",
                           script, "sh", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout + 15)


@pytest.fixture(scope="session")
def netns():
    """:func:`run_in_netns`, once ``unshare -n`` is known to work here."""
    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")
    return run_in_netns
