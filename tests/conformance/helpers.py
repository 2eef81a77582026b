"""Run the DHT suite against p2pkit's own node, served in-process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from p2pkit.conformance import catalog
from p2pkit.conformance.case import Case
from p2pkit.conformance.runner import RunReport, run_cases
from p2pkit.dht.server import DhtServer

#: Silence windows on loopback against an in-process node can be short.
SILENCE = 0.15


async def _run(cases: Iterable[Case], **options: object) -> RunReport:
    server = await DhtServer.start("127.0.0.1", 0, rng=random.Random(7))
    try:
        options.setdefault("timeout", 2.0)
        return await run_cases(cases, server.address, silence=SILENCE,
                               rng=random.Random(11), **options)
    finally:
        server.close()


def run_against_own_node(cases: Iterable[Case] | None = None, **options: object) -> RunReport:
    """The catalog (or ``cases``) against a fresh node; no bootstrap, loopback only."""
    return asyncio.run(_run(catalog("dht") if cases is None else cases, **options))


def not_passing(report: RunReport) -> set[str]:
    return {r.case.id for r in report.results if r.verdict not in ("pass", "informational")}
