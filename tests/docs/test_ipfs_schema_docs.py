"""The reference tables of declared protobuf messages (docs/protocols/ipfs.md)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import p2pkit_schema_docs  # noqa: E402

from p2pkit.ipfs.kad_dht_messages import KadMessage  # noqa: E402


def test_protobuf_message_rows_show_numbers_types_and_nesting():
    rows = {r.field: r for r in p2pkit_schema_docs.describe(KadMessage)}
    assert rows["type"].type.startswith("field 1: enum MessageType, wire type 0")
    assert "FIND_NODE=4" in rows["type"].values
    assert rows["closerPeers"].type.startswith("field 8: repeated message Peer")
    assert rows["closerPeers.addrs"].depth == rows["closerPeers"].depth + 1
    assert "(at most 1024 bytes)" in rows["closerPeers.id"].type


def test_the_ipfs_protocol_reference_lists_its_schemas():
    refs = p2pkit_schema_docs.protocol_reference("ipfs")
    targets = [r.target for r in refs]
    assert "p2pkit.ipfs.dag_pb.PBNode" in targets
    assert all(r.messages for r in refs)
