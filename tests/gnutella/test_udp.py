"""Gnutella over UDP in the servent (p2pkit.gnutella.udp), sans-I/O: gtk-gnutella's own UDP
ping and pong (ndpi-gnutella frames 673 and 763), out-of-band query hits between servents
joined in memory, rate limits and hostile datagrams. The same on sockets, with the UDP
connect-back, runs inside ``unshare -n`` (udp_scenario.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import QueryHit
from p2pkit.gnutella.servent import Servent
from p2pkit.gnutella.udp import MAX_PER_SOURCE, MAX_SOURCES, RATE_WINDOW, oob_address
from tests.gnutella.test_servent import Network

#: gtk-gnutella's UDP ping (GGEP SCP, VC GTKG, DHTIPP) and a gtk-gnutella ultrapeer's UDP pong
#: (VC, GUE, UP, DU, 6, DHT, QK): tests/data/captures/ndpi-gnutella.pcap frames 673 and 763.
GTKG_PING = bytes.fromhex("24d5310268fc1981ffbcc6e01fdbbe0300010018000000c303534350410202"
                          "56434547544b47628644485449505040")
GTKG_PONG = bytes.fromhex(
    "cb1b31023c1c74d5ffbfc72c3bd61c030101004f0000000ad0689ce2480000000008000000c30256434547544b"
    "47620347554541020255504302010902445543805101013650200119f0030021850000000000010001034448"
    "544300000182514b4440e96b47")
PEER = ("127.0.0.50", 28681)


def ggep_ids(d):
    return [e.id for block in d.extensions if block.kind == "ggep" for e in block.extensions]


def test_gtk_gnutella_ping_gets_a_pong_with_ggep_and_cached_hosts():
    up = Servent(role="ultrapeer", udp=True, listen=("127.0.0.10", 6346))
    up.udp.receive_datagram(GTKG_PONG, ("104.156.226.72", 53258), 0.0)  # into the pong cache
    up.udp.receive_datagram(GTKG_PING, PEER, 3600.0)
    [(data, addr)] = up.udp.datagrams_to_send()
    pong = Descriptor.parse(data)
    assert addr == PEER and pong.type == "pong" and pong.guid == GTKG_PING[:16]
    assert (pong.ttl, pong.hops, pong.ip_address, pong.port) == (1, 0, "127.0.0.10", 6346)
    assert ggep_ids(pong) == ["VC", "GUE", "UP", "DU", "IPP"]  # SCP asked for hosts: IPP
    ext = {e.id: e.value for b in pong.extensions for e in b.extensions}
    assert ext["DU"] == 3600 and ext["IPP"] == [dict(ip="104.156.226.72", port=53258)]
    # a leaf's pong: no UP; a ping without SCP: no IPP
    leaf = Servent(role="leaf", udp=True)
    plain = Descriptor.build(dict(guid=bytes(16), type="ping", ttl=1, hops=0, extensions=[]))
    leaf.udp.receive_datagram(plain, PEER, 10.0)
    [(data, _)] = leaf.udp.datagrams_to_send()
    assert ggep_ids(Descriptor.parse(data)) == ["VC", "DU"]


def test_rate_limit_per_source_and_bounded_sources():
    s = Servent(udp=True)
    ping = Descriptor.build(dict(guid=bytes(16), type="ping", ttl=1, hops=0, extensions=[]))
    for _ in range(MAX_PER_SOURCE + 10):
        s.udp.receive_datagram(ping, PEER, 1.0)
    assert len(s.udp.datagrams_to_send()) == MAX_PER_SOURCE and s.udp.dropped == 10
    s.udp.receive_datagram(ping, PEER, 1.0 + RATE_WINDOW + 0.1)  # the window moved on
    assert len(s.udp.datagrams_to_send()) == 1
    for i in range(MAX_SOURCES + 200):
        s.udp.receive_datagram(ping, (f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 1), 20.0)
    assert len(s.udp._sources) == MAX_SOURCES


def test_unsolicited_and_unknown_oob_messages_are_dropped():
    s = Servent(udp=True)
    for selector, body in ((12, dict(hits=3, can_receive_unsolicited=1)),
                           (11, dict(wanted=5))):
        vm = Descriptor.build(dict(guid=bytes(range(16)), type="vendor_message", ttl=1, hops=0,
                                   vendor="LIME", selector=selector, version=2, payload=None,
                                   body=body))
        s.udp.receive_datagram(vm, PEER, 0.0)
    assert s.udp.datagrams_to_send() == []  # unknown GUIDs: "just ignore the message"
    s.udp.receive_datagram(b"\0" * 20000, PEER, 0.0)  # above MAX_DATAGRAM: not read
    assert s.udp.dropped == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_datagrams_never_raise(data):
    s = Servent(role="ultrapeer", udp=True)
    s.udp.receive_datagram(data, PEER, 0.0)
    s.udp.receive_datagram(GTKG_PING[:23] + data, PEER, 0.0)


def oob_network():
    """q (leaf) - up1 - up2 - r (leaf sharing "kilo"): r sees q's query at hops 2."""
    n = Network(seed=8)
    n.add("up1", "ultrapeer", udp=True, listen=("127.0.0.10", 6346))
    n.add("up2", "ultrapeer", udp=True, listen=("127.0.0.14", 6350))
    n.add("q", "leaf", udp=True, listen=("127.0.0.11", 6347))
    n.add("r", "leaf", ["kilo_lima.bin"], udp=True, listen=("127.0.0.13", 6349))
    n.link("up2", "up1")
    n.link("q", "up1")
    n.link("r", "up2")
    return n


