"""The IPFS catalog against p2pkit's own node: every case passes, the strict ones too."""

from __future__ import annotations

from p2pkit.conformance import catalog
from tests.conformance.ipfs_helpers import run_against_own_node

#: Cases p2pkit's node is known not to pass strictly (none today).
KNOWN_NON_STRICT: set[str] = set()


def test_every_case_passes_against_the_own_node() -> None:
    report = run_against_own_node(catalog("ipfs"))
    bad = {r.case.id: (r.verdict, r.reason) for r in report.results
           if r.verdict not in ("pass", "informational") and r.case.id not in KNOWN_NON_STRICT}
    assert not bad, bad
    assert report.ok
    # the hostile cases really ran: each was followed by a served probe session
    assert sum(1 for r in report.results if r.case.robustness and r.verdict == "pass") >= 20


def test_bitswap_block_cases_need_a_known_cid() -> None:
    """Without a CID the target has, the want-block cases are unsupported, not failed."""
    import asyncio
    import random

    from p2pkit.conformance.ipfs.live import IpfsTarget, run_ipfs_cases
    from p2pkit.ipfs.host import Host
    from p2pkit.ipfs.keys import Ed25519Identity

    async def run() -> object:
        host = Host(Ed25519Identity(bytes(32)), rng=random.Random(1))
        await host.listen("127.0.0.1", 0)
        port = host._server.sockets[0].getsockname()[1]
        try:
            cases = [c for c in catalog("ipfs") if c.id.startswith("ipfs/bitswap/")]
            return await run_ipfs_cases(cases, IpfsTarget("127.0.0.1", port), timeout=1.0,
                                        rng=random.Random(2), connect_interval=0.0)
        finally:
            await host.close()

    report = asyncio.run(run())
    verdicts = {r.case.id: r.verdict for r in report.results}
    assert verdicts["ipfs/bitswap/have"] == "unsupported"
    assert verdicts["ipfs/bitswap/block-matches-cid"] == "unsupported"
    assert verdicts["ipfs/bitswap/dont-have"] == "pass"
