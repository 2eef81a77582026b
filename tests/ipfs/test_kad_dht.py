"""The kad-dht server (ipfs-kad-dht.md): the spec's identifiers, closest peers without self
and requester, provider records and their checks, several requests per stream."""

import pytest

from p2pkit.core import NEED_DATA
from p2pkit.errors import RemoteProtocolError
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.kad_dht import (
    PROVIDE_VALIDITY,
    PROVIDER_ADDRS_TTL,
    KadDhtServer,
    KadStream,
    RequestRefused,
    kademlia_id,
)
from p2pkit.ipfs.kad_dht_messages import KadMessage, KadMessageFrame
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multiaddr import Multiaddr
from p2pkit.ipfs.peer_id import PeerId


def peer(i):
    return PeerId.from_public_key(Ed25519Identity(bytes([i]) * 32).public_key)


ME, ALICE = peer(1), peer(2)
ADDR = Multiaddr.from_text("/ip4/127.0.0.5/tcp/4001")


def test_spec_identifiers():
    # §Kademlia Keyspace and §Content Kademlia Identifier examples
    pid = PeerId.from_text("12D3KooWLU2znyJMtDiHArqAGbZn8CgUGp92kxDBtefftEEaHSZS")
    assert pid.multihash.hex() == ("0024080112209e3b433cbd31c2b8a6ebbdca998bd0f4c2141c9c9af"
                                   "5422e976051b1e63af14d")
    assert kademlia_id(pid.multihash).hex() == \
        "e43d28f0996557c0d5571d75c62a57a59d7ac1d30a51ecedcdb9d5e4afa56100"
    cid = Cid.decode("bafybeihfg3d7rdltd43u3tfvncx7n5loqofbsobojcadtmokrljfthuc7y")
    assert kademlia_id(cid.multihash).hex() == \
        "d623250f3f660ab4c3a53d3c97b3f6a0194c548053488d093520206248253bcb"


def server_with_peers(n=30):
    server = KadDhtServer(ME)
    for i in range(10, 10 + n):
        assert server.add_server(peer(i), [Multiaddr.from_text(f"/ip4/127.0.0.{i}/tcp/4001")], 0)
    return server


def test_find_node_returns_k_closest_without_requester():
    server = server_with_peers()
    requester = peer(12)
    answer = server.handle(KadMessage.parse(KadMessage.build(
        {"type": "FIND_NODE", "key": requester.multihash})), requester, 0)
    ids = [p["id"] for p in answer["closerPeers"]]
    assert len(ids) == 20 and requester.multihash not in ids and ME.multihash not in ids
    target = kademlia_id(requester.multihash)
    distances = [int.from_bytes(kademlia_id(i), "big") ^ int.from_bytes(target, "big")
                 for i in ids]
    assert distances == sorted(distances)
    # the answer builds, and the protobuf package reads it the same (tests/ipfs/test_protobuf)
    assert KadMessage.parse(KadMessage.build(answer)).closerPeers[0].addrs


def test_add_and_get_providers():
    server = server_with_peers(5)
    key = Cid.of(b"block").multihash
    add = {"type": "ADD_PROVIDER", "key": key,
           "providerPeers": [{"id": ALICE.multihash, "addrs": [bytes(ADDR)]},
                             {"id": peer(99).multihash, "addrs": [bytes(ADDR)]}]}
    echo = server.handle(KadMessage.parse(KadMessage.build(add)), ALICE, 0)
    # only the sender's own record is kept and echoed
    assert [p["id"] for p in echo["providerPeers"]] == [ALICE.multihash]
    get = KadMessage.parse(KadMessage.build({"type": "GET_PROVIDERS", "key": key}))
    found = server.handle(get, peer(3), 10)["providerPeers"]
    assert found == [{"id": ALICE.multihash, "addrs": [bytes(ADDR)], "connection": "NOT_CONNECTED"}]
    # addresses are served 24 h, the record 48 h
    assert server.handle(get, peer(3), PROVIDER_ADDRS_TTL + 1)["providerPeers"][0]["addrs"] == []
    assert server.handle(get, peer(3), PROVIDE_VALIDITY + 1)["providerPeers"] == []


@pytest.mark.parametrize("request_", [
    {"type": "ADD_PROVIDER", "key": b"", "providerPeers": []},
    {"type": "ADD_PROVIDER", "key": bytes(81), "providerPeers": []},
    {"type": "PUT_VALUE", "key": b"/pk/x", "record": {"key": b"/pk/x", "value": b"v"}},
])
def test_refused_requests_close_the_stream(request_):
    if request_["type"] == "ADD_PROVIDER":
        request_["providerPeers"] = [{"id": ALICE.multihash}]
    stream = KadStream(KadDhtServer(ME), ALICE)
    stream.receive_data(KadMessageFrame.build(request_), 0)
    assert stream.data_to_send() == b""
    assert isinstance(stream.next_event(), RequestRefused)


def test_several_requests_on_one_stream_and_bad_frames():
    stream = KadStream(server_with_peers(3), ALICE)
    ping = KadMessageFrame.build({"type": "PING"})
    find = KadMessageFrame.build({"type": "FIND_NODE", "key": ME.multihash})
    wire = ping + find
    for i in range(len(wire)):  # byte by byte
        stream.receive_data(wire[i:i + 1], 0)
    out = stream.data_to_send()
    first = KadMessageFrame.parse(out)
    assert first.type == "PING"
    second = KadMessageFrame.parse(out[len(KadMessageFrame.build(first)):])
    assert second.type == "FIND_NODE" and len(second.closerPeers) == 3
    assert stream.next_event() is NEED_DATA
    with pytest.raises(RemoteProtocolError):
        KadStream(KadDhtServer(ME), ALICE).receive_data(b"\xff\xff\xff\xff\x0f", 0)