def test_out_of_band_hits_come_by_udp_after_reply_number_and_ack():
    n = oob_network()
    q, r = n.nodes["q"], n.nodes["r"]
    # not yet known reachable over UDP: a plain query, its hit comes back over TCP
    q.query("kilo", 0.0)
    n.pump(0.5)
    assert len(n.events("q", QueryHit)) == 1 and n.nodes["up1"].received["query_hit"] == 1
    # a peer's connect-back ping under the GUID we gave it: unsolicited UDP reaches us
    q.udp.expect_connect_back(b"C" * 16)
    q.udp.receive_datagram(Descriptor.build(dict(guid=b"C" * 16, type="ping", ttl=1, hops=0,
                                                 extensions=[])), ("127.0.0.10", 6346), 1.0)
    assert q.udp.reachable
    q.udp.datagrams_to_send()  # (its pong)
    n.pump(1.0)
    assert n.nodes["up1"].received["vendor_message"] == 0  # up1 listed no LIME/13: nothing
    guid = q.query("kilo", 1.0)
    assert oob_address(guid) == ("127.0.0.11", 6347)  # out-of-band §B.2
    n.pump(1.5)
    assert n.events("q", QueryHit) == []  # r answered by UDP: a Reply Number, no TCP hit
    [(data, addr)] = r.udp.datagrams_to_send()
    reply = Descriptor.parse(data)
    assert (reply.name, reply.guid, reply.body.hits, addr) == ("oob_reply_indication", guid, 1,
                                                               q.listen)
    q.udp.receive_datagram(data, r.listen, 1.6)
    [(data, addr)] = q.udp.datagrams_to_send()
    ack = Descriptor.parse(data)
    assert (ack.name, ack.version, ack.body.wanted, addr) == ("oob_reply_ack", 2, 1, r.listen)
    r.udp.receive_datagram(data, q.listen, 1.7)
    [(data, addr)] = r.udp.datagrams_to_send()
    q.udp.receive_datagram(data, r.listen, 1.8)
    [hit] = _events(q)
    assert hit.query_guid == guid and hit.conn_id == ("udp", r.listen)
    assert hit.descriptor.results[0].file_name == "kilo_lima.bin"
    assert n.nodes["up1"].received["query_hit"] == 1  # still only the first, TCP one
    q.udp.receive_datagram(data, r.listen, 1.9)  # the same hit again: not acked twice
    assert _events(q) == [] and q.udp.dropped == 1


def _events(servent):
    out = []
    while (event := servent.udp.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def test_sockets_and_udp_connect_back_in_a_namespace(tmp_path):
    """Four servents on 127.0.0.x inside ``unshare -n``: GTKG/7 both ways, UDP pongs, an
    out-of-band hit and its download (udp_scenario.py)."""
    from tests.interop.conftest import _can_unshare, require, run_in_netns

    require(_can_unshare(), "unshare -n and ip (root or user namespaces)")
    script = Path(__file__).with_name("udp_scenario.py")
    root = Path(__file__).parents[2]
    done = run_in_netns([sys.executable, str(script), str(tmp_path)], timeout=60,
                        cwd=str(root), env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    if done.returncode != 0:
        pytest.fail(f"udp_scenario.py: {done.returncode}\n{done.stdout}\n{done.stderr}")
    assert "all checks passed" in done.stdout


def test_reachable_leaf_vetoes_oob_proxying():
    """out-of-band-v3: a leaf that takes its own out-of-band hits sends LIME/13v1 (no byte:
    every version vetoed) to the ultrapeers that listed it (gtk-gnutella and LimeWire do)."""
    n = oob_network()
    q = n.nodes["q"]
    q.connections["up1"].peer_messages.add(("LIME", 13))  # as a LimeWire ultrapeer's list
    q.udp.expect_connect_back(b"C" * 16)
    q.udp.receive_datagram(Descriptor.build(dict(guid=b"C" * 16, type="ping", ttl=1, hops=0,
                                                 extensions=[])), ("127.0.0.10", 6346), 1.0)
    [data] = [c.data_to_send() for c in q.connections_with_data()]
    veto = Descriptor.parse(data)
    assert (veto.vendor, veto.selector, veto.version, veto.payload) == ("LIME", 13, 1, b"")
    assert veto.name == "oob_proxy_control" and veto.body.version is None


def test_serve_udp_answers_gtk_gnutella_ping(tmp_path):
    """``p2pkit gnutella serve --udp``: the servent's TCP port number is its UDP port too."""
    import os
    import re
    import socket
    import subprocess

    from tests.cli.test_servers_stop import _wait_for

    root = Path(__file__).parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "p2pkit", "gnutella", "serve", "--ultrapeer",
                             "--udp", "--dynamic-query", "--listen", "127.0.0.1:0",
                             "--duration", "20"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen: list = []
        _wait_for(proc, "on 127.0.0.1:", seen)
        port = int(re.search(r"on 127\.0\.0\.1:(\d+)", "".join(seen)).group(1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(GTKG_PING, ("127.0.0.1", port))
            pong = Descriptor.parse(sock.recv(4096))
        assert pong.type == "pong" and pong.guid == GTKG_PING[:16] and pong.port == port
        assert ggep_ids(pong)[:4] == ["VC", "GUE", "UP", "DU"]
    finally:
        proc.terminate()
        proc.wait(10)
