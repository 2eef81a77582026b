"""One connection's state table and timers, byte by byte, time driven by ``handle_timer``."""

from __future__ import annotations

import random

import pytest

from p2pkit.core import NEED_DATA, StreamCore
from p2pkit.errors import LocalProtocolError
from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella.descriptors import Descriptor
from p2pkit.gnutella.events import Bye, ConnectionClosed, ConnectionEstablished, QueryHit
from p2pkit.gnutella.servent import (
    BYE_LINGER,
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_HANDSHAKES,
    PING_INTERVAL,
    Servent,
)


def events(conn):
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def established(now=0.0):
    """A leaf and an ultrapeer after the three legs (handshaking_0.6 §3), bytes moved by hand."""
    up = Servent(role="ultrapeer", rng=random.Random(1))
    leaf = Servent(role="leaf", rng=random.Random(2))
    c_leaf, c_up = leaf.connect("up", now), up.accept("leaf", now)
    c_up.receive_data(c_leaf.data_to_send(), now)  # GNUTELLA CONNECT/0.6
    c_leaf.receive_data(c_up.data_to_send(), now)  # GNUTELLA/0.6 200 OK
    c_up.receive_data(c_leaf.data_to_send(), now)  # the final 200 OK, then QRP
    assert c_up.data_to_send() == b"" and c_leaf.data_to_send() == b""
    assert [type(e) for e in events(c_up)] == [ConnectionEstablished]
    assert [type(e) for e in events(c_leaf)] == [ConnectionEstablished]
    return c_leaf, c_up


def test_connection_is_a_stream_core():
    c_leaf, c_up = established()
    assert isinstance(c_leaf, StreamCore) and isinstance(c_up, StreamCore)
    assert (c_leaf.state, c_up.state) == (cs.ESTABLISHED, cs.ESTABLISHED)


def test_silent_peer_loses_its_handshake_slot():
    up = Servent(role="ultrapeer", rng=random.Random(1))
    conn = up.accept("silent", 100.0)
    assert conn.get_timer() == up.get_timer() == 100.0 + HANDSHAKE_TIMEOUT
    conn.handle_timer(100.0 + HANDSHAKE_TIMEOUT - 0.1)  # early: nothing happens
    assert conn.state == cs.ACCEPTING and events(conn) == []
    up.handle_timer(100.0 + HANDSHAKE_TIMEOUT)
    assert conn.state == cs.CLOSED and conn.get_timer() is None and up.get_timer() is None
    assert conn.data_to_send() == b""
    assert events(conn) == [ConnectionClosed(conn_id="silent", code=405,
                                             reason="Handshake timeout", by_peer=False)]
    up.remove("silent")
    assert up.connections == {}
    up.accept("silent", 111.0)  # the id (the driver's socket) is free again


def test_silent_peers_cannot_exhaust_the_servent():
    up = Servent(role="ultrapeer", rng=random.Random(1))
    silent = [up.accept(i, 0.0) for i in range(MAX_HANDSHAKES)]
    up.connect("out", 0.0)  # our own dials are not counted
    silent[0].receive_data(b"GNUT", 0.5)  # the others are idler: one of them goes
    assert up.accept("one more", 1.0).state == cs.ACCEPTING  # the idlest silent one made room
    assert [c.conn_id for c in silent if c.state == cs.CLOSED] == [1]
    [closed] = events(silent[1])
    assert (closed.code, closed.by_peer) == (503, False)
    up.handle_timer(HANDSHAKE_TIMEOUT)
    assert all(c.state == cs.CLOSED for c in silent)


