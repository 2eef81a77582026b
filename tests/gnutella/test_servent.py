"""The sans-I/O servent: handshakes, routing, QRP, Bye and hostile input, all in memory (the
servents joined by :class:`p2pkit.gnutella.simulator.Network` over a MemoryNetwork)."""

from __future__ import annotations

import hashlib
import random

import pytest

from p2pkit.core import MemoryNetwork
from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import (
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionRefused,
    Push,
    QueryHit,
)
from p2pkit.gnutella.servent import HARD_TTL_LIMIT, MAX_PINGS_PER_WINDOW, Servent, SharedFile
from p2pkit.gnutella.simulator import Network as ServentNetwork
from p2pkit.gnutella.stream import StreamReader


def shared(*names):
    return [SharedFile(index=i, name=n, size=1000 * i, sha1=hashlib.sha1(n.encode()).digest())
            for i, n in enumerate(names, 1)]


class Network:
    """Named servents joined over a MemoryNetwork (h11's ConnectionPair, for many nodes)."""

    def __init__(self, seed=0):
        self.rng = random.Random(seed)
        self.nodes = {}
        self.wires = ServentNetwork(MemoryNetwork(seed=seed))

    def add(self, name, role, files=(), **kw):
        self.nodes[name] = Servent(role=role, rng=random.Random(self.rng.random()),
                                   shared=shared(*files), **kw)
        return self.nodes[name]

    def link(self, a, b):
        self.wires.link(self.nodes[a], b, self.nodes[b], a)
        self.pump()

    def pump(self, now=0.0):
        """Write what every servent queued, deliver everything up to ``now``."""
        for servent in self.nodes.values():
            self.wires.flush(servent)
        self.wires.run(until=now)

    def inject(self, name, conn_id, data):
        """``data`` arrives at ``name`` on its connection ``conn_id`` (a hostile peer)."""
        self.wires.inject(self.nodes[name].connections[conn_id], data)

    def events(self, name, kind=object):
        return [e for e in self.wires.take_events(self.nodes[name]) if isinstance(e, kind)]


@pytest.fixture
def net():
    """Two ultrapeers and three leaves, as in the gtk-gnutella capture."""
    n = Network()
    n.add("up1", "ultrapeer")
    n.add("up2", "ultrapeer")
    n.add("a", "leaf", ["alpha_protocol_notes.txt", "bravo_charlie_demo.ogg"])
    n.add("b", "leaf", ["alpha_ultra_readme.txt"])
    n.add("c", "leaf", ["kilo_lima_firewalled.bin"], firewalled=True)
    n.link("up2", "up1")
    n.link("a", "up1")
    n.link("b", "up1")
    n.link("c", "up2")
    for name in n.nodes:
        n.events(name)
    return n


def test_handshake_roles(net):
    up1 = net.nodes["up1"]
    assert {c: (c_.state, c_.peer_is_ultrapeer) for c, c_ in up1.connections.items()} == {
        "up2": ("ESTABLISHED", True), "a": ("ESTABLISHED", False), "b": ("ESTABLISHED", False)}


def test_leaf_refuses_incoming_and_leaf_to_leaf():
    n = Network()
    n.add("x", "leaf")
    n.add("y", "leaf")
    n.link("x", "y")
    refused = n.events("x", ConnectionRefused)
    assert refused and refused[0].status_code == 503
    assert n.nodes["y"].connections["x"].state == "CLOSED"
    assert [e.code for e in n.events("y", ConnectionClosed)] == [503]


def test_query_routed_by_qrp_and_hit_back_along_reverse_path(net):
    guid = net.nodes["a"].query("kilo", now=1.0)
    net.pump()
    hits = net.events("a", QueryHit)
    assert len(hits) == 1 and hits[0].query_guid == guid
    assert [r.file_name for r in hits[0].descriptor.results] == ["kilo_lima_firewalled.bin"]
    assert hits[0].descriptor.trailer.open_data[0] & 1  # push flag of the firewalled leaf
    # QRP: leaf b's table has no "kilo", so up1 never sent it the query; the hit went to a only.
    assert net.nodes["b"].received["query"] == 0
    assert net.nodes["b"].received["query_hit"] == 0
    assert net.nodes["c"].received["query"] == 1


