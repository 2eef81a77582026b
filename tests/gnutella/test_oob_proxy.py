"""Out-of-band proxying by an ultrapeer (out-of-band-v3 §"Ultrapeer Proxying", p2pkit.gnutella
.servent): a leaf that cannot take UDP hits gets them through its ultrapeer, which sends the
query under a GUID naming its own address, Acks the Reply Numbers and hands the hits to the
leaf over TCP under the leaf's GUID; the leaf's LIME/13v1 veto stops it; state per leaf capped."""

from __future__ import annotations

from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import QueryHit
from p2pkit.gnutella.servent import MAX_OOB_PROXIED_PER_LEAF
from p2pkit.gnutella.udp import oob_address
from tests.gnutella.test_servent import Network

UP1 = ("127.0.0.10", 6346)


def network(**leaf_kw):
    """q (leaf, no UDP) - up1 (reachable over UDP) - up2 - r (leaf sharing "kilo", UDP)."""
    n = Network(seed=8)
    up1 = n.add("up1", "ultrapeer", udp=True, listen=UP1, vendor_messages=True)
    n.add("up2", "ultrapeer", udp=True, listen=("127.0.0.14", 6350), vendor_messages=True)
    n.add("q", "leaf", listen=("127.0.0.11", 6347), vendor_messages=True, **leaf_kw)
    n.add("r", "leaf", ["kilo_lima.bin"], udp=True, listen=("127.0.0.13", 6349))
    n.link("up2", "up1")
    n.link("q", "up1")
    n.link("r", "up2")
    # a connect-back ping reached up1: it is not UDP-firewalled
    up1.udp.expect_connect_back(b"C" * 16)
    up1.udp.receive_datagram(Descriptor.build(dict(guid=b"C" * 16, type="ping", ttl=1, hops=0,
                                                   extensions=[])), ("127.0.0.14", 6350), 0.0)
    up1.udp.datagrams_to_send()
    assert up1.udp.reachable
    for name in n.nodes:
        n.events(name)
    return n


def test_leaf_query_is_proxied_and_its_hits_come_back_under_its_guid():
    n = network()
    up1, q, r = n.nodes["up1"], n.nodes["q"], n.nodes["r"]
    # up1 lists LIME/13v1 now that it proxies (out-of-band-v3)
    assert ("LIME", 13) in q.connections["up1"].peer_messages
    guid = q.query("kilo", 1.0)
    n.pump(1.5)
    assert n.events("q", QueryHit) == []  # r answers out of band, to up1
    [(data, addr)] = r.udp.datagrams_to_send()
    reply = Descriptor.parse(data)
    assert reply.name == "oob_reply_indication" and addr == UP1
    proxied = reply.guid
    assert proxied != guid and oob_address(proxied) == UP1  # out-of-band §B.2, up1's address
    assert proxied[4:13] == guid[4:13]
    up1.udp.receive_datagram(data, r.listen, 1.6)
    [(data, addr)] = up1.udp.datagrams_to_send()
    ack = Descriptor.parse(data)
    assert (ack.name, ack.guid, ack.body.wanted, addr) == ("oob_reply_ack", proxied, 1, r.listen)
    r.udp.receive_datagram(data, UP1, 1.7)
    [(data, addr)] = r.udp.datagrams_to_send()
    assert addr == UP1
    up1.udp.receive_datagram(data, r.listen, 1.8)
    n.pump(2.0)
    [hit] = n.events("q", QueryHit)
    assert hit.query_guid == guid and hit.descriptor.guid == guid  # the leaf's own GUID
    assert hit.descriptor.results[0].file_name == "kilo_lima.bin"
    assert up1.received["query_hit"] == 0  # it never crossed TCP before up1


def test_veto_stops_proxying():
    """out-of-band-v3: LIME/13v1 without its byte, "all proxying is vetoed"."""
    n = network()
    up1, q, r = n.nodes["up1"], n.nodes["q"], n.nodes["r"]
    veto = Descriptor.build(dict(guid=bytes(range(16)), type="vendor_message", ttl=1, hops=0,
                                 vendor="LIME", selector=13, version=1, payload=None,
                                 body=dict(version=None)))
    n.inject("up1", "q", veto)
    n.pump(0.5)
    assert up1.connections["q"].oob_proxy_allowed is False
    q.query("kilo", 1.0)
    n.pump(1.5)
    assert r.udp.datagrams_to_send() == []  # a plain query: r answers over TCP
    assert len(n.events("q", QueryHit)) == 1
    # the byte 0: "all OOB proxying is allowed" again
    allow = Descriptor.build(dict(guid=bytes(range(16)), type="vendor_message", ttl=1, hops=0,
                                  vendor="LIME", selector=13, version=1, payload=None,
                                  body=dict(version=0)))
    n.inject("up1", "q", allow)
    n.pump(2.0)
    assert up1.connections["q"].oob_proxy_allowed is True


def test_proxied_state_is_capped_per_leaf():
    n = network()
    up1, q = n.nodes["up1"], n.nodes["q"]
    for i in range(MAX_OOB_PROXIED_PER_LEAF + 4):
        q.query(f"kilo {i}", 1.0 + i * 0.01)
    n.pump(1.5)
    leaf = up1.connections["q"]
    assert len(leaf.oob_proxied) == MAX_OOB_PROXIED_PER_LEAF
    assert set(up1.oob_proxies) == set(leaf.oob_proxied.values())
