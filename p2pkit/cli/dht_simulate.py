"""``p2pkit dht simulate``: a DHT of up to millions of nodes in one process (issue 17).

Two cores (:data:`p2pkit.dht.simulator.CORES`): ``node`` runs one real sans-I/O
:class:`~p2pkit.dht.node.Node` per peer, the code ``p2pkit dht serve`` runs; ``array`` keeps
the routing tables as arrays and drives the shared lookup over them. ``--core auto`` takes the
node core while its memory estimate fits, the array core beyond. A size whose estimate does not
fit the memory available is refused before anything is allocated.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from dataclasses import asdict
from typing import Any

import click

from p2pkit.cli.errors import BadInput
from p2pkit.cli.options import json_option

__all__ = ["available_memory", "simulate_command"]

#: ``--core auto`` takes the node core up to this many nodes (about a minute; it grows by
#: ~48 KB per node, and 100,000 take 3.1 minutes and 4.9 GB: docs/simulation-scale.md), the
#: array core beyond. ``--core node`` runs it at any size its memory estimate fits.
NODE_CORE_AUTO_MAX = 50_000


def available_memory() -> int:
    """Bytes this process may use: the smaller of the address-space limit and the memory
    the kernel reports available."""
    limits = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return min(limits) if limits else 1 << 40


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


@click.command("simulate")
@click.option("--nodes", type=int, default=1000, show_default=True,
              help="Nodes in the network (at least 2; millions with the array core).")
@click.option("--lookups", type=int, default=200, show_default=True,
              help="Lookups measured per phase (at least 1).")
@click.option("--churn", type=float, default=0.3, show_default=True,
              help="Fraction of nodes then removed at random (0 to <1).")
@click.option("--sessions", "session_model", metavar="SHAPE,MEDIAN", default=None,
              help="Instead of --churn: remove the nodes whose session ends within --window "
                   "seconds, sessions Weibull(SHAPE) with MEDIAN seconds (e.g. 0.5,3600).")
@click.option("--window", type=float, default=900.0, show_default=True,
              help="With --sessions: seconds between the two measurements.")
@click.option("--loss", type=float, default=0.0, show_default=True,
              help="Datagram loss rate (0 to <1).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Random seed: the same seed gives the same network and figures.")
@click.option("--join", type=click.Choice(["populate", "protocol"]), default="populate",
              show_default=True, help="Fill routing tables as bootstrap and refresh leave "
              "them, or bootstrap each node through the DHT (node core).")
@click.option("--core", type=click.Choice(["auto", "node", "array"]), default="auto",
              show_default=True, help="One sans-I/O Node per peer, or array-backed tables "
              f"(auto: node up to {NODE_CORE_AUTO_MAX:,} nodes).")
@click.option("--deployment", type=click.Choice(["mainline", "ipfs"]), default="mainline",
              show_default=True, help="Kademlia parameters: Mainline (160-bit ids, k 8, "
              "alpha 3) or libp2p/IPFS kad-dht (256, 20, 10; array core).")
@click.option("--memory-limit", type=float, default=None,
              help="GiB the run may use (default: what the machine and ulimit allow).")
@json_option("Print the report as one JSON document.")
def simulate_command(nodes: int, lookups: int, churn: float, session_model: str | None,
                     window: float, loss: float, seed: int, join: str, core: str,
                     deployment: str, memory_limit: float | None, as_json: bool) -> None:
    """Run N DHT nodes in one process and measure lookups, stable and after churn."""
    from p2pkit.dht.simulator import estimate_memory, simulate
    from p2pkit.kademlia.churn import SessionModel

    if nodes < 2:
        raise BadInput("--nodes", f"a network has at least 2 nodes, not {nodes}")
    if lookups < 1:
        raise BadInput("--lookups", f"at least 1 lookup, not {lookups}")
    if not 0 <= churn < 1:
        raise BadInput("--churn", f"a fraction in [0, 1), not {churn:g}")
    if not 0 <= loss < 1:
        raise BadInput("--loss", f"a fraction in [0, 1), not {loss:g}")
    if window <= 0:
        raise BadInput("--window", f"a positive number of seconds, not {window:g}")
    sessions = None
    if session_model is not None:
        try:
            shape, median = (float(x) for x in session_model.split(","))
            sessions = SessionModel(shape=shape, median=median)
        except ValueError:
            raise BadInput("--sessions", "SHAPE,MEDIAN: two positive numbers, e.g. 0.5,3600"
                           ) from None
    if core == "auto":
        core = ("node" if (nodes <= NODE_CORE_AUTO_MAX or join == "protocol")
                and deployment == "mainline" else "array")
    if deployment != "mainline" and core == "node":
        raise BadInput("--deployment", f"{deployment} runs on the array core (--core array)")
    if join == "protocol" and core != "node":
        raise BadInput("--join", "protocol joins run on the node core (--core node)")
    limit = available_memory() if memory_limit is None else int(memory_limit * 2**30)
    need = estimate_memory(nodes, core, deployment)
    if need > limit:
        hint = " (try --core array)" if core == "node" else ""
        raise BadInput("--nodes", f"{nodes:,} nodes on the {core} core need about "
                       f"{_gib(need)}, more than the {_gib(limit)} available{hint}")

    bar: Any = None
    phase_now = [""]

    def progress(phase: str, done: int, total: int) -> None:
        nonlocal bar
        if phase != phase_now[0]:
            if bar is not None:
                bar.render_finish()
            phase_now[0] = phase
            bar = click.progressbar(length=total, label=f"{phase:<20}", file=sys.stderr)
            bar.pos = 0
        bar.update(done - bar.pos)

    show = not as_json and sys.stderr.isatty() and not os.environ.get("CI")
    try:
        report = simulate(nodes=nodes, lookups=lookups, seed=seed, churn=churn, loss=loss,
                          join=join, core=core, sessions=sessions, window=window,
                          deployment=deployment, progress=progress if show else None)
    except ValueError as e:  # what only the run can tell (the churn of a session model)
        raise BadInput("--churn" if session_model is None else "--sessions", str(e)) from None
    if bar is not None:
        bar.render_finish()
    if as_json:
        click.echo(json.dumps(asdict(report)))
        return
    click.echo(f"network of {nodes:,} built ({core} core, {deployment}, {join}) in "
               f"{report.build_seconds:.1f} s, seed {seed}, loss {loss:g}")
    phases = [("stable", report.stable)]
    if report.churned is not None:
        phases.append((f"after {report.churn:.1%} churn", report.churned))
    for label, s in phases:
        click.echo(f"{label}: {s.nodes:,} nodes (log2 N = {s.log2_n:.2f}), {s.lookups} lookups: "
                   f"success {s.success_rate:.1%}, hops {s.mean_hops:.2f}, "
                   f"queries {s.mean_queries:.1f}, datagrams/lookup "
                   f"{s.datagrams / s.lookups:.1f}, {s.mean_duration * 1000:.0f} ms simulated, "
                   f"{s.cpu_per_lookup * 1000:.2f} ms CPU per lookup")
