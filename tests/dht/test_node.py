"""The sans-I/O DHT node: answers (BEP 5, 32, 42, 43, 44, 51), security, and small networks."""

from __future__ import annotations

import dataclasses
import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.core import NEED_DATA, DatagramCore, Event, MemoryNetwork, run_datagram_core
from p2pkit.dht import items as bep44
from p2pkit.dht import krpc
from p2pkit.dht.krpc import ErrorCode
from p2pkit.dht.node import (
    MAX_RESPONSE_SIZE,
    LookupCompleted,
    Node,
    NodeIdMismatch,
    PingCompleted,
    StoreCompleted,
)
from p2pkit.dht.security import RateLimiter
from p2pkit.dht.simulator import Network
from p2pkit.errors import LocalProtocolError
from tests.pcap_payloads import udp_datagrams

ME = ("10.0.0.1", 6881)
PEER = ("10.0.0.2", 7000)


def server(**options) -> Node:
    return Node(bytes([0x55]) * 20, rng=random.Random(7), now=0.0, **options)


def ask(node: Node, message, addr=PEER, now: float = 1.0):
    """Send one query to ``node``; return its decoded answers to ``addr`` (not its queries)."""
    data = message if isinstance(message, bytes) else krpc.encode(message)
    node.receive_datagram(data, addr, now)
    sent = [krpc.decode(d) for d, to in node.datagrams_to_send(now) if to == addr]
    return [m for m in sent if m.y != "q"]


def q(method, t=b"tt", **args):
    args.setdefault("id", bytes([0x77]) * 20)
    return krpc.query(method, t, **args)


def test_ping_answer_carries_id_ip_and_version():
    node = server()
    node.receive_datagram(krpc.encode(q("ping")), PEER, 1.0)
    answer, verify = (krpc.decode(d) for d, _ in node.datagrams_to_send(1.0))
    assert (answer.y, answer.t, answer.r.id) == ("r", b"tt", bytes([0x55]) * 20)
    # BEP 42: "all DHT responses SHOULD include a top-level field called ip"
    assert (str(answer.ip.ip), answer.ip.port) == PEER
    assert answer.v == b"PK\x00\x01"
    assert verify.method == "ping"  # an unknown querier is pinged before it enters the table


def test_get_peers_token_then_announce_then_values():
    node = server()
    info_hash = bytes([0xAB]) * 20
    [answer] = ask(node, q("get_peers", info_hash=info_hash))
    assert "values" not in answer.r and "nodes" in answer.r
    token = answer.r.token
    [ok] = ask(node, q("announce_peer", info_hash=info_hash, port=6999, token=token))
    assert ok.y == "r"
    [ok] = ask(node, q("announce_peer", info_hash=info_hash, port=1, implied_port=1,
                       token=token), addr=("10.0.0.2", 7001))
    [answer] = ask(node, q("get_peers", info_hash=info_hash), addr=("10.0.0.3", 1))
    peers = {(str(p.ip), p.port) for p in answer.r["values"]}
    assert peers == {("10.0.0.2", 6999), ("10.0.0.2", 7001)}  # implied_port: source port


def test_bad_token_gets_203():
    node = server()
    ask(node, q("get_peers", info_hash=bytes(20)))
    [err] = ask(node, q("announce_peer", info_hash=bytes(20), port=1, token=b"forged"))
    assert (err.y, err.e.code) == ("e", ErrorCode.PROTOCOL_ERROR)
    # a token given to another IP is refused too
    [answer] = ask(node, q("get_peers", info_hash=bytes(20)), addr=("10.0.0.3", 1))
    [err] = ask(node, q("announce_peer", info_hash=bytes(20), port=1, token=answer.r.token))
    assert err.e.code == ErrorCode.PROTOCOL_ERROR


def test_token_survives_one_rotation_not_two():
    node = server()
    [answer] = ask(node, q("get_peers", info_hash=bytes(20)), now=1.0)
    args = dict(info_hash=bytes(20), port=1, token=answer.r.token)
    assert ask(node, q("announce_peer", **args), now=301.0)[0].y == "r"
    assert ask(node, q("announce_peer", **args), now=901.0)[0].e.code == 203


