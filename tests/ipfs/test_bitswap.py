"""Bitswap 1.2.0 decisions (ipfs-bitswap-protocol.md): want-block, want-have, DontHave,
cancel, priorities, full wantlists, blocks checked against the CIDs they are received under."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA
from p2pkit.errors import ParseError
from p2pkit.ipfs.bitswap import (
    BitswapEngine,
    BlockReceived,
    PresenceReceived,
    UnwantedBlock,
    cid_from_prefix,
    cid_prefix,
)
from p2pkit.ipfs.bitswap_messages import (
    MAX_BITSWAP_MESSAGE_LENGTH,
    BitswapMessage,
    BitswapMessageFrame,
)
from p2pkit.ipfs.cid import Cid

A, B = b"block a", b"block b"
CA, CB = Cid.of(A), Cid.of(B, codec="dag-pb", version=0)
MISSING = Cid.of(b"nobody has this")


def wire(message):
    """A message as the peer reads it (through the schema, as on the wire)."""
    return BitswapMessage.parse(BitswapMessage.build(message))


def events(engine):
    return list(iter(engine.next_event, NEED_DATA))


def test_prefix_round_trip_for_both_cid_versions():
    for cid, data in ((CA, A), (CB, B)):
        assert cid_from_prefix(cid_prefix(cid), data) == cid
    with pytest.raises(ParseError):
        cid_from_prefix(b"\x01\x55\x12", A)


def test_want_block_have_and_dont_have():
    server = BitswapEngine({CA: A, CB: B})
    client = BitswapEngine({})
    ask = client.want("s", [CA, MISSING])
    have = client.want("s", [CB], have_only=True)
    ask["wantlist"]["entries"] += have["wantlist"]["entries"]
    [answer] = server.receive_message("c", wire(ask))
    assert [p["data"] for p in answer["payload"]] == [A]
    assert sorted((Cid.from_bytes(p["cid"]) == CB, p["type"]) for p in answer["blockPresences"]) \
        == [(False, "DontHave"), (True, "Have")]
    assert client.receive_message("s", wire(answer)) == []
    got = events(client)
    assert BlockReceived(peer="s", cid=CA) in got
    assert PresenceReceived(peer="s", cid=CB, have=True) in got
    assert PresenceReceived(peer="s", cid=MISSING, have=False) in got
    assert client.received == {CA: A}
    assert server.ledger("c").blocks_sent == 1 and server.ledger("c").wants == {}


def test_waiting_wants_are_served_when_the_block_arrives_and_cancel_works():
    blocks = {}
    server = BitswapEngine(blocks)
    client = BitswapEngine({})
    ask = client.want("s", [CA])
    ask["wantlist"]["entries"][0]["sendDontHave"] = False  # wait for it
    assert server.receive_message("c", wire(ask)) == []
    blocks[CA] = A
    [answer] = server.block_added(CA)["c"]
    assert answer["payload"][0]["data"] == A
    server.receive_message("c", wire(ask))
    server.receive_message("c", wire(client.cancel([CA])))
    assert server.ledger("c").wants == {}


def test_priorities_and_full_wantlists():
    server = BitswapEngine({CA: A, CB: B})
    low = {"block": bytes(CA), "priority": 1}
    high = {"block": bytes(CB), "priority": 9}
    [answer] = server.receive_message("c", wire({"wantlist": {"entries": [low, high]}}))
    assert [p["data"] for p in answer["payload"]] == [B, A]  # highest priority first
    empty = BitswapEngine({})
    empty.receive_message("c", wire({"wantlist": {"entries": [low]}}))
    empty.receive_message("c", wire({"wantlist": {"entries": [high], "full": True}}))
    assert list(empty.ledger("c").wants) == [CB]


def test_unwanted_and_wrong_blocks():
    client = BitswapEngine({})
    client.want("s", [CA])
    # a block whose bytes are not CA's arrives under CA's prefix: it hashes to another CID
    client.receive_message("s", wire({"payload": [{"prefix": cid_prefix(CA), "data": B}]}))
    assert events(client) == [UnwantedBlock(peer="s", cid=Cid.of(B))]
    assert client.received == {} and client.ledger("s").unwanted_blocks == 1


def test_wants_per_peer_are_capped():
    server = BitswapEngine({}, max_wants_per_peer=3)
    entries = [{"block": bytes(Cid.of(bytes([i]))), "priority": i} for i in range(10)]
    server.receive_message("c", wire({"wantlist": {"entries": entries}}))
    assert [w[0] for w in server.ledger("c").wants.values()] == [7, 8, 9]


@given(st.binary(max_size=60))
def test_random_messages_raise_only_parse_error(data):
    try:
        message = BitswapMessage.parse(data)
        BitswapEngine({}).receive_message("c", message)
    except ParseError:
        pass


def test_many_large_blocks_are_split_over_several_messages():
    from p2pkit.ipfs.bitswap import MAX_MESSAGE_BLOCK_BYTES

    big = {Cid.of(bytes([i]) * 1_000_000): bytes([i]) * 1_000_000 for i in range(10)}
    server = BitswapEngine(big)
    answers = server.receive_message("c", wire(BitswapEngine({}).want("s", list(big))))
    assert len(answers) >= 3 and server.ledger("c").wants == {}
    assert all(sum(len(p["data"]) for p in a["payload"]) <= MAX_MESSAGE_BLOCK_BYTES
               for a in answers)
    # with their framing, the messages stay under the 4 MiB peers (and p2pkit) accept
    assert all(len(BitswapMessageFrame.build(a)) <= MAX_BITSWAP_MESSAGE_LENGTH for a in answers)
    assert sum(len(a["payload"]) for a in answers) == 10
