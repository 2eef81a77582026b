"""Gnutella at 100,000 servents (issue 17): messages per query, reach and success against TTL
for flat, ultrapeer and ultrapeer+QRP networks, on the array core
(:mod:`p2pkit.gnutella.array_flood`, equal to the servent simulator query for query).

One topology per worker of a standard ``ProcessPoolExecutor`` (seeded: the same command gives
the same figures), every TTL measured on it; JSON out, and the course's plot::

    prlimit --as=6500000000 python benchmarks/gnutella_scale.py --nodes 100000 --queries 100 \\
        --out docs/_static/gnutella-scale.json --plot docs/_static/gnutella-scale.png
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pkit.gnutella.array_flood import build_topology, simulate  # noqa: E402

MODES = {"flat": ("flat", False), "ultrapeer": ("ultrapeer", False),
         "ultrapeer+qrp": ("ultrapeer", True)}


def run_mode(mode: str, nodes: int, queries: int, seed: int, ttls: list[int]) -> dict[str, Any]:
    topology, qrp = MODES[mode]
    started = time.perf_counter()
    top = build_topology(nodes=nodes, topology=topology, seed=seed)
    built = time.perf_counter() - started
    results = [asdict(simulate(topology=topology, qrp=qrp, ttl=ttl, queries=queries, seed=seed,
                               top=top)) for ttl in ttls]
    return {"mode": mode, "nodes": nodes, "seed": seed, "build_seconds": built,
            "wall_seconds": time.perf_counter() - started,
            "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "results": results}


def plot(runs: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for run in runs:
        ttl = [r["ttl"] for r in run["results"]]
        axes[0].semilogy(ttl, [r["messages_per_query"] for r in run["results"]], marker="o",
                         label=run["mode"])
        axes[1].semilogy(ttl, [r["reached"] for r in run["results"]], marker="o",
                         label=run["mode"])
        axes[2].plot(ttl, [100 * r["answered"] / r["queries"] for r in run["results"]],
                     marker="o", label=run["mode"])
    n = runs[0]["nodes"]
    axes[0].set(title=f"messages per query (N = {n:,})", xlabel="TTL",
                ylabel="query + hit descriptors")
    axes[1].set(title="servents reached per query", xlabel="TTL", ylabel="servents")
    axes[2].set(title="queries answered", xlabel="TTL", ylabel="%")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ttls", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_mode, mode, args.nodes, args.queries, args.seed, args.ttls)
                   for mode in MODES]
        runs = [f.result() for f in futures]
    total = time.perf_counter() - t0
    for run in runs:
        print(run["mode"], f"{run['wall_seconds']:.1f} s", f"{run['peak_bytes'] / 1e6:.0f} MB")
    print(f"all modes: {total:.1f} s wall")
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "started": started,
                                    "total_wall_seconds": total, "runs": runs},
                                   indent=1) + "\n")
    if args.plot:
        plot(runs, args.plot)


if __name__ == "__main__":
    main()
