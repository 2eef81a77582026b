"""BEP 11 peer exchange: building per-connection updates, parsing real libtorrent messages."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.peer.pex import (
    MAX_ADDED,
    MAX_DROPPED,
    MAX_INITIAL_ADDED,
    MAX_PEX_PAYLOAD_SIZE,
    PEX_INTERVAL,
    PeerFlags,
    PexMessageBuilder,
    PexPeer,
    PexUpdate,
    parse_pex,
)
from p2pkit.bittorrent.wire.extensions import UtPex
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError
from tests.bittorrent.wire.test_extensions import BT02, extended_messages


def peer(n: int, *, v6: bool = False, **flags) -> PexPeer:
    ip = ipaddress.ip_address(f"::1:{n:x}" if v6 else f"127.0.{n // 250}.{n % 250 + 2}")
    return PexPeer(ip=ip, port=6881 + n % 1000, flags=PeerFlags(**flags))


def endpoints(peers):
    return {(p.ip, p.port) for p in peers}


@pytest.fixture(scope="module")
def captured():
    return [payload for name, payload, _ in extended_messages(BT02) if name == "ut_pex"]


def test_libtorrent_messages_parse(captured):
    assert captured
    updates = [parse_pex(p) for p in captured]
    added = {(str(p.ip), p.port) for u in updates for p in u.added}
    # the three libtorrent peers listen on 127.0.0.2:6881, .3:6882, .4:6883
    assert added <= {("127.0.0.2", 6881), ("127.0.0.3", 6882), ("127.0.0.4", 6883)}
    assert len(added) >= 2
    seeds = {(str(p.ip), p.port) for u in updates for p in u.added if p.flags.seed}
    assert ("127.0.0.2", 6881) in seeds  # the seeder of bt-02


def test_builder_reproduces_libtorrent_first_message(captured):
    """Given the peers libtorrent announced, our first message is byte-identical to its."""
    compared = 0
    for payload in captured:
        update = parse_pex(payload)
        if update.dropped:
            continue
        assert PexMessageBuilder().next_message(update.added, now=0.0) == payload
        compared += 1
    assert compared


def test_once_a_minute_and_nothing_when_unchanged():
    builder = PexMessageBuilder()
    a, b = peer(1), peer(2)
    first = parse_pex(builder.next_message([a], now=100.0))
    assert endpoints(first.added) == endpoints([a]) and first.dropped == ()
    assert builder.next_message([a, b], now=100.0 + PEX_INTERVAL - 0.5) is None
    second = parse_pex(builder.next_message([b], now=100.0 + PEX_INTERVAL))
    assert endpoints(second.added) == endpoints([b])
    assert endpoints(second.dropped) == endpoints([a])
    assert builder.next_message([b], now=1000.0) is None  # nothing changed
    # A transient connect/disconnect between messages is elided.
    assert builder.next_message([b], now=2000.0) is None


def test_flags_change_re_adds_and_recipient_is_excluded():
    builder = PexMessageBuilder(interval=0)
    a, me = peer(1), peer(9)
    assert endpoints(parse_pex(builder.next_message([a, me], now=0, exclude=me)).added) == \
        endpoints([a])
    seed_now = PexPeer(ip=a.ip, port=a.port, flags=PeerFlags(seed=True))
    update = parse_pex(builder.next_message([seed_now, me], now=1, exclude=me))
    assert [p.flags.seed for p in update.added] == [True] and update.dropped == ()


def test_fifty_added_fifty_dropped_after_initial():
    builder = PexMessageBuilder()
    many = [peer(n) for n in range(MAX_INITIAL_ADDED + 30)]
    initial = parse_pex(builder.next_message(many, now=0))
    assert len(initial.added) == MAX_INITIAL_ADDED  # initial message is exempt from the 50
    told = endpoints(initial.added)
    now = 0.0
    # Everything left over, v4 and v6 together, trickles out 50 at a time.
    current = many[:100] + [peer(n, v6=True) for n in range(70)]
    sizes = []
    while (payload := builder.next_message(current, now=(now := now + PEX_INTERVAL))):
        update = parse_pex(payload)
        assert len(update.added) <= MAX_ADDED and len(update.dropped) <= MAX_DROPPED
        assert not endpoints(update.added) & endpoints(update.dropped)
        told = (told - endpoints(update.dropped)) | endpoints(update.added)
        sizes.append((len(update.added), len(update.dropped)))
    assert told == endpoints(current)
    assert sizes[0] == (MAX_ADDED, MAX_DROPPED)


def test_ipv6_contacts_use_added6():
    builder = PexMessageBuilder()
    message = UtPex.parse(builder.next_message([peer(1, v6=True, utp=True), peer(2)], now=0))
    assert [str(p.ip) for p in message.added6] == ["::1:1"]
    assert [f.utp for f in message["added6.f"]] == [True]
    assert len(message.added) == 1


def test_parse_drops_duplicates_and_contradictions():
    a, b = peer(1), peer(2)
    payload = UtPex.build(dict(added=[dict(ip=a.ip, port=a.port)] * 2 + [dict(ip=b.ip,
                                                                             port=b.port)],
                               dropped=[dict(ip=b.ip, port=b.port), dict(ip=peer(3).ip,
                                                                         port=peer(3).port)]))
    update = parse_pex(payload)
    assert update == PexUpdate(added=(a,), dropped=(peer(3),))
    assert update.added[0].flags == PeerFlags()  # no added.f: no flags


def test_limits_and_bad_values():
    with pytest.raises(LimitExceeded):
        parse_pex(b"d5:added" + b"65537:" + bytes(MAX_PEX_PAYLOAD_SIZE) + b"e")
    with pytest.raises(ParseError):
        parse_pex(b"d5:added5:12345e")
    with pytest.raises(LocalProtocolError):
        PexPeer(ip="not-an-ip", port=1)
    with pytest.raises(LocalProtocolError):
        PexPeer(ip="127.0.0.1", port=70000)


def test_unknown_flag_bits_survive():
    update = parse_pex(b"d5:added6:\x7f\x00\x00\x02\x1a\xe17:added.f1:\x82e")
    assert update.added[0].flags == PeerFlags(seed=True, unknown=0x80)
    rebuilt = PexMessageBuilder().next_message(update.added, now=0)
    assert parse_pex(rebuilt).added[0].flags.unknown == 0x80


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=80))
def test_random_payloads_raise_only_parse_error(payload):
    try:
        parse_pex(payload)
    except ParseError:
        pass


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_mutated_real_payloads_raise_only_parse_error(captured, data):
    payload = bytearray(data.draw(st.sampled_from(captured)))
    i = data.draw(st.integers(0, len(payload) - 1))
    payload[i] = data.draw(st.integers(0, 255))
    try:
        parse_pex(bytes(payload))
    except ParseError:
        pass


connection_sets = st.lists(st.sets(st.integers(0, 300), max_size=80), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(connection_sets, st.booleans())
def test_receiver_view_follows_our_connections(sets, v6):
    """Applying every message to the receiver's view ends at our connection set."""
    builder = PexMessageBuilder()
    view: set = set()
    now = 0.0
    for numbers in sets:
        current = [peer(n, v6=v6 and n % 2 == 1) for n in sorted(numbers)]
        while (payload := builder.next_message(current, now=now)) is not None:
            update = parse_pex(payload)
            assert not (view & endpoints(update.added))
            view = (view - endpoints(update.dropped)) | endpoints(update.added)
            now += PEX_INTERVAL
        assert view == endpoints(current)
