"""GUESS 0.2 as an ultrapeer (p2pkit.gnutella.udp, query_keys §2.x): gtk-gnutella's own query
key request and GUESS query (tests/data/captures/ndpi-gnutella.pcap frames 762 and 2586, sent
by the gtk-gnutella 1.2.2 leaf 10.0.2.15) answered by a p2pkit ultrapeer in memory."""

from __future__ import annotations

from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.udp import GUESS_VERSION
from tests.gnutella.test_servent import Network

#: Frame 762: a TTL 1 UDP ping with an empty GGEP "QK" (a query key request).
QK_PING = bytes.fromhex("cb1b31023c1c74d5ffbfc72c3bd61c0300010005000000c382514b40")
#: Frame 2586: the GUESS query `pinkfloyd`, TTL 1, GGEP QK (the key another ultrapeer gave,
#: 5acaf69d), SCP, Z, PR.
GUESS_QUERY = bytes.fromhex("5d2fe235310200641ac4f2e94e09700f80010021000000f90070696e6b666c"
                            "6f796400c302514b445acaf69d0353435040015a4082505240")
SOURCE = ("10.0.2.15", 28681)


def ggep(d):
    return {e.id: e for b in d.get("extensions") or () if b.kind == "ggep" for e in b.extensions}


def network():
    n = Network()
    n.add("up", "ultrapeer", ["pinkfloyd live.ogg"], udp=True, listen=("127.0.0.10", 6346))
    n.add("leaf", "leaf", ["pinkfloyd wall.mp3"])
    n.add("other", "leaf", ["kilo lima.txt"])
    n.link("leaf", "up")
    n.link("other", "up")
    for name in n.nodes:
        n.events(name)
    return n


def with_key(query: bytes, key: bytes) -> bytes:
    d = Descriptor.parse(query)
    for block in d.extensions:
        for e in block.extensions:
            if e.id == "QK":
                e.data = e.payload = key
    return Descriptor.build(d)


def test_query_key_request_gets_a_pong_with_our_key_and_gue():
    up = network().nodes["up"]
    up.udp.receive_datagram(QK_PING, SOURCE, 100.0)
    [(data, addr)] = up.udp.datagrams_to_send()
    pong = Descriptor.parse(data)
    assert addr == SOURCE and pong.guid == QK_PING[:16] and (pong.ttl, pong.hops) == (1, 0)
    ext = ggep(pong)
    assert list(ext) == ["VC", "GUE", "UP", "DU", "QK"]
    assert ext["GUE"].value == GUESS_VERSION == 0x02  # as gtk-gnutella's pongs (frame 763)
    assert up.udp.query_keys.valid(ext["QK"].payload, SOURCE, 100.0)
    assert not up.udp.query_keys.valid(ext["QK"].payload, ("10.0.2.15", 28682), 100.0)


def test_query_with_a_key_not_ours_gets_only_a_fresh_key():
    n = network()
    up = n.nodes["up"]
    up.udp.receive_datagram(GUESS_QUERY, SOURCE, 5.0)
    [(data, addr)] = up.udp.datagrams_to_send()
    pong = Descriptor.parse(data)
    assert pong.type == "pong" and pong.guid == GUESS_QUERY[:16]
    assert up.udp.query_keys.valid(ggep(pong)["QK"].payload, SOURCE, 5.0)
    assert up.udp.guess_refused == 1 and up.udp.guess_queries == 0
    n.pump()
    assert n.nodes["leaf"].received["query"] == 0  # not run, not forwarded


def test_query_with_our_key_is_run_here_and_at_matching_leaves_hits_over_udp():
    n = network()
    up = n.nodes["up"]
    key = up.udp.query_keys.key(SOURCE, 0.0)
    up.udp.receive_datagram(with_key(GUESS_QUERY, key), SOURCE, 1.0)
    out = [(Descriptor.parse(data), addr) for data, addr in up.udp.datagrams_to_send()]
    assert [(d.type, addr) for d, addr in out] == [("pong", SOURCE), ("query_hit", SOURCE)]
    ack, hit = out[0][0], out[1][0]
    # GUESS §2.2.1: the ack pong has the query's GUID and says GUE; no key (ours was valid)
    assert ack.guid == hit.guid == GUESS_QUERY[:16] and "GUE" in ggep(ack)
    assert "QK" not in ggep(ack)
    assert [r.file_name for r in hit.results] == ["pinkfloyd live.ogg"]
    assert up.udp.guess_queries == 1
    # GUESS §2.2.2: "forwarding TTL=1 queries received over UDP to leaves", through QRP,
    # with QK and SCP stripped (§10)
    n.pump(1.0)
    leaf, other = n.nodes["leaf"], n.nodes["other"]
    assert leaf.received["query"] == 1 and other.received["query"] == 0
    # the leaf's hit comes back to the ultrapeer over TCP and goes on over UDP to the source
    n.pump(2.0)
    [(data, addr)] = up.udp.datagrams_to_send()
    routed = Descriptor.parse(data)
    assert addr == SOURCE and routed.type == "query_hit" and routed.guid == GUESS_QUERY[:16]
    assert [r.file_name for r in routed.results] == ["pinkfloyd wall.mp3"] and routed.hops == 1
    # a duplicate (the same GUID again) is dropped after its ack
    up.udp.receive_datagram(with_key(GUESS_QUERY, key), SOURCE, 3.0)
    assert [Descriptor.parse(d).type for d, _ in up.udp.datagrams_to_send()] == ["pong"]


def test_stripped_query_reaches_the_leaf_without_qk_and_scp():
    n = network()
    up = n.nodes["up"]
    sent = []
    leaf_conn = up.connections["leaf"]
    original = up._send

    def spy(conn, d):
        if conn is leaf_conn and d["type"] == "query":
            sent.append(Container(d))
        original(conn, d)

    up._send = spy
    up.udp.receive_datagram(with_key(GUESS_QUERY, up.udp.query_keys.key(SOURCE, 0.0)),
                            SOURCE, 1.0)
    [q] = sent
    assert (q.ttl, q.hops) == (0, 1) and list(ggep(q)) == ["Z", "PR"]
    assert q.search_criteria == "pinkfloyd"


def test_a_leaf_does_not_run_udp_queries():
    n = Network()
    leaf = n.add("leaf", "leaf", ["pinkfloyd wall.mp3"], udp=True)
    leaf.udp.receive_datagram(GUESS_QUERY, SOURCE, 1.0)
    assert leaf.udp.datagrams_to_send() == [] and leaf.udp.dropped == 1


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=20), st.binary(max_size=60))
def test_random_keys_and_tails_never_raise_and_never_run(key, tail):
    """A GUESS query with any key (but ours) is refused with a fresh key; random bytes after
    gtk-gnutella's query header are dropped or refused, never raise."""
    up = network().nodes["up"]
    up.udp.receive_datagram(with_key(GUESS_QUERY, key), SOURCE, 1.0)
    up.udp.receive_datagram(GUESS_QUERY[:23] + tail, SOURCE, 1.0)
    assert up.udp.guess_queries == 0
