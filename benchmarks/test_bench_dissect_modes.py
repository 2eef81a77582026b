"""Dissection in every output mode, p2pkit vs tshark, paired in the same run (issue 12).

Four captures built at benchmark time by ``benchmarks/mode_captures.py`` (peer-wire-heavy,
DHT-heavy, Gnutella-heavy, mixed) in a temporary directory; for each capture and each mode
(summary: ``tshark -r F``; tree: ``-V``; JSON: ``-T json`` against ``p2pkit dissect --json``)
one round runs ``p2pkit dissect`` and then tshark on the same file, both as whole processes
writing to ``/dev/null``, so the two see the same machine load. The benchmark's own time is the
pair; ``extra_info`` holds each tool's median wall and CPU seconds and their ratios
(``p2pkit / tshark``: below 1 is faster).

    tox -e bench -- benchmarks/test_bench_dissect_modes.py
    P2PKIT_BENCH_SCALE=1 python -m pytest -o addopts="" benchmarks/test_bench_dissect_modes.py \\
        --benchmark-only

``P2PKIT_BENCH_SCALE`` (default 0.25) scales the captures (1.0: about 120,000 frames each).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.mode_captures import FRAMES, GNUTELLA_PORT, build

ROOT = Path(__file__).resolve().parent.parent
MODES = {"summary": ([], []), "tree": (["-V"], ["-V"]), "json": (["--json"], ["-T", "json"])}
TSHARK_DECODE = ["-d", f"tcp.port=={GNUTELLA_PORT},gnutella"]

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None and os.environ.get("CI") != "true",
                                reason="tshark not installed")


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    scale = float(os.environ.get("P2PKIT_BENCH_SCALE", "0.25"))
    # p2pkit's bytecode, as an installed package has it (with PYTHONDONTWRITEBYTECODE set,
    # every run would compile the modules it imports again: about 0.1 s of CPU a process)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "p2pkit")],
                   check=True, stdout=subprocess.DEVNULL,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    directory = tmp_path_factory.mktemp("mode-captures")
    return {kind: _built(kind, directory, scale) for kind in FRAMES}


def _built(kind: str, directory: Path, scale: float) -> Path:
    path = directory / f"{kind}.pcap"
    build(kind, path, scale)
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process (start-up included, as for tshark); CPU
    time moves less than wall time when other jobs share the machine."""
    start, cpu = time.perf_counter(), _cpu()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=1800, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start, _cpu() - cpu


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", sorted(FRAMES))
def test_dissect_vs_tshark(benchmark, captures, kind: str, mode: str) -> None:
    benchmark.group = f"dissect-{kind}"
    path = captures[kind]
    ours, theirs = MODES[mode]
    p2pkit_argv = [sys.executable, "-m", "p2pkit", "dissect", str(path), *ours]
    tshark_argv = ["tshark", "-r", str(path), *TSHARK_DECODE, *theirs]
    times: dict[str, list[tuple[float, float]]] = {"p2pkit": [], "tshark": []}

    def pair() -> None:
        times["p2pkit"].append(_run(p2pkit_argv))
        times["tshark"].append(_run(tshark_argv))

    benchmark.pedantic(pair, rounds=3, iterations=1)
    for i, what in enumerate(("wall", "cpu")):
        ours_s = statistics.median(t[i] for t in times["p2pkit"])
        theirs_s = statistics.median(t[i] for t in times["tshark"])
        benchmark.extra_info.update({
            f"p2pkit_{what}_median_s": round(ours_s, 3),
            f"tshark_{what}_median_s": round(theirs_s, 3),
            f"{what}_ratio": round(ours_s / theirs_s, 2),
            f"{what}_ratio_pairs": [round(a[i] / b[i], 2) for a, b in
                                    zip(times["p2pkit"], times["tshark"], strict=True)]})
