"""Running the Gnutella catalog against p2pkit's own servent, in the test's event loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from p2pkit.conformance.case import Case
from p2pkit.conformance.gnutella import GnutellaWire
from p2pkit.conformance.runner import RunReport
from p2pkit.conformance.stream_runner import run_stream_cases
from p2pkit.gnutella.server import GnutellaServer


async def _run(cases: list[Case], *, ultrapeer: bool, timeout: float,
               check_target: bool) -> RunReport:
    server = GnutellaServer(host="127.0.0.1", port=0, ultrapeer=ultrapeer, seed=7)
    await server.start()
    try:
        return await run_stream_cases(cases, ("127.0.0.1", server.port), GnutellaWire(),
                                      timeout=timeout, check_target=check_target,
                                      rng=random.Random(11), deadline=600)
    finally:
        await server.close()


def run_against_own_servent(cases: Iterable[Case], *, ultrapeer: bool = True,
                            timeout: float = 1.5, check_target: bool = True) -> RunReport:
    """Run ``cases`` against a fresh p2pkit ultrapeer (or leaf) on 127.0.0.1."""
    return asyncio.run(_run(list(cases), ultrapeer=ultrapeer, timeout=timeout,
                            check_target=check_target))