def test_malformed_query_answered_203_garbage_dropped():
    node = server()
    [err] = ask(node, b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe")
    assert (err.t, err.e.code) == (b"xy", ErrorCode.PROTOCOL_ERROR)
    assert ask(node, b"\x00garbage") == []
    assert ask(node, b"d1:rd2:id3:abce1:t2:xy1:y1:re") == []  # never answer an answer
    assert node.stats["malformed"] == 3


def test_unknown_method_gets_204():
    [err] = ask(server(), q("vote", target=bytes(20)))
    assert err.e.code == ErrorCode.METHOD_UNKNOWN


def test_rate_limit_per_source():
    node = server(rate_limit=RateLimiter(rate=1.0, burst=3))
    answers = [len(ask(node, q("ping", t=bytes([i])), now=1.0)) for i in range(5)]
    assert [bool(a) for a in answers] == [True, True, True, False, False]
    assert ask(node, q("ping"), addr=("10.0.0.9", 1), now=1.0)  # another source is served
    assert node.stats["rate_limited"] == 2


def test_answers_are_bounded_in_size():
    node = server()
    info_hash = bytes([1]) * 20
    for i in range(400):
        node.peers.add(info_hash, (str(ipaddress.IPv6Address(i + 1)), 1000 + i), now=0.0)
    query = krpc.encode(q("get_peers", info_hash=info_hash))
    node.receive_datagram(query, PEER, 1.0)
    [(answer, _)] = [x for x in node.datagrams_to_send(1.0) if krpc.decode(x[0]).y == "r"]
    assert len(answer) <= MAX_RESPONSE_SIZE
    assert len(krpc.decode(answer).r["values"]) > 10


def test_read_only_querier_is_not_added():
    node = server()
    msg = q("ping")
    msg.ro = 1
    node.receive_datagram(krpc.encode(msg), PEER, 1.0)
    assert len(node.datagrams_to_send(1.0)) == 1  # the answer only: no verification ping
    assert len(node.table) == 0


def test_bep42_mismatch_reported_and_enforced():
    valid = bytes.fromhex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401")
    for enforce in (False, True):
        node = server(enforce_node_id=enforce)
        for nid, addr in ((valid, ("124.31.75.21", 1)), (bytes([9]) * 20, ("21.75.31.124", 1))):
            node.ping(addr, 0.0)
            [(data, _)] = node.datagrams_to_send(0.0)
            t = krpc.decode(data).t
            node.receive_datagram(krpc.encode(krpc.response(t, id=nid)), addr, 0.5)
        events = []
        while (e := node.next_event()) is not NEED_DATA:
            events.append(e)
        assert [e.addr for e in events if isinstance(e, NodeIdMismatch)] == [("21.75.31.124", 1)]
        assert valid in node.table
        assert (bytes([9]) * 20 in node.table) is not enforce


def test_unanswered_ping_times_out():
    node = server(query_timeout=2.0)
    op = node.ping(PEER, 0.0)
    node.datagrams_to_send(0.0)
    assert node.get_timer() == 2.0
    node.handle_timer(2.0)
    assert node.next_event() == PingCompleted(operation=op, addr=PEER, node_id=None)


def test_unsolicited_answer_dropped():
    node = server()
    node.receive_datagram(krpc.encode(krpc.response(b"zz", id=bytes(20))), PEER, 1.0)
    assert node.stats["unsolicited"] == 1 and node.next_event() is NEED_DATA


def test_bep44_put_get_rules_on_one_node():
    node = server()
    seed = bytes(range(32))
    k = bep44.public_key(seed)
    target = bep44.mutable_target(k, b"salt")
    [answer] = ask(node, q("get", target=target))
    token = answer.r.token

    def put(seq, v=b"hello", cas=None, sig=None, salt=b"salt"):
        args = dict(token=token, v=v, k=k, seq=seq, sig=sig or bep44.sign(seed, seq, v, salt))
        if salt:
            args["salt"] = salt
        if cas is not None:
            args["cas"] = cas
        return ask(node, q("put", **args))[0]

    assert put(2).y == "r"
    assert put(1).e.code == ErrorCode.SEQUENCE_NUMBER_LESS_THAN_CURRENT
    assert put(3, cas=1).e.code == ErrorCode.CAS_MISMATCH
    assert put(3, cas=2).y == "r"
    assert put(4, sig=bytes(64)).e.code == ErrorCode.INVALID_SIGNATURE
    assert put(5, salt=b"x" * 65).e.code == ErrorCode.SALT_TOO_BIG
    assert put(6, v=b"x" * 1000).e.code == ErrorCode.MESSAGE_TOO_BIG
    [answer] = ask(node, q("get", target=target))
    assert (answer.r.seq, answer.r.v, answer.r.k) == (3, b"hello", k)
    assert bep44.verify(k, answer.r.sig, 3, b"hello", b"salt")
    [answer] = ask(node, q("get", target=target, seq=3))
    assert "v" not in answer.r and answer.r.seq == 3
    [bad] = ask(node, q("put", token=b"nope", v=b"x"))
    assert bad.e.code == ErrorCode.PROTOCOL_ERROR


def test_sample_infohashes():
    node = server()
    for i in range(30):
        node.peers.add(bytes([i]) * 20, ("10.0.0.9", 1), now=0.0)
    [answer] = ask(node, q("sample_infohashes", target=bytes(20)))
    assert answer.r.num == 30 and len(answer.r.samples) == 20
    assert set(answer.r.samples) <= {bytes([i]) * 20 for i in range(30)}


def test_real_queries_from_capture_are_answered():
    node = server()
    for src, _, payload in udp_datagrams("dht-02-bep44-put-get.pcap"):
        if payload[:1] == b"d" and krpc.decode(payload).y == "q":
            node.receive_datagram(payload, src, 1.0)
    answers = [krpc.decode(d) for d, _ in node.datagrams_to_send(1.0)]
    replies = [a for a in answers if a.y != "q"]
    assert replies and all(a.y == "r" or a.e.code == ErrorCode.PROTOCOL_ERROR for a in replies)
    # the captured puts carry tokens of other nodes: every one of them gets 203
    assert sum(1 for a in replies if a.y == "e") == node.stats["errors_sent"] > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_datagrams_never_crash(data):
    node = server()
    node.receive_datagram(data, PEER, 1.0)
    for out, _ in node.datagrams_to_send(1.0):
        assert len(out) <= MAX_RESPONSE_SIZE


# ---- small networks through the simulator -----------------------------------------------

def joined(n: int, seed: int = 3, **options) -> tuple[Network, list[Node]]:
    net = Network(seed=seed, **options)
    nodes = [net.add_node() for _ in range(n)]
    for node in nodes[1:]:
        node.bootstrap([net.address_of(nodes[0])], net.now)
        net.kick(node)
    net.run()
    for node in nodes:
        node.find_node(node.id, net.now)
        net.kick(node)
    net.run()
    for node in nodes:
        net.events(node)
    return net, nodes


def one_event(net, node, kind):
    net.kick(node)
    net.run()
    found = [e for e in net.events(node) if isinstance(e, kind)]
    assert len(found) == 1
    return found[0]


def test_lookup_finds_the_closest_node():
    net, nodes = joined(40)
    target = random.Random(9).randbytes(20)
    nodes[5].find_node(target, net.now)
    done = one_event(net, nodes[5], LookupCompleted)
    best = sorted((n for n in nodes if n is not nodes[5]),
                  key=lambda n: int.from_bytes(n.id, "big") ^ int.from_bytes(target, "big"))
    assert [c.id for c in done.nodes[:3]] == [n.id for n in best[:3]]
    assert done.queries >= 3 and done.hops >= 1


def test_announce_then_get_peers_elsewhere():
    net, nodes = joined(30)
    info_hash = bytes([0x42]) * 20
    nodes[3].announce_peer(info_hash, 51413, net.now)
    stored = one_event(net, nodes[3], StoreCompleted)
    assert stored.stored >= 5 and not stored.errors
    nodes[20].get_peers(info_hash, net.now)
    found = one_event(net, nodes[20], LookupCompleted)
    assert (net.address_of(nodes[3])[0], 51413) in found.peers


def test_put_get_immutable_and_mutable_across_the_network():
    net, nodes = joined(30, loss=0.05)
    nodes[1].put(b"immutable hello", net.now)
    assert one_event(net, nodes[1], StoreCompleted).stored >= 3
    nodes[25].get(bep44.immutable_target(b"immutable hello"), net.now)
    assert one_event(net, nodes[25], LookupCompleted).item.v == b"immutable hello"
    seed = bytes([7]) * 32
    for seq in (1, 2):
        nodes[2].put([b"list", seq], net.now, seed=seed, seq=seq, salt=b"s")
        assert one_event(net, nodes[2], StoreCompleted).stored >= 3
    nodes[2].put([b"old"], net.now, seed=seed, seq=1, salt=b"s")
    old = one_event(net, nodes[2], StoreCompleted)
    # BEP 44 302 "sequence number less than current" from the nodes that answered (with 5 %
    # loss, a put may also time out: code 0)
    codes = {code for _, code, _ in old.errors}
    assert 302 in codes and codes <= {302, 0}
    assert all(message == "timeout" for _, code, message in old.errors if code == 0)
    target = bep44.mutable_target(bep44.public_key(seed), b"s")
    nodes[17].get(target, net.now, salt=b"s")
    item = one_event(net, nodes[17], LookupCompleted).item
    assert (item.seq, item.v) == (2, [b"list", 2])


def test_lookup_survives_dead_nodes():
    net, nodes = joined(40, seed=5)
    for node in nodes[10:22]:
        net.remove(node)
    nodes[0].get_peers(bytes([0x99]) * 20, net.now)
    done = one_event(net, nodes[0], LookupCompleted)
    alive = {n.id for n in net.nodes.values()}
    assert done.nodes and all(c.id in alive for c in done.nodes)


@pytest.mark.parametrize("capture", ["dht-02-bep44-put-get.pcap"])
def test_mutated_capture_datagrams_never_crash(capture):
    rng = random.Random(11)
    node = server()
    datagrams = [p for _, _, p in udp_datagrams(capture) if p[:1] == b"d"]
    for _ in range(300):
        data = bytearray(rng.choice(datagrams))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        node.receive_datagram(bytes(data[: rng.randrange(len(data) + 1)]), PEER, 1.0)
        node.datagrams_to_send(1.0)


def test_maintenance_pings_questionable_nodes_and_refreshes_buckets():
    node = server()
    node.table.seen_response(bytes([0x90]) * 20, ("10.0.0.7", 1), now=0.0)
    node.handle_timer(61.0)
    assert node.datagrams_to_send(61.0) == []  # nothing questionable or stale yet
    node.handle_timer(15 * 60.0 + 61.0)
    sent = [(krpc.decode(d), to) for d, to in node.datagrams_to_send(0.0)]
    methods = sorted(m.method for m, to in sent if to == ("10.0.0.7", 1))
    assert methods == ["find_node", "ping"]  # the ping, and the stale bucket's refresh lookup
    off = server(maintenance_interval=None)
    assert off.get_timer() is None  # nothing is ever due


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["ping", "find_node", "get_peers", "announce_peer", "get", "put",
                        "sample_infohashes", "vote"]),
       st.dictionaries(st.sampled_from(["target", "info_hash", "port", "implied_port", "token",
                                        "want", "v", "k", "sig", "seq", "cas", "salt"]),
                       st.binary(max_size=70) | st.integers(-2, 2**64)
                       | st.lists(st.binary(max_size=3), max_size=3), max_size=6))
