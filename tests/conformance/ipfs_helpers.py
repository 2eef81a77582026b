"""Running the IPFS catalog against p2pkit's own node, in the test's event loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from p2pkit.conformance.case import Case
from p2pkit.conformance.ipfs.live import IpfsTarget, run_ipfs_cases
from p2pkit.conformance.runner import RunReport
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.keys import Ed25519Identity

#: The block the node serves (the Bitswap want-block cases ask for it).
BLOCK = b"p2pkit conformance block\n" * 40


async def _run(cases: list[Case], *, timeout: float, check_target: bool) -> RunReport:
    host = Host(Ed25519Identity(bytes(range(1, 33))), rng=random.Random(5))
    cid = Cid.of(BLOCK)
    host.add_blocks({cid: BLOCK})
    await host.listen("127.0.0.1", 0)
    port = host._server.sockets[0].getsockname()[1]
    try:
        return await run_ipfs_cases(cases, IpfsTarget("127.0.0.1", port, (cid,)),
                                    timeout=timeout, check_target=check_target,
                                    rng=random.Random(11), deadline=600,
                                    connect_interval=0.0)
    finally:
        await host.close()


def run_against_own_node(cases: Iterable[Case], *, timeout: float = 1.5,
                         check_target: bool = True) -> RunReport:
    """Run ``cases`` against a fresh p2pkit node on 127.0.0.1 serving :data:`BLOCK`."""
    return asyncio.run(_run(list(cases), timeout=timeout, check_target=check_target))
