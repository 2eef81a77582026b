"""CPU seconds of whole ``p2pkit dissect`` and ``tshark`` processes, alternating, as the rows of
``docs/dissect-performance.md`` (issue 12, "Faster than tshark in every mode").

    python benchmarks/mode_captures.py /tmp/captures --scale 0.25
    python benchmarks/dissect_cpu_table.py /tmp/captures [--before TREE] [--runs 3] \
        [--only dht gnutella] [--modes summary tree json]

For each capture and mode, each run executes, one after the other: p2pkit from ``--before``
(a checkout of the earlier tree, optional), p2pkit from this tree, then tshark on the same file;
every process writes to ``/dev/null`` and is timed by ``/usr/bin/time`` (user + system CPU,
peak RSS). Each tree's bytecode is compiled first (``compileall``, as an installed package has
it), and each p2pkit runs from an empty directory with ``PYTHONPATH`` naming its tree (``-m``
puts the working directory first on ``sys.path``). Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ("peerwire", "dht", "gnutella", "mixed")
MODES = {"summary": ([], []), "tree": (["-V"], ["-V"]), "json": (["--json"], ["-T", "json"])}


def timed(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(user + system CPU seconds, peak RSS in MB) of one process."""
    with tempfile.NamedTemporaryFile("r") as report:
        subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%U %S %M", *command],
                       env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        user, system, rss = report.read().split()[-3:]
    return float(user) + float(system), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures", type=Path)
    parser.add_argument("--before", type=Path, help="an earlier p2pkit tree to compare with")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(CAPTURES))
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    args = parser.parse_args()
    trees = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "p2pkit")],
                       check=True)
    empty = tempfile.mkdtemp(prefix="dissect-cpu-")
    print("| Capture | Mode | p2pkit before, CPU s | p2pkit after, CPU s | tshark, CPU s "
          "| after / before | **after / tshark** | peak RSS after / tshark (MB) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.only:
        path = str(args.captures / f"{name}.pcap")
        for mode in args.modes:
            ours, theirs = MODES[mode]
            cpu: dict[str, list[float]] = {k: [] for k in (*trees, "tshark")}
            rss: dict[str, float] = {}
            for _ in range(args.runs):
                for label in ("before", "after"):
                    if label in trees:
                        env = dict(os.environ, PYTHONPATH=str(trees[label]))
                        seconds, mb = timed([sys.executable, "-m", "p2pkit", "dissect", path,
                                             *ours], env, empty)
                        cpu[label].append(seconds)
                        rss[label] = max(rss.get(label, 0.0), mb)
                seconds, mb = timed(["tshark", "-r", path, "-d", "tcp.port==6346,gnutella",
                                     *theirs], dict(os.environ), empty)
                cpu["tshark"].append(seconds)
                rss["tshark"] = max(rss.get("tshark", 0.0), mb)
            med = {k: statistics.median(v) for k, v in cpu.items() if v}
            before = f"{med['before']:.2f}" if "before" in med else "–"
            ratio = f"{med['after'] / med['before']:.2f}" if "before" in med else "–"
            print(f"| {name} | {mode} | {before} | {med['after']:.2f} | {med['tshark']:.2f} "
                  f"| {ratio} | **{med['after'] / med['tshark']:.2f}** "
                  f"| {rss['after']:.0f} / {rss['tshark']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