def test_half_answered_handshake_times_out_on_the_connecting_side():
    leaf = Servent(role="leaf", rng=random.Random(2))
    conn = leaf.connect("up", 0.0)
    assert conn.data_to_send().startswith(b"GNUTELLA CONNECT/0.6\r\n")
    conn.receive_data(b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: True\r\n", 1.0)  # no blank line
    assert conn.state == cs.CONNECTING and conn.get_timer() == HANDSHAKE_TIMEOUT
    conn.handle_timer(HANDSHAKE_TIMEOUT)
    [closed] = events(conn)
    assert (closed.code, closed.by_peer, conn.state) == (405, False, cs.CLOSED)


def test_keep_alive_ping_and_its_pong():
    c_leaf, c_up = established()
    assert c_up.get_timer() == PING_INTERVAL
    c_up.handle_timer(PING_INTERVAL)
    ping = c_up.data_to_send()
    # ping-pong §: a TTL 1 ping, hops 0, no payload (23 bytes: the header alone)
    assert len(ping) == 23 and ping[16:] == bytes([0x00, 1, 0, 0, 0, 0, 0])
    assert c_up.get_timer() == 2 * PING_INTERVAL
    c_leaf.receive_data(ping, PING_INTERVAL + 0.1)
    pong = Descriptor.parse(c_leaf.data_to_send())
    assert (pong.type, pong.guid, pong.ttl, pong.hops) == ("pong", ping[:16], 1, 0)
    c_up.receive_data(Descriptor.build(pong), PING_INTERVAL + 0.2)
    assert c_up.servent.pong_cache[-1][1].guid == ping[:16]  # the cache is refreshed
    assert events(c_up) == []  # our own ping's pong is not an application event


def test_idle_peer_gets_bye_405_then_the_linger_ends_it():
    _, c_up = established()
    c_up.handle_timer(PING_INTERVAL)
    c_up.handle_timer(2 * PING_INTERVAL)
    assert len(c_up.data_to_send()) == 2 * 23  # two pings, never answered
    assert c_up.get_timer() == IDLE_TIMEOUT
    c_up.handle_timer(IDLE_TIMEOUT)
    bye = Descriptor.parse(c_up.data_to_send())
    # bye §2: "the node reached its inactivity timeout (405)"; bye §3: TTL=1, hop=0
    assert (bye.type, bye.code, bye.ttl, bye.hops) == ("bye", 405, 1, 0)
    assert bye.message.startswith("Inactivity timeout\r\n")
    assert c_up.state == cs.CLOSING and c_up.get_timer() == IDLE_TIMEOUT + BYE_LINGER
    assert events(c_up) == []  # not closed yet: the Bye gets its chance (bye Appendix 2)
    c_up.receive_data(Descriptor.build(dict(guid=bytes(16), type="ping", ttl=1, hops=0,
                                            extensions=[])), IDLE_TIMEOUT + 1)
    assert c_up.data_to_send() == b""  # nothing is read after our Bye
    c_up.handle_timer(IDLE_TIMEOUT + BYE_LINGER)
    assert c_up.state == cs.CLOSED and c_up.get_timer() is None
    assert events(c_up) == [ConnectionClosed(conn_id="leaf", code=405,
                                             reason="Inactivity timeout", by_peer=False)]


def test_traffic_postpones_the_idle_timeout():
    c_leaf, c_up = established()
    c_leaf.servent.query("anything", 50.0)
    c_up.receive_data(c_leaf.data_to_send(), 50.0)
    c_up.handle_timer(PING_INTERVAL)
    assert c_up.get_timer() == min(2 * PING_INTERVAL, 50.0 + IDLE_TIMEOUT)
    c_up.handle_timer(IDLE_TIMEOUT)  # 75 s after the handshake, 25 s after the query
    assert c_up.state == cs.ESTABLISHED


def test_bye_sent_closes_on_the_peers_end_of_stream():
    c_leaf, c_up = established()
    data = c_leaf.send(Bye(code=200, message="Servent shutdown"), 1.0)
    bye = Descriptor.parse(data)
    assert (bye.type, bye.code, bye.ttl, bye.hops) == ("bye", 200, 1, 0)
    assert c_leaf.state == cs.CLOSING and c_leaf.send(Bye(), 1.1) == b""  # only one Bye
    c_up.receive_data(data, 1.2)
    # bye §4: "Upon reading a Bye packet, a node should immediately close the connection"
    assert c_up.state == cs.CLOSED
    assert events(c_up) == [ConnectionClosed(conn_id="leaf", code=200,
                                             reason="Servent shutdown\r\nServer: p2pkit/0.1"
                                                    "\r\n\r\n", by_peer=True)]
    c_leaf.receive_data(b"", 1.3)  # the ultrapeer closed its socket
    assert events(c_leaf) == [ConnectionClosed(conn_id="up", code=200,
                                               reason="Servent shutdown", by_peer=False)]


def test_send_takes_only_bye():
    c_leaf, _ = established()
    with pytest.raises(LocalProtocolError):
        c_leaf.send(QueryHit(conn_id="up", query_guid=bytes(16), descriptor=None), 0.0)
    with pytest.raises(LocalProtocolError):
        Bye(code=700)


def test_bye_before_the_handshake_just_closes():
    leaf = Servent(role="leaf", rng=random.Random(2))
    conn = leaf.connect("up", 0.0)
    conn.data_to_send()
    assert conn.send(Bye(), 1.0) == b""  # no descriptor may precede the handshake's end
    [closed] = events(conn)
    assert (conn.state, closed.code) == (cs.CLOSED, 201)


def test_state_table_is_closed_and_every_state_ends_on_eof():
    targets = {t for row in cs.TRANSITIONS.values() for t in row.values()}
    assert targets <= set(cs.TRANSITIONS)
    assert cs.TRANSITIONS[cs.CLOSED] == {}
    for state in set(cs.TRANSITIONS) - {cs.CLOSED}:
        assert cs.next_state(state, cs.EOF) == cs.CLOSED
    assert cs.next_state(cs.ESTABLISHED, cs.CONNECT_ACCEPTED) is None
