"""IPFS provider records over days under churn (issue 15): success, hops and queries of
GET_PROVIDERS lookups over time, with and without the 22 h republish, for several churn rates
(:func:`p2pkit.ipfs.dht_simulation.simulate_providers`, seeded: the same command gives the same
figures). One run per worker of a ``ProcessPoolExecutor``; JSON out and the docs' figure::

    python benchmarks/ipfs_provider_churn.py --nodes 5000 --keys 40 --hours 72 --workers 2 \\
        --out docs/_static/ipfs-provider-churn.json --plot docs/_static/ipfs-provider-churn.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pkit.ipfs.dht_simulation import simulate_providers  # noqa: E402
from p2pkit.kademlia.churn import SessionModel  # noqa: E402

#: Median session lengths (hours) of the runs; None: no churn. Weibull shape 0.5 throughout.
MEDIANS = (None, 24.0, 1.0, 0.25)
SHAPE = 0.5


def run(median: float | None, republish: bool, persistent: bool, nodes: int, keys: int,
        hours: float, seed: int) -> dict[str, Any]:
    started = time.process_time()
    sessions = None if median is None else SessionModel(shape=SHAPE, median=median * 3600.0)
    timeline = simulate_providers(nodes=nodes, keys=keys, hours=hours, seed=seed,
                                  sessions=sessions, republish=republish,
                                  persistent=persistent)
    out = asdict(timeline)
    out["median_hours"] = median
    out["cpu_seconds"] = time.process_time() - started
    return out


def label(r: dict[str, Any]) -> str:
    return "no churn" if r["median_hours"] is None else f"median session {r['median_hours']:g} h"


def plot(runs: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(2, 3, figsize=(15, 8.4), sharex=True)
    colours = {m: f"C{i}" for i, m in enumerate(MEDIANS)}
    for r in runs:
        axes = grid[0] if r["persistent"] else grid[1]
        hours = [s["hours"] for s in r["samples"]]
        style = dict(color=colours[r["median_hours"]], linestyle="-" if r["republish"] else "--",
                     label=f"{label(r)}, {'republish 22 h' if r['republish'] else 'no republish'}")
        axes[0].plot(hours, [100 * s["success"] for s in r["samples"]], **style)
        axes[1].plot(hours, [s["live_holders"] for s in r["samples"]], **style)
        axes[2].plot(hours, [s["queries_all"] for s in r["samples"]], **style)
    for axes, store in zip(grid, ("persistent datastore", "in-memory datastore"), strict=True):
        for ax, title in zip(axes, ("provider lookups that found a record (%)",
                                    "online nodes holding a live record (per key)",
                                    "queries per provider lookup"), strict=True):
            ax.set_title(f"{title}\n{store}", fontsize=9)
            ax.axvline(48, color="grey", linewidth=0.6)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
    for ax in grid[1]:
        ax.set_xlabel("simulated hours")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| churn | datastore | republish | departures/h | success 0-47 h | success from 48 h | live holders"
             " 0-47 h | hops | queries |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r["samples"]
        early = [x for x in s if x["hours"] < 48]
        late = [x for x in s if x["hours"] >= 48]

        def mean(rows: list, key: str) -> float:
            values = [x[key] for x in rows if not math.isnan(x[key])]
            return sum(values) / len(values) if values else math.nan

        hours = s[-1]["hours"] or 1
        lines.append(
            f"| {label(r)} | {'persistent' if r['persistent'] else 'memory'}"
            f" | {'22 h' if r['republish'] else 'no'} | {r['departures'] / hours:.0f}"
            f" | {100 * mean(early, 'success'):.1f} % | {100 * mean(late, 'success'):.1f} %"
            f" | {mean(early, 'live_holders'):.1f} | {mean(s, 'hops'):.2f}"
            f" | {mean(s, 'queries_all'):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--hours", type=float, default=72.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--from-json", type=Path, help="only plot and tabulate this JSON")
    args = parser.parse_args()
    if args.from_json:
        runs = json.loads(args.from_json.read_text())
    else:
        jobs = [(m, rep, keep, args.nodes, args.keys, args.hours, args.seed)
                for keep in (True, False) for m in MEDIANS for rep in (True, False)
                if keep or m is not None]
        with ProcessPoolExecutor(args.workers) as pool:
            runs = list(pool.map(run, *zip(*jobs, strict=True)))
        if args.out:
            args.out.write_text(json.dumps(runs, indent=1, default=str) + "\n")
    print(table(runs))
    for r in runs:
        print(f"{label(r)}, persistent {r['persistent']}, republish {r['republish']}:"
              f" {r.get('cpu_seconds', 0):.0f} s CPU")
    if args.plot:
        plot(runs, args.plot)


if __name__ == "__main__":
    main()