def test_any_well_formed_query_gets_exactly_one_answer(method, arguments):
    node = server()
    message = {b"t": b"tt", b"y": b"q", b"q": method.encode(),
               b"a": {b"id": bytes([0x77]) * 20, **{k.encode(): v for k, v in arguments.items()}}}
    node.receive_datagram(bencode.encode(message), PEER, 1.0)
    sent = node.datagrams_to_send(1.0)
    replies = [m for m in (krpc.decode(d) for d, _ in sent) if m.y != "q"]
    assert len(replies) == 1 and replies[0].t == b"tt"
    assert all(len(d) <= MAX_RESPONSE_SIZE for d, _ in sent)


def test_bep33_scrape_filters_and_noseed():
    """BEP 33: announce_peer with seed=1 counts as a seed; get_peers with scrape=1 answers
    BFsd/BFpe filters of the announced IPs; noseed=1 leaves seeds out of values."""
    from p2pkit.dht.scrape import ScrapeBloomFilter

    node = server()
    info_hash = bytes([0xCD]) * 20
    announcers = {("10.0.0.2", 7000): 1, ("10.0.0.4", 7000): 0, ("10.0.0.5", 7000): None}
    for addr, seed in announcers.items():
        [answer] = ask(node, q("get_peers", info_hash=info_hash), addr=addr)
        args = dict(info_hash=info_hash, port=6881, token=answer.r.token)
        if seed is not None:
            args["seed"] = seed
        assert ask(node, q("announce_peer", **args), addr=addr)[0].y == "r"
    [answer] = ask(node, q("get_peers", info_hash=info_hash, scrape=1), addr=("10.0.0.9", 1))
    seeds, peers = ScrapeBloomFilter(), ScrapeBloomFilter()
    seeds.insert("10.0.0.2")
    for ip in ("10.0.0.4", "10.0.0.5"):
        peers.insert(ip)
    assert answer.r.BFsd == bytes(seeds) and answer.r.BFpe == bytes(peers)
    assert round(ScrapeBloomFilter(answer.r.BFsd).estimate()) == 1
    assert len(answer.r["values"]) == 3
    [answer] = ask(node, q("get_peers", info_hash=info_hash, noseed=1), addr=("10.0.0.9", 1))
    assert {str(p.ip) for p in answer.r["values"]} == {"10.0.0.4", "10.0.0.5"}
    assert "BFsd" not in answer.r


