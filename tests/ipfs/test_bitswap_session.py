"""A Bitswap session over real TCP on 127.0.0.1: four servers holding different parts of a
DAG (one all of it, one every other leaf, one only the root, one that never answers); the
session gets every block, spread over the peers, re-asking after DONT_HAVE and timeouts."""

import asyncio
import random

import pytest

from p2pkit.errors import ProtocolError
from p2pkit.ipfs.bitswap_session import BitswapSession
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.unixfs_exporter import children, export
from p2pkit.ipfs.unixfs_importer import ImportSettings, import_bytes


def test_session_spreads_wants_and_reasks():
    data = random.Random(4).randbytes(300_000)
    blocks = {}
    settings = ImportSettings(chunk_size=10_000, max_children=8, cid_version=1, raw_leaves=True)
    root = import_bytes(data, settings, blocks=blocks)
    leaves = [c for c in blocks if c.codec == 0x55]

    async def scenario():
        hosts = [Host(Ed25519Identity(bytes([i + 1]) * 32), rng=random.Random(i))
                 for i in range(5)]
        full, half, rooted, silent, client = hosts
        full.add_blocks(blocks)
        half.add_blocks({c: blocks[c] for c in leaves[::2]})
        rooted.add_blocks({root: blocks[root]})
        silent.add_blocks(blocks)
        silent.bitswap_message = lambda connection, message: None  # never answers
        try:
            conns = [await client.dial(await h.listen("127.0.0.1", 0), timeout=5)
                     for h in (silent, rooted, half, full)]
            session = BitswapSession(client, conns, want_timeout=0.3)
            level = [root]
            while level:
                got = await session.fetch(level, timeout=30)
                level = [child for cid in level for child in children(cid, got[cid])]
            fetched = b"".join(export(root, client.blocks.__getitem__))
            lonely = BitswapSession(client, conns[1:2], want_timeout=0.3)
            with pytest.raises(ProtocolError, match="no peer of the session"):
                await lonely.fetch([Cid.of(b"nobody has it")], timeout=10)
            return fetched, session.stats, hosts
        finally:
            for h in hosts:
                await h.close()

    fetched, stats, hosts = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert fetched == data
    by_peer = {str(h.peer_id): stats.blocks_from[str(h.peer_id)] for h in hosts}
    assert sum(by_peer.values()) == len(blocks)
    full, half, _, silent, _ = (str(h.peer_id) for h in hosts)
    assert by_peer[full] > 0 and by_peer[half] > 0 and by_peer[silent] == 0
    assert stats.dont_haves > 0 and stats.timeouts > 0
    assert stats.rerequests == stats.dont_haves + stats.timeouts
