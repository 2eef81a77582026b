"""Run the tracker catalog against p2pkit's own tracker, served in-process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from p2pkit.bittorrent.tracker.core import TrackerCore
from p2pkit.bittorrent.tracker.server import TrackerServer
from p2pkit.conformance import catalog
from p2pkit.conformance.case import Case
from p2pkit.conformance.runner import RunReport
from p2pkit.conformance.tracker.live import run_tracker

#: Silence windows on loopback against an in-process tracker can be short.
SILENCE = 0.15
#: Every case but those that wait a minute (the connection-id lifetime, tested apart).
FAST: tuple[Case, ...] = tuple(c for c in catalog("tracker") if "slow" not in c.tags)


async def _run(cases: Iterable[Case], transports: tuple[str, ...], host: str = "127.0.0.1",
               **options: object) -> list[RunReport]:
    server = TrackerServer(TrackerCore(rng=random.Random(7)))
    await server.start(host=host, http_port=0, udp_port=0)
    cases = list(cases)
    shown = f"[{host}]" if ":" in host else host
    urls = {"http": f"http://{shown}:{server.http_port}/announce",
            "udp": f"udp://{shown}:{server.udp_port}"}
    options.setdefault("timeout", 1.0)
    try:
        return [await run_tracker(cases, urls[t], silence=SILENCE, rng=random.Random(11),
                                  **options) for t in transports]
    finally:
        await server.close()


def run_against_own_tracker(cases: Iterable[Case] | None = None,
                            transports: tuple[str, ...] = ("http", "udp"),
                            **options: object) -> list[RunReport]:
    """The catalog (or ``cases``) against a fresh tracker, over each of ``transports``."""
    return asyncio.run(_run(FAST if cases is None else cases, transports, **options))


def not_passing(reports: Iterable[RunReport]) -> set[str]:
    return {r.case.id for report in reports for r in report.results
            if r.verdict not in ("pass", "informational")}
