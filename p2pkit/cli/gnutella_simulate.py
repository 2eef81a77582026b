"""``p2pkit gnutella simulate --core array``: the servent's flood over arrays (issue 17).

The array core (:mod:`p2pkit.gnutella.array_flood`) gives the figures of the servent
simulator, query for query, for networks of 100,000 servents and more: the topology is built
once and every TTL is measured on it. A size whose memory estimate does not fit is refused
before anything is built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from p2pkit.cli.dht_simulate import available_memory
from p2pkit.cli.errors import BadInput
from p2pkit.gnutella.simulator import SimulationResult

__all__ = ["SERVENT_CORE_AUTO_MAX", "array_core", "estimate_memory"]

#: ``--core auto`` runs real servents up to this many nodes (about a minute), arrays beyond.
SERVENT_CORE_AUTO_MAX = 5_000
#: Bytes per servent of the array core (measured: peak RSS of 100,000 servents, minus the
#: interpreter; docs/simulation-scale.md), and of the interpreter and modules.
ARRAY_BYTES_PER_NODE = 4_000
BASE_BYTES = 150_000_000


def estimate_memory(nodes: int) -> int:
    """Bytes the array core needs for ``nodes`` servents (an estimate, from measurements)."""
    return BASE_BYTES + nodes * ARRAY_BYTES_PER_NODE


def array_core(*, nodes: int, topology: str, qrp: bool, queries: int, seed: int,
               show: bool) -> Callable[..., SimulationResult]:
    """Build the topology once (with a progress bar when ``show``); return ``run(ttl=...)``."""
    from p2pkit.gnutella.array_flood import build_topology, simulate

    need, limit = estimate_memory(nodes), available_memory()
    if need > limit:
        raise BadInput("--nodes", f"{nodes:,} servents need about {need / 2**30:.1f} GiB, more "
                       f"than the {limit / 2**30:.1f} GiB available")
    with click.progressbar(length=nodes, label="building", file=sys.stderr,
                           hidden=not show) as bar:
        top = build_topology(nodes=nodes, topology=topology, seed=seed,
                             progress=lambda done, total: bar.update(done - bar.pos))
    return lambda ttl: simulate(topology=topology, qrp=qrp, ttl=ttl, queries=queries,
                                seed=seed, top=top)
