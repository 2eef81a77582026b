"""The DHT simulator at internet scale (issue 17): sizes, core comparison, sweeps, plots.

Every run goes to a worker process of a standard ``concurrent.futures.ProcessPoolExecutor``
(one task per process, so each run's peak memory is its own), seeded, and written as JSON;
``plot`` draws the course's figures from the JSON with matplotlib. Figures and commands are in
docs/simulation-scale.md::

    # memory and time per lookup, 10^3 ... 10^6 nodes (array core), 1,000 lookups each
    python benchmarks/dht_scale.py sizes --core array --sizes 1000 10000 100000 1000000 \\
        --lookups 1000 --workers 1 --out docs/_static/dht-scale-array.json
    # the node core (one sans-I/O Node per peer) where it fits
    python benchmarks/dht_scale.py sizes --core node --sizes 1000 10000 50000 \\
        --lookups 1000 --out docs/_static/dht-scale-node.json
    # node core vs array core on the same tables: KS and chi-square on hops, success
    python benchmarks/dht_scale.py compare --sizes 10000 100000 --lookups 1000 \\
        --out docs/_static/dht-scale-compare.json
    # sizes x churn x seeds over all cores
    python benchmarks/dht_scale.py sweep --sizes 1000 10000 100000 --churn 0.1 0.3 0.5 \\
        --seeds 1 2 3 --out docs/_static/dht-scale-sweep.json
    python benchmarks/dht_scale.py plot --out docs/_static/dht-scale.png docs/_static/dht-scale-*.json

Run it under a memory limit on a shared machine (``prlimit --as=6500000000``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pkit.dht.simulator import (  # noqa: E402
    Network,
    measure_array_lookups,
    measure_lookups,
    simulate,
)
from p2pkit.kademlia.array_network import ArrayNetwork  # noqa: E402
from p2pkit.kademlia.churn import SessionModel  # noqa: E402
from p2pkit.kademlia.two_sample import chi_square_2samp, ks_2samp  # noqa: E402


def _rss() -> int:
    """Resident bytes of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_size(core: str, nodes: int, lookups: int, seed: int, churn: float,
             sessions: tuple[float, float] | None) -> dict[str, Any]:
    """One simulation in this (worker) process, with its wall time and peak memory."""
    base = _rss()
    started = time.perf_counter()
    cpu = time.process_time()
    report = simulate(nodes=nodes, lookups=lookups, seed=seed, churn=churn, core=core,
                      sessions=None if sessions is None else SessionModel(
                          shape=sessions[0], median=sessions[1]))
    wall = time.perf_counter() - started
    peak = _peak()
    return {"core": core, "nodes": nodes, "lookups": lookups, "seed": seed,
            "wall_seconds": wall, "cpu_seconds": time.process_time() - cpu,
            "peak_bytes": peak, "base_bytes": base,
            "bytes_per_node": (peak - base) / nodes, "report": asdict(report)}


def _samples(histogram: dict) -> list[int]:
    return [int(h) for h, c in histogram.items() for _ in range(c)]


def run_compare(nodes: int, lookups: int, seed: int, churn: float) -> dict[str, Any]:
    """The node core and the array core on the same populated tables, stable and churned."""
    import numpy as np

    started = time.perf_counter()
    net = Network(seed=seed)
    members = [net.add_node() for _ in range(nodes)]
    tables = net.populate()
    built = time.perf_counter() - started
    array = ArrayNetwork(tables, alpha=3, seed=seed)
    phases = {}
    gone = np.random.default_rng([seed, 17]).choice(nodes, int(churn * nodes), replace=False)
    for phase in ("stable", "churned"):
        if phase == "churned":
            for v in gone.tolist():
                net.remove(members[v])
            array.remove(gone)
        node = measure_lookups(net, lookups)
        arr = measure_array_lookups(array, lookups, random.Random(f"{seed} {phase}"))
        ks = ks_2samp(_samples(node.hop_histogram), _samples(arr.hop_histogram))
        chi = chi_square_2samp(node.hop_histogram, arr.hop_histogram)
        found = [round(node.success_rate * lookups), round(arr.success_rate * lookups)]
        success = chi_square_2samp({0: lookups - found[0], 1: found[0]},
                                   {0: lookups - found[1], 1: found[1]})
        phases[phase] = {"node": asdict(node), "array": asdict(arr),
                         "ks_hops": [ks.statistic, ks.p_value],
                         "chi_square_hops": [chi.statistic, chi.p_value],
                         "chi_square_success": [success.statistic, success.p_value]}
    net.close()
    return {"nodes": nodes, "lookups": lookups, "seed": seed, "churn": churn,
            "build_seconds": built, "wall_seconds": time.perf_counter() - started,
            "peak_bytes": _peak(), **phases}


def _pool(workers: int, tasks: list[tuple]) -> list[dict[str, Any]]:
    out = []
    with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1) as pool:
        futures = [pool.submit(*task) for task in tasks]
        for future in futures:
            result = future.result()
            out.append(result)
            print(json.dumps({k: v for k, v in result.items()
                              if k not in ("report", "stable", "churned")}), flush=True)
    return out


