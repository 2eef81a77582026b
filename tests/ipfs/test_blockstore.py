"""The flatfs block store: Kubo's layout, atomic writes, checked reads, persistence, and a
host serving a directory from it after a restart."""

from __future__ import annotations

import asyncio
import random

import pytest

from p2pkit.errors import LimitExceeded, ParseError, ProtocolError
from p2pkit.ipfs.blockstore import SHARDING, FlatfsBlockstore
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.host import Host
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.unixfs_directory import import_tree, walk
from p2pkit.ipfs.unixfs_exporter import children, export


def test_layout_and_keys(tmp_path):
    store = FlatfsBlockstore(tmp_path / "repo")
    cid = Cid.of(b"hello", codec="raw")
    store[cid] = b"hello"
    assert (tmp_path / "repo" / "SHARDING").read_text() == SHARDING + "\n"
    # Kubo's key: base32 of the multihash; shard: the two characters before the last
    path = store.path_of(cid)
    key = path.name.removesuffix(".data")
    assert key.startswith("CIQ") and path.parent.name == key[-3:-1]
    # keyed by multihash: the same bytes under a dag-pb CID are the same file
    assert store.path_of(Cid(1, Cid.of(b"x", codec="dag-pb").codec, cid.multihash)) == path
    assert list(store) == [cid] and len(store) == 1
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".put-")]


def test_refusals_and_damage(tmp_path):
    store = FlatfsBlockstore(tmp_path)
    cid = Cid.of(b"abc")
    with pytest.raises(ProtocolError, match="does not match"):
        store[cid] = b"abd"
    with pytest.raises(LimitExceeded):
        big = bytes(2 * 1024 * 1024 + 1)
        store[Cid.of(big)] = big
    with pytest.raises(KeyError):
        store[cid]
    store[cid] = b"abc"
    store.path_of(cid).write_bytes(b"abd")  # changed on disk
    with pytest.raises(ParseError, match="changed on disk"):
        store[cid]
    del store[cid]
    assert cid not in store
    (tmp_path / "SHARDING").write_text("/repo/flatfs/shard/v1/prefix/2\n")
    with pytest.raises(ProtocolError, match="sharded by"):
        FlatfsBlockstore(tmp_path)


def test_a_host_serves_a_directory_from_disk_after_a_restart(tmp_path):
    tree = {"a.txt": b"alpha", "sub": {"b.bin": random.Random(1).randbytes(300_000)},
            "empty": {}}
    root = import_tree(tree, blocks=FlatfsBlockstore(tmp_path / "repo"))

    async def scenario():
        server = Host(Ed25519Identity(bytes(range(32))), rng=random.Random(1),
                      blocks=FlatfsBlockstore(tmp_path / "repo"))  # reopened
        client = Host(Ed25519Identity(bytes(range(1, 33))), rng=random.Random(2))
        addr = await server.listen("127.0.0.1", 0)
        try:
            c = await client.dial(addr, timeout=5)
            level = [root]
            while level:
                got = await c.fetch(level, timeout=10)
                level = [child for cid in level for child in children(cid, got[cid])]
            return client.blocks
        finally:
            await client.close()
            await server.close()

    blocks = asyncio.run(asyncio.wait_for(scenario(), 30))
    entries = {e.path: e for e in walk(root, blocks.__getitem__)}
    assert set(entries) == {"a.txt", "sub", "sub/b.bin", "empty"}
    assert b"".join(export(entries["sub/b.bin"].cid, blocks.__getitem__)) == tree["sub"]["b.bin"]