def test_query_by_urn(net):
    sha1 = hashlib.sha1(b"alpha_ultra_readme.txt").digest()
    urn = SharedFile(index=0, name="", size=0, sha1=sha1).urn
    net.nodes["up2"].query("", urn=urn, now=1.0)
    net.pump()
    [hit] = net.events("up2", QueryHit)
    assert hit.descriptor.results[0].file_name == "alpha_ultra_readme.txt"
    assert hit.descriptor.results[0].extensions[0].text == urn


def test_push_routed_to_firewalled_leaf(net):
    net.nodes["a"].query("kilo", now=1.0)
    net.pump()
    [hit] = net.events("a", QueryHit)
    assert net.nodes["a"].push(hit.descriptor.trailer.servent_id, 1, now=2.0)
    net.pump()
    [push] = net.events("c", Push)
    assert push.descriptor.servent_id == net.nodes["c"].guid and push.descriptor.hops == 2


def capture_link(net, a, b):
    """Decode what ``a`` sends to ``b`` from now on."""
    reader = StreamReader(handshake=False)
    seen = []
    conn = net.nodes[b].connections[a]
    original = conn.receive_data

    def spy(data, now):
        seen.extend(f.descriptor for f in reader.feed(data))
        original(data, now)

    conn.receive_data = spy
    return seen


def test_ttl_decrement_hops_increment_and_cap(net):
    seen = capture_link(net, "up1", "up2")
    query = dict(guid=b"Q" * 16, type="query", ttl=12, hops=0, min_speed=0,
                 search_criteria="kilo", extensions=[])
    net.inject("up1", "a", Descriptor.build(query))
    net.inject("up1", "a", Descriptor.build(query))  # duplicate GUID
    net.pump()
    forwarded = [d for d in seen if d.type == "query"]
    assert len(forwarded) == 1  # the duplicate was dropped
    assert (forwarded[0].ttl, forwarded[0].hops) == (net.nodes["up1"].max_ttl - 1, 1)


def test_bounded_routing_table():
    n = Network()
    n.add("up", "ultrapeer", max_routes=5)
    n.add("leaf", "leaf")
    n.link("leaf", "up")
    for _ in range(10):
        n.nodes["leaf"].query("anything", now=1.0)
    n.pump()
    assert len(n.nodes["up"].routes) == 5


def test_ping_pong_caching(net):
    # up1 learns pongs from its neighbours, then answers a TTL 2 ping from its cache (its own
    # pong and those of b and up2, not a's own).
    net.nodes["up1"].ping(now=1.0)
    net.pump()
    assert len(net.nodes["up1"].pong_cache) == 3
    seen = capture_link(net, "up1", "a")
    net.nodes["a"].ping(now=2.0, ttl=2)
    net.pump()
    pongs = [d for d in seen if d.type == "pong"]
    assert len(pongs) == 1 + 2 and {p.guid for p in pongs} == {pongs[0].guid}
    assert net.nodes["up2"].received["ping"] == 1  # the ping was not broadcast


def test_bye_closes(net):
    net.nodes["a"].close("up1", 0.0, code=200, reason="Servent shutdown")
    assert net.nodes["a"].connections["up1"].state == "CLOSING"  # the Bye is on its way
    net.pump()
    [closed] = net.events("up1", ConnectionClosed)
    assert (closed.conn_id, closed.code, closed.by_peer) == ("a", 200, True)
    assert closed.reason.startswith("Servent shutdown")
    # up1 closed its side at once (bye §4); a sees the end of the stream: closed, not by peer
    [closed] = net.events("a", ConnectionClosed)
    assert (closed.conn_id, closed.code, closed.by_peer) == ("up1", 200, False)
    assert net.nodes["a"].connections["up1"].state == "CLOSED"