def plot(paths: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    documents = {p: json.loads(p.read_text()) for p in paths}
    runs = [r for p, d in documents.items() if "sweep" not in d["command"]
            for r in d["runs"] if "report" in r]
    sweep = [r for d in documents.values() if "sweep" in d["command"] for r in d["runs"]]
    if sweep:
        plot_sweep(sweep, out.with_name(out.stem + "-churn" + out.suffix), plt)
    sized = sorted((r for r in runs if r["report"]["churn_model"] == "fraction"
                    and r["seed"] == 1), key=lambda r: (r["core"], r["nodes"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for core, marker in (("node", "s"), ("array", "o")):
        mine = [r for r in sized if r["core"] == core]
        if not mine:
            continue
        n = [r["nodes"] for r in mine]
        axes[0].loglog(n, [r["bytes_per_node"] for r in mine], marker=marker, label=f"{core} core")
        axes[1].loglog(n, [r["report"]["stable"]["cpu_per_lookup"] * 1000 for r in mine],
                       marker=marker, label=f"{core} core")
        axes[2].semilogx(n, [r["report"]["stable"]["mean_hops"] for r in mine], marker=marker,
                         label=f"{core} core, stable")
        axes[2].semilogx(n, [r["report"]["churned"]["mean_hops"] for r in mine], marker=marker,
                         linestyle="--", label=f"{core} core, after churn")
    sizes = sorted({r["nodes"] for r in sized})
    if sizes:
        axes[2].semilogx(sizes, [math.ceil(math.log2(s) / 3) for s in sizes], "k:",
                         label="⌈log₂ N / 3⌉ (b = 3, 2^b = k)")
    axes[0].set(title="memory per node", xlabel="nodes", ylabel="bytes (peak RSS / N)")
    axes[1].set(title="CPU time per lookup", xlabel="nodes", ylabel="ms")
    axes[2].set(title="hops to the closest node", xlabel="nodes", ylabel="mean hops")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def plot_sweep(runs: list[dict[str, Any]], out: Path, plt: Any) -> None:
    """Success and hops after churn against the churn fraction, per size (mean over seeds,
    error bars: min-max), and the session-model runs as separate markers."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for n in sorted({r["nodes"] for r in runs}):
        mine = [r for r in runs if r["nodes"] == n and r["report"]["churn_model"] == "fraction"]
        fractions = sorted({r["report"]["churn"] for r in mine})
        for ax, key, scale in ((axes[0], "success_rate", 100), (axes[1], "mean_hops", 1)):
            values = [[r["report"]["churned"][key] * scale for r in mine
                       if r["report"]["churn"] == f] for f in fractions]
            mean = [sum(v) / len(v) for v in values]
            ax.errorbar([f * 100 for f in fractions], mean,
                        yerr=[[m - min(v) for m, v in zip(mean, values)],
                              [max(v) - m for m, v in zip(mean, values)]],
                        marker="o", capsize=3, label=f"N = {n:,}")
            sessions = [r for r in runs if r["nodes"] == n
                        and r["report"]["churn_model"] != "fraction"]
            if sessions:
                ax.plot([r["report"]["churn"] * 100 for r in sessions],
                        [r["report"]["churned"][key] * scale for r in sessions], "k^",
                        markersize=5)
    axes[0].set(title="lookups finding the closest live node after churn",
                xlabel="nodes removed (%); ▲ Weibull sessions, 15 min", ylabel="success (%)")
    axes[1].set(title="hops after churn", xlabel="nodes removed (%)", ylabel="mean hops")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("sizes", "compare", "sweep"):
        p = sub.add_parser(name)
        p.add_argument("--sizes", type=int, nargs="+", required=True)
        p.add_argument("--lookups", type=int, default=1000)
        p.add_argument("--seeds", type=int, nargs="+", default=[1])
        p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        p.add_argument("--out", type=Path, required=True)
        if name != "compare":
            p.add_argument("--core", choices=["node", "array"], default="array")
        if name == "sweep":
            p.add_argument("--churn", type=float, nargs="+", default=[0.1, 0.3, 0.5])
        else:
            p.add_argument("--churn", type=float, default=0.3)
        p.add_argument("--sessions", type=float, nargs=2, metavar=("SHAPE", "MEDIAN"))
    p = sub.add_parser("plot")
    p.add_argument("inputs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "plot":
        plot(args.inputs, args.out)
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if args.command == "compare":
        tasks = [(run_compare, n, args.lookups, s, args.churn)
                 for n in args.sizes for s in args.seeds]
    elif args.command == "sizes":
        tasks = [(run_size, args.core, n, args.lookups, s, args.churn, args.sessions)
                 for n in args.sizes for s in args.seeds]
    else:
        tasks = [(run_size, args.core, n, args.lookups, s, c, None)
                 for n in args.sizes for c in args.churn for s in args.seeds]
        if args.sessions:
            tasks += [(run_size, args.core, n, args.lookups, s, 0.0, tuple(args.sessions))
                      for n in args.sizes for s in args.seeds]
    runs = _pool(args.workers, tasks)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "started": started,
                                    "python": sys.version.split()[0], "runs": runs},
                                   indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
