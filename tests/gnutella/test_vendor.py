"""Vendor messages and HSEP: gtk-gnutella 1.2.3's, decoded and rebuilt byte for byte from the
schemas, and p2pkit's servents sending and acting on them (vendor_msg, msg/connect_back,
push_proxy, leaf_guided_queries, HSEP, ultrapeer_qrp)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from construct import Container
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA, StreamPair
from p2pkit.errors import ParseError
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import ConnectBackRequested, ConnectionEstablished
from p2pkit.gnutella.hsep import HsepTable
from p2pkit.gnutella.servent import SUPPORTED_MESSAGES, Servent
from p2pkit.gnutella.server import GnutellaServer
from p2pkit.gnutella.stream import DescriptorFrame, HandshakeFrame
from p2pkit.gnutella.vendor import QUERY_STATUS_STOP
from tests.gnutella.test_descriptors import GTKG, decode_capture
from tests.gnutella.test_servent import Network, shared

FULL = dict(vendor_messages=True, hsep=True, ultrapeer_qrp=True)


def _gtkg_frames():
    """(sender's handshake headers, frame) for every descriptor of the gtk-gnutella capture."""
    for (src, _dst), (_reader, frames, _data) in decode_capture(GTKG).items():
        headers = next((f.handshake.headers for f in frames if isinstance(f, HandshakeFrame)
                        and f.handshake.kind == "connect"), None)
        for f in frames:
            if isinstance(f, DescriptorFrame):
                yield src, headers, f


def test_gtk_gnutella_vendor_messages_rebuild_from_their_bodies():
    seen = Counter()
    for _src, _headers, f in _gtkg_frames():
        d = f.descriptor
        if d.type not in ("vendor_message", "standard_vendor_message"):
            continue
        seen[d.name] += 1
        assert "body" in d or "messages" in d or "features" in d, d.name
        rebuilt = Container(d, payload=None)  # from the body or vector alone
        assert Descriptor.build(rebuilt) == f.data, d.name
    assert seen == {"messages_supported": 8, "features_supported": 8,
                    "tcp_connect_back": 4, "push_proxy_request": 4,
                    "query_status_response": 5}


def test_gtk_gnutella_connect_back_push_proxy_and_query_status_values():
    ports, proxies, statuses = set(), [], []
    for _src, headers, f in _gtkg_frames():
        d = f.descriptor
        name = d.get("name")
        if name == "tcp_connect_back":
            # the listening port the same servent announced in its Node header
            assert headers is not None and headers["Node"].endswith(f":{d.body.port}")
            ports.add(d.body.port)
        elif name == "push_proxy_request":
            # push_proxy §3.1: "VM GUID: 16 byte ServentId of the FS", its handshake GUID
            assert d.guid.hex() == headers["GUID"]
            proxies.append(d.guid)
        elif name == "query_status_response":
            statuses.append(d.body.hits)
    assert ports == {6347, 6348, 6349, 6350}
    assert len(proxies) == 4 and statuses == [1, 2, 3, 1, 1]


def test_gtk_gnutella_hsep_passes_the_sanity_check():
    table = HsepTable(own=(1, 0, 0))
    checked = 0
    for src, _headers, f in _gtkg_frames():
        if f.descriptor.type != "hsep":
            continue
        table.add(src)
        triples = [(t.nodes, t.files, t.kibibytes) for t in f.descriptor.triples]
        assert table.receive(src, triples)
        assert Descriptor.build(f.descriptor) == f.data
        checked += 1
    assert checked >= 20


@given(st.binary(max_size=40), st.sampled_from([("BEAR", 4), ("BEAR", 7), ("BEAR", 12),
                                                ("GTKG", 7), ("LIME", 22), ("LIME", 21)]),
       st.integers(0, 3))
def test_random_vendor_bodies_raise_only_parse_error(body, key, version):
    vendor, selector = key
    payload = vendor.encode() + selector.to_bytes(2, "little") + version.to_bytes(2, "little")
    data = bytes(16) + bytes([0x31, 1, 0]) + len(payload + body).to_bytes(4, "little")
    try:
        d = Descriptor.parse(data + payload + body)
    except ParseError:
        return
    assert Descriptor.build(Container(d, payload=None) if "body" in d else d) == (
        data + payload + body)


def _pair(a: Servent, b: Servent):
    pair = StreamPair(a.connect("b", 0.0), b.accept("a", 0.0), addresses=(
        ("127.0.0.11", 40000), ("127.0.0.10", 6346)))
    pair.ends[0].remote_ip, pair.ends[1].remote_ip = "127.0.0.10", "127.0.0.11"
    pair.write(0, pair.ends[0].data_to_send())
    return pair, pair.run()


def test_two_servents_exchange_what_they_support_and_act_on_it():
    leaf = Servent(role="leaf", rng=random.Random(1), listen=("127.0.0.11", 6347),
                   firewalled=True, shared=shared("kilo_file.bin"), **FULL)
    up = Servent(role="ultrapeer", rng=random.Random(2), listen=("127.0.0.10", 6346), **FULL)
    pair, (leaf_events, up_events) = _pair(leaf, up)
    c_leaf, c_up = pair.ends
    # Messages Supported: exactly what is implemented, both ways
    assert c_up.peer_messages == c_leaf.peer_messages == {(v, s) for v, s, _ in
                                                          SUPPORTED_MESSAGES}
    assert c_up.peer_features == {"HSEP"}
    # TCP connect-back: the leaf is not known reachable, so it asks; the ultrapeer's driver
    # is told to connect to the leaf's address on this connection, at its listening port
    [back] = [e for e in up_events if isinstance(e, ConnectBackRequested)]
    assert (back.ip_address, back.port) == ("127.0.0.11", 6347)
    # the ultrapeer is also unconfirmed and asked the leaf (gtk-gnutella's ultrapeers do too)
    assert [e.port for e in leaf_events if isinstance(e, ConnectBackRequested)] == [6346]
    # push proxy: requested by the firewalled leaf, acknowledged with the ultrapeer's address
    assert leaf.push_proxies == {"b": ("127.0.0.10", 6346)}
    assert up.push_routes.get(leaf.guid) is c_up
    # ... and named in the leaf's hits (push_proxy §4.1: GGEP "PUSH")
    up.query("kilo", 1.0)
    pair.write(1, c_up.data_to_send())
    _, later = pair.run()
    [hit] = [e.descriptor for e in later if type(e).__name__ == "QueryHit"]
    [block] = hit.trailer.private_extensions
    [push] = [e for e in block.extensions if e.id == "PUSH"]
    assert [(p.ip, p.port) for p in push.value] == [("127.0.0.10", 6346)]
    # HSEP: each side counts the other (a leaf sends its OWN triple: one file, 0 KiB)
    assert up.hsep.per_connection["a"][1] == (1, 1, 0)
    assert leaf.hsep.per_connection["b"][1] == (1, 0, 0)
    assert [e.tls for e in up_events if isinstance(e, ConnectionEstablished)] == [False]


def test_query_status_request_and_response():
    leaf = Servent(role="leaf", rng=random.Random(1), **FULL)
    up = Servent(role="ultrapeer", rng=random.Random(2), shared=shared("lima_notes.txt"),
                 **FULL)
    pair, _ = _pair(leaf, up)
    guid = leaf.query("lima", 1.0)
    pair.write(0, pair.ends[0].data_to_send())
    pair.run()  # the hit comes back; the leaf reports 1 hit unsolicited (BEAR/12)
    assert leaf.query_hits[guid] == 1 and up.query_status[guid] == 1
    assert up.query_status_request("a", guid, 2.0)
    pair.write(1, pair.ends[1].data_to_send())
    pair.run()
    assert up.query_status[guid] == 1
    # a query the leaf never ran: 0xFFFF, "the query should be terminated"
    other = bytes(range(16))
    up.query_status_request("a", other, 3.0)
    pair.write(1, pair.ends[1].data_to_send())
    pair.run()
    assert up.query_status[other] == QUERY_STATUS_STOP


def test_hops_flow_zero_from_a_leaf_that_shares_nothing():
    net = Network()
    net.add("up", "ultrapeer", **FULL)
    net.add("empty", "leaf", **FULL)
    net.add("full", "leaf", ["mike_file.txt"], **FULL)
    net.add("asker", "ultrapeer", **FULL)
    for leaf in ("empty", "full"):
        net.link(leaf, "up")
    net.link("asker", "up")
    up = net.nodes["up"]
    assert up.connections["empty"].hops_flow == 0
    assert up.connections["full"].hops_flow is None
    before = net.nodes["empty"].received["query"]
    net.nodes["asker"].query("mike", 1.0)
    net.pump(2.0)
    assert net.nodes["full"].received["query"] == 1
    assert net.nodes["empty"].received["query"] == before == 0


def test_ultrapeers_exchange_route_tables_and_route_the_last_hop_by_them():
    net = Network()
    net.add("up1", "ultrapeer", **FULL)
    net.add("up2", "ultrapeer", **FULL)
    net.add("leaf", "leaf", ["oscar_papa.txt"], **FULL)
    net.link("leaf", "up1")
    net.link("up2", "up1")
    up1, up2 = net.nodes["up1"], net.nodes["up2"]
    # up1's table towards up2 holds its leaf's keywords
    table = up2.connections["up1"].route_table
    assert table.complete and table.matches("oscar") and not table.matches("quebec")
    assert up1.sent["route_table_update"] >= 2 and up2.connections["up1"].up_qrp
    # a query on its last hop goes to up1 only when up1's table matches
    up2.query("quebec", 2.0, ttl=1)
    up2.query("oscar", 2.0, ttl=1)
    net.pump(3.0)
    assert up1.received["query"] == 1
    assert net.nodes["leaf"].received["query"] == 1
    # a new leaf's table reaches up2 at the next update
    net.add("leaf2", "leaf", ["romeo_sierra.txt"], **FULL)
    net.link("leaf2", "up1")
    net.pump(40.0)
    assert up2.connections["up1"].route_table.matches("romeo")


def test_connect_back_over_sockets():
    async def scenario():
        up = GnutellaServer(ultrapeer=True, seed=1)
        leaf = GnutellaServer(seed=2)
        for s in (up, leaf):
            await s.start()
        try:
            await leaf.connect("127.0.0.1", up.port)
            for _ in range(100):
                if leaf.core.reachable and up.core.reachable:
                    break
                await asyncio.sleep(0.05)
            return leaf.core.reachable, up.core.reachable
        finally:
            for s in (leaf, up):
                await s.close()

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == (True, True)


def test_vendor_messages_with_ttl_other_than_one_are_dropped():
    up = Servent(role="ultrapeer", rng=random.Random(2), **FULL)
    leaf = Servent(role="leaf", rng=random.Random(1), shared=shared("x_file.txt"), **FULL)
    pair, _ = _pair(leaf, up)
    c_up = pair.ends[1]
    d = dict(guid=bytes(16), type="vendor_message", ttl=2, hops=0, vendor="BEAR", selector=4,
             version=1, payload=b"\x00")
    assert not c_up.reader.compressed  # a plain link: the bytes go in as built
    c_up.receive_data(Descriptor.build(d), 5.0)
    assert c_up.hops_flow is None
    c_up.receive_data(Descriptor.build(dict(d, ttl=1)), 5.0)  # the same with TTL 1 counts
    assert c_up.hops_flow == 0
    c_up.hops_flow = None
    assert c_up.hops_flow is None and c_up.state == "ESTABLISHED"
    assert c_up.next_event() is NEED_DATA


def test_hsep_every_30_seconds_only_when_changed():
    net = Network()
    net.add("up", "ultrapeer", **FULL)
    net.add("a", "leaf", ["alpha_one.txt"], **FULL)
    net.link("a", "up")
    up, a = net.nodes["up"], net.nodes["a"]
    sent = up.sent["hsep"]
    assert sent == 1 and a.sent["hsep"] == 1  # "as soon as a connection has been established"
    assert up.connections["a"].get_timer() <= 30.0
    net.pump(31.0)
    assert up.sent["hsep"] == sent  # nothing changed: nothing sent
    net.add("b", "leaf", ["bravo_two.txt", "bravo_three.txt"], **FULL)
    net.link("b", "up")
    net.pump(62.0)
    # a's triples now count b one hop further; b's leaf triple reached the ultrapeer
    assert up.sent["hsep"] >= sent + 2
    assert a.hsep.per_connection["up"][2] == (2, 2, 2)  # b: 2 files, 3000 bytes = 2 KiB
    assert up.hsep.horizon()[1] == (2, 3, 2)
    assert a.sent["hsep"] == 1  # a leaf sends again only when its own files change