@pytest.mark.parametrize("data, code", [
    (b"Q" * 16 + bytes([0x80, 20, 0]) + (1 << 30).to_bytes(4, "little"), 400),  # huge length
    (b"Q" * 16 + bytes([0x80, HARD_TTL_LIMIT, 1, 6, 0, 0, 0]) + b"\x00\x00ab\x00\x00", 403),
    (b"Q" * 16 + bytes([0x01, 1, 0, 3, 0, 0, 0]) + b"xyz", 501),  # garbage: a 3-byte pong
])
def test_hostile_input_drops_only_that_connection(net, data, code):
    seen = capture_link(net, "up1", "a")
    net.inject("up1", "a", data)
    assert net.nodes["up1"].connections["a"].state == "CLOSING"
    net.pump()  # the Bye reaches a, which closes: up1 sees the end of the stream
    [closed] = net.events("up1", ConnectionClosed)
    assert closed.conn_id == "a" and closed.code == code
    assert [d.code for d in seen if d.type == "bye"] == [code]
    assert net.nodes["up1"].connections["b"].state == "ESTABLISHED"
    net.nodes["b"].query("kilo", now=2.0)  # the others keep working
    net.pump()
    assert net.events("b", QueryHit)


def test_ping_flood(net):
    up1 = net.nodes["up1"]
    for i in range(MAX_PINGS_PER_WINDOW + 1):
        ping = dict(guid=bytes([i]) * 16, type="ping", ttl=1, hops=0, extensions=[])
        up1.connections["a"].receive_data(Descriptor.build(ping), 1.0 + i * 0.01)
    net.pump()
    [closed] = net.events("up1", ConnectionClosed)
    assert (closed.conn_id, closed.code) == ("a", 401)


def test_established_event_and_local_errors():
    n = Network()
    n.add("up", "ultrapeer")
    n.add("leaf", "leaf")
    n.link("leaf", "up")
    [event] = n.events("up", ConnectionEstablished)
    assert event.headers["User-Agent"].startswith("p2pkit") and not event.peer_is_ultrapeer
    with pytest.raises(LocalProtocolError):
        n.nodes["leaf"].query("x", 0.0, ttl=99)
    with pytest.raises(LocalProtocolError):
        Servent(role="peer")


def test_ttl_1_query_still_reaches_matching_leaves(net):
    """ultrapeer_qrp §2.4: leaves get it at TTL 0; other ultrapeers do not get it at all."""
    to_leaf = capture_link(net, "up1", "a")
    query = dict(guid=b"T" * 16, type="query", ttl=1, hops=1, min_speed=0,
                 search_criteria="alpha", extensions=[])
    net.inject("up1", "up2", Descriptor.build(query))
    net.pump()
    [forwarded] = [d for d in to_leaf if d.type == "query"]
    assert (forwarded.ttl, forwarded.hops) == (0, 2)
    assert net.nodes["b"].received["query"] == 1  # b shares an "alpha" file too
    assert net.nodes["up2"].received["query_hit"] == 2  # both hits came back to the sender


def test_handshake_looks_like_gtk_gnutella():
    """Our blocks, dissected, use gtk-gnutella 1.2.3's header names in its order."""
    from p2pkit.gnutella.handshake import Handshake, handshake_end
    from tests.pcap_payloads import tcp_streams

    gtkg = next(d for d in tcp_streams("gtkg123-plain-up2-3leaves.pcap").values()
                if d.startswith(b"GNUTELLA CONNECT"))
    gtk_names = [name for name, _ in Handshake.parse(gtkg[:handshake_end(gtkg)]).headers]
    leaf = Servent(role="leaf", rng=random.Random(1))
    data = leaf.connect("up", 0.0, remote_ip="127.0.0.10").data_to_send()
    ours = [name for name, _ in Handshake.parse(data).headers]
    # gtk-gnutella 1.2.x sends both too (ndpi-gnutella.pcap): Accept-Encoding when its link
    # compression is on, which it was not in this lab capture
    assert set(ours) - set(gtk_names) == {"Listen-IP", "Accept-Encoding"}
    shared_names = [n for n in gtk_names if n in ours]
    assert len(shared_names) == 9 and [n for n in ours if n in gtk_names] == shared_names