def test_node_is_a_datagram_core_and_its_events_follow_the_contract():
    node = server()
    assert isinstance(node, DatagramCore)
    assert node.next_event() is NEED_DATA
    event = PingCompleted(operation=1, addr=PEER, node_id=None)
    assert isinstance(event, Event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.operation = 2
    with pytest.raises(TypeError):
        PingCompleted(1, PEER, None)  # keyword-only
    # BEP 5: node ids and infohashes are 160 bits
    with pytest.raises(LocalProtocolError):
        PingCompleted(operation=1, addr=PEER, node_id=b"short")
    with pytest.raises(LocalProtocolError):
        LookupCompleted(operation=1, method="find_node", target=bytes(32), nodes=())
    with pytest.raises(LocalProtocolError):
        LookupCompleted(operation=1, method="announce_peer", target=bytes(20), nodes=())
    lookup = LookupCompleted(operation=1, method="get_peers", target=bytes(20), nodes=())
    with pytest.raises(LocalProtocolError):
        StoreCompleted(operation=1, method="get", target=bytes(20), stored=0, errors=(),
                       lookup=lookup)


def test_two_nodes_over_memory_network():
    net = MemoryNetwork(seed=1, latency=(0.05, 0.05))
    # maintenance off: nothing stays due once the pings are answered, so run() ends
    a, b = (Node(rng=random.Random(i), now=0.0, maintenance_interval=None) for i in (1, 2))
    seen_a: list = []
    seen_b: list = []
    kick_a = run_datagram_core(net, ME, a, seen_a.append)
    run_datagram_core(net, PEER, b, seen_b.append)
    op = a.ping(PEER, net.now)
    kick_a()
    net.run()
    # the ping, its answer and b's verification ping, that answer; then the (stale) timers
    assert seen_a == [PingCompleted(operation=op, addr=PEER, node_id=b.id)]
    assert seen_b == [] and net.pending == 0
    assert b.id in a.table and a.id in b.table
    assert (net.sent, net.delivered) == (4, 4)
    assert a.pending_queries == b.pending_queries == 0
    assert a.get_timer() is None and b.get_timer() is None


def test_an_answer_with_a_short_node_id_is_malformed_not_a_crash():
    node = server(query_timeout=2.0)
    op = node.ping(PEER, 0.0)
    [(data, _)] = node.datagrams_to_send(0.0)
    t = krpc.decode(data).t
    short = bencode.encode({b"t": t, b"y": b"r", b"r": {b"id": bytes(19)}})
    node.receive_datagram(short, PEER, 0.5)  # BEP 5: ids are 20 bytes
    assert node.stats["malformed"] == 1 and node.next_event() is NEED_DATA
    node.handle_timer(2.0)
    assert node.next_event() == PingCompleted(operation=op, addr=PEER, node_id=None)
