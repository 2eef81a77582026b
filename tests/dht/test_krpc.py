"""KRPC schemas (BEP 5, 32, 42, 43, 44, 51) on the spec's examples and on real captures."""

from __future__ import annotations

import io
import ipaddress

import pytest
from construct import Container
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.deviations import deviations_of
from p2pkit.dht import items, krpc
from p2pkit.dht.krpc import (
    MAX_MESSAGE_SIZE,
    CompactNode,
    CompactNode6,
    ErrorCode,
    KrpcMessage,
    KrpcMessageLenient,
    Transactions,
    decode,
    decode_lenient,
    encode,
    error,
    query,
    response,
    unknown_keys,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from tests.pcap_payloads import udp_datagrams

DHT02 = "dht-02-bep44-put-get.pcap"
NDPI_UTP = "ndpi-bittorrent_utp.pcap"


def common(schema, data, obj):
    """Parse, build and compare both ways (construct's ``common``)."""
    assert schema.parse(data) == obj
    assert schema.build(obj) == data


def krpc_datagrams(capture):
    """(src, dst, payload) of every KRPC datagram (uTP packets never start with 'd')."""
    return [(s, d, p) for s, d, p in udp_datagrams(capture) if p[:1] == b"d"]


# ---- BEP 5 §KRPC Protocol examples -------------------------------------------------------

def test_bep5_ping():
    common(KrpcMessage, b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
           query("ping", b"aa", id=b"abcdefghij0123456789"))
    common(KrpcMessage, b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
           response(b"aa", id=b"mnopqrstuvwxyz123456"))


def test_bep5_error():
    msg = decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee")
    assert msg.e.code == ErrorCode.GENERIC_ERROR and msg.e.message == "A Generic Error Ocurred"
    common(KrpcMessage, b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
           error(b"aa", 201, "A Generic Error Ocurred"))


def test_bep5_find_node_and_get_peers():
    common(KrpcMessage, b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e"
           b"1:q9:find_node1:t2:aa1:y1:qe",
           query("find_node", b"aa", id=b"abcdefghij0123456789", target=b"mnopqrstuvwxyz123456"))
    msg = decode(b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u"
                 b"6:idhtnmee1:t2:aa1:y1:re")
    assert msg.r.token == b"aoeusnth"
    assert [(str(p.ip), p.port) for p in msg.r["values"]] == [("97.120.106.101", 11893),
                                                              ("105.100.104.116", 28269)]


def test_bep5_announce_peer_implied_port():
    data = (b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:"
            b"mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe")
    msg = decode(data)
    assert (msg.method, msg.a.implied_port, msg.a.port) == ("announce_peer", 1, 6881)
    assert encode(msg) == data


def test_bep5_example_nodes_are_not_compact_node_info():
    # BEP 5's find_node response shows "nodes9:def456..." as a placeholder: 9 bytes is not a
    # whole number of 26-byte contacts, so a strict node refuses it and a dissector reports it.
    data = b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re"
    with pytest.raises(ParseError) as e:
        decode(data)
    assert e.value.path == "r -> nodes" and data[e.value.offset:].startswith(b"9:def456")
    lenient = decode_lenient(data)
    assert lenient.message.r.extra == {b"nodes": b"def456..."}
    assert [d.rule for d in lenient.deviations] == ["krpc/malformed-value"]
    assert data[lenient.deviations[0].offset:].startswith(b"9:def456")


# ---- compact info, BEP 32, 42, 43, 44, 51 -------------------------------------------------

def test_compact_nodes_v4_and_v6():
    node = dict(id=bytes(range(20)), ip=ipaddress.ip_address("127.0.0.2"), port=6881)
    node6 = dict(id=bytes(range(20)), ip=ipaddress.ip_address("::1"), port=6882)
    assert CompactNode.sizeof() == 26 and CompactNode6.sizeof() == 38
    msg = response(b"t1", id=bytes(20), nodes=[node], nodes6=[node6])
    data = encode(msg)
    back = decode(data)
    assert back.r.nodes == [node] and back.r.nodes6 == [node6]
    assert bytes(range(20)) + b"\x7f\x00\x00\x02\x1a\xe1" in data


def test_values_mix_ipv4_and_ipv6_peers():
    peers = [dict(ip=ipaddress.ip_address("10.0.0.1"), port=1),
             dict(ip=ipaddress.ip_address("fe80::1"), port=2)]
    data = encode(response(b"t", id=bytes(20), token=b"tk", values=peers))
    assert decode(data).r["values"] == peers


def test_bep42_ip_bep43_ro_and_want():
    msg = query("find_node", b"t", id=bytes(20), target=bytes(20), want=["n4", "n6"])
    msg.ro = 1
    data = encode(msg)
    assert b"2:roi1e" in data and b"4:wantl2:n42:n6e" in data
    assert decode(data) == msg
    answer = response(b"t", id=bytes(20))
    answer.ip = dict(ip=ipaddress.ip_address("124.31.75.21"), port=6881)
    data = encode(answer)
    assert b"2:ip6:\x7c\x1f\x4b\x15\x1a\xe1" in data
    assert decode(data).ip.port == 6881


def test_bep51_sample_infohashes():
    hashes = [bytes([i]) * 20 for i in range(3)]
    data = encode(response(b"t", id=bytes(20), interval=21600, num=3, samples=hashes, nodes=[]))
    msg = decode(data)
    assert (msg.r.samples, msg.r.num, msg.r.interval) == (hashes, 3, 21600)
    assert decode(encode(query("sample_infohashes", b"t", id=bytes(20), target=bytes(20))))


def test_bep44_put_mutable_needs_all_of_k_seq_sig():
    with pytest.raises(ParseError, match="k, seq and sig"):
        decode(encode(query("put", b"t", id=bytes(20), token=b"x", v=b"v", k=bytes(32))))


# ---- real captures ------------------------------------------------------------------------

@pytest.mark.parametrize("capture", [DHT02, NDPI_UTP])
def test_every_captured_datagram_round_trips(capture):
    datagrams = krpc_datagrams(capture)
    assert datagrams
    for _, _, payload in datagrams:
        msg = decode(payload)
        assert encode(msg) == payload
        assert decode_lenient(payload).message == msg


def test_captured_responses_match_their_queries():
    pairs = Transactions()
    answered = []
    methods = set()
    for src, dst, payload in krpc_datagrams(DHT02):
        msg = decode(payload)
        pairs.seen(msg, src, dst)
        if msg.y == "q":
            methods.add(msg.method)
        else:
            answered.append(msg)
    assert methods == {"find_node", "get_peers", "get", "put"}
    assert answered and all(m.method in methods for m in answered)
    assert pairs.unanswered == 0
    # libtorrent answers mutable puts with an outdated seq / wrong cas by 302 / 301 (BEP 44).
    codes = {(m.method, m.e.code) for m in answered if m.y == "e"}
    assert codes == {("put", ErrorCode.CAS_MISMATCH),
                     ("put", ErrorCode.SEQUENCE_NUMBER_LESS_THAN_CURRENT)}


def test_unknown_keys_from_real_nodes_are_kept():
    seen = {}
    for _, _, payload in krpc_datagrams(DHT02):
        msg = decode(payload)
        for key in unknown_keys(msg):
            seen.setdefault(key, msg)
    # libtorrent 2.0.8 adds its port "p" to responses, "bs" to get_peers, and repeats "r" in
    # errors; bittorrent-dht sends none.
    assert set(seen) == {"r.p", "a.bs", "r"}
    assert seen["r.p"].r.extra[b"p"] == 6881
    rules = {d.rule for _, _, p in krpc_datagrams(DHT02) for d in decode_lenient(p).deviations}
    assert rules == {"krpc/unknown-key"}


def test_captured_bep44_signatures_verify():
    puts = [m for m in (decode(p) for _, _, p in krpc_datagrams(DHT02))
            if m.method == "put" and m.y == "q"]
    mutable = [m.a for m in puts if "k" in m.a]
    assert mutable and {bool(a.get("salt")) for a in mutable} == {True, False}
    for a in mutable:
        assert items.verify(a.k, a.sig, a.seq, a.v, a.get("salt", b""))
        assert not items.verify(a.k, a.sig, a.seq + 1, a.v, a.get("salt", b""))
    salts = {items.mutable_target(a.k, a.get("salt", b"")): a.get("salt", b"") for a in mutable}
    pairs = Transactions()
    targets = {}
    verified = 0
    for src, dst, payload in krpc_datagrams(DHT02):
        msg = decode(payload)
        pairs.seen(msg, src, dst)
        if msg.y == "q" and msg.method == "get":
            targets[(src, dst, msg.t)] = msg.a.target
        elif msg.y == "r" and msg.method == "get" and "sig" in msg.r:
            target = targets[(dst, src, msg.t)]
            # BEP 44: "the key they get back from a get request MUST be verified to hash to the
            # target ID the lookup was made for, as well as verifying the signature"
            salt = salts[target]
            assert items.mutable_target(msg.r.k, salt) == target
            assert items.verify(msg.r.k, msg.r.sig, msg.r.seq, msg.r.v, salt)
            verified += 1
    assert verified > 0


# ---- strict and lenient failures ----------------------------------------------------------

@pytest.mark.parametrize("data, path", [
    (b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", "a -> id"),
    (b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", "a -> target"),
    (b"d1:rde1:t2:aa1:y1:re", "r -> id"),
    (b"d1:t2:aa1:y1:xe", "y"),
    (b"d1:y1:re", "t"),
    (b"d1:eli201ee1:t2:aa1:y1:ee", "e"),
])
def test_strict_rejects_with_path(data, path):
    with pytest.raises(ParseError) as e:
        decode(data)
    assert e.value.protocol == "bt-dht" and e.value.path == path
    assert e.value.offset is not None and 0 <= e.value.offset <= len(data)


def test_strict_rejects_noncanonical_lenient_reports_it():
    data = b"d1:y1:r1:t2:aa1:rd2:id20:abcdefghij0123456789ee"
    with pytest.raises(ParseError) as e:
        decode(data)
    assert e.value.protocol == "bt-dht"
    lenient = decode_lenient(data)
    assert lenient.message.r.id == b"abcdefghij0123456789"
    assert "bencode/dict/unsorted-keys" in {d.rule for d in lenient.deviations}


def test_size_limit_checked_first():
    with pytest.raises(LimitExceeded):
        decode(b"d1:t" + b"9" * MAX_MESSAGE_SIZE)


def test_build_errors():
    with pytest.raises(BuildError):
        encode(dict(t=b"a", y="q", a=dict(id=bytes(20))))  # no method
    with pytest.raises(BuildError, match="id"):
        encode(query("ping", b"a", id=b"short"))
    with pytest.raises(BuildError, match="extra"):
        encode(query("ping", b"a", id=bytes(20), bogus=1))


# ---- hypothesis ---------------------------------------------------------------------------

ids = st.binary(min_size=20, max_size=20)
ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
ports = st.integers(0, 65535)
nodes = st.lists(st.builds(dict, id=ids, ip=ipv4, port=ports), max_size=8)
nodes6 = st.lists(st.builds(dict, id=ids, ip=ipv6, port=ports), max_size=8)
peers = st.lists(st.builds(dict, ip=ipv4 | ipv6, port=ports), max_size=8)
bvalues = st.recursive(st.binary(max_size=8) | st.integers(-5, 2**40),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.binary(max_size=4), inner, max_size=3), max_leaves=6)
queries = st.one_of(
    st.builds(lambda t, i: query("ping", t, id=i), st.binary(max_size=4), ids),
    st.builds(lambda t, i, x: query("find_node", t, id=i, target=x), st.binary(max_size=4),
              ids, ids),
    st.builds(lambda t, i, h, p, imp, tok: query("announce_peer", t, id=i, info_hash=h, port=p,
                                                 implied_port=imp, token=tok),
              st.binary(max_size=4), ids, ids, ports, st.integers(0, 1), st.binary(max_size=8)),
    st.builds(lambda t, i, v, k, s, seq: query("put", t, id=i, token=b"x", v=v, k=k, sig=s,
                                               seq=seq),
              st.binary(max_size=4), ids, bvalues, st.binary(min_size=32, max_size=32),
              st.binary(min_size=64, max_size=64), st.integers(0, 2**63 - 1)),
)
responses = st.builds(lambda t, i, n, n6, vs, tok: response(t, id=i, nodes=n, nodes6=n6,
                                                            values=vs, token=tok),
                      st.binary(max_size=4), ids, nodes, nodes6, peers, st.binary(max_size=8))
errors = st.builds(lambda t, c, m: error(t, c, m), st.binary(max_size=4),
                   st.sampled_from(list(ErrorCode)), st.text(max_size=20))


@settings(max_examples=150, deadline=None)
@given(queries | responses | errors)
def test_round_trip(msg):
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_error(data):
    for schema in (KrpcMessage, KrpcMessageLenient):
        try:
            schema.parse(data)
        except ParseError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_datagrams_raise_only_parse_error(data):
    datagrams = krpc_datagrams(DHT02)
    payload = bytearray(datagrams[data.draw(st.integers(0, len(datagrams) - 1))][2])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    for raw in (bytes(payload), bytes(payload[:cut])):
        for schema in (KrpcMessage, KrpcMessageLenient):
            try:
                msg = schema.parse(raw)
            except ParseError:
                continue
            if schema is KrpcMessage:
                assert encode(msg) == raw
                assert deviations_of(msg) == []
            else:  # the value carries what the lenient parse found, and nothing else marks it
                found = []
                schema.parse(raw, deviations=found)
                assert deviations_of(msg) == found
                assert all(d.rule and d.spec and 0 <= d.offset <= len(raw) for d in found)


# ---- fast paths: derived from the schema, checked against it ------------------------------
#
# KrpcMessage.fast_parse recognises the common queries and fast_build encodes flat messages;
# the generic schema (parse_stream / _to_bencoded + bencode) is the reference. Where a fast
# path answers, it must give the very same Container (keys in the same order) and bytes.

DHT03 = "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"


def generic_parse(data):
    return KrpcMessage.parse_stream(io.BytesIO(data))


def generic_build(msg):
    return bencode.encode(krpc._to_bencoded(msg))


def ordered(value):
    """A Container as nested (key, value) lists: equality that also checks key order."""
    if isinstance(value, dict):  # construct's own "_io" keys are not part of the value
        return [(k, ordered(v)) for k, v in value.items() if not str(k).startswith("_")]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def check_fast_parse(data):
    """The fast parse gives None or exactly the generic parse; returns whether it answered."""
    fast = krpc._fast_parse_query(data)
    if fast is None:
        return False
    assert ordered(fast) == ordered(generic_parse(data))
    return True


def check_fast_build(msg):
    """The fast build gives None or exactly the generic bytes; returns whether it answered."""
    fast = krpc._fast_build(msg)
    if fast is None:
        return False
    assert fast == generic_build(msg)
    return True


@pytest.mark.parametrize("capture", [DHT02, DHT03, NDPI_UTP])
def test_fast_paths_agree_with_the_schema_on_real_datagrams(capture):
    parsed = built = 0
    methods = set()
    for _, _, payload in krpc_datagrams(capture):
        if check_fast_parse(payload):
            parsed += 1
            methods.add(generic_parse(payload).method)
        msg = generic_parse(payload)
        if check_fast_build(msg):
            built += 1
            assert encode(msg) == payload
    assert parsed > 0 and built > 0
    if capture == DHT03:  # p2pkit, libtorrent and bittorrent-dht querying each other
        assert {"ping", "find_node", "get_peers"} <= methods


def test_fast_parse_covers_the_required_argument_shapes():
    # derived from QUERY_ARGUMENTS: every query whose arguments are all 20-byte ids
    assert {shape[0] for shape in krpc._query_shapes()} == {
        "ping", "find_node", "get_peers", "get", "sample_infohashes"}
    for method, *_ in krpc._query_shapes():
        names = krpc.QUERY_ARGUMENTS[method]
        data = generic_build(query(method, b"t1", **{n: bytes([len(n)]) * 20 for n in names}))
        assert check_fast_parse(data)
        assert check_fast_parse(generic_build(Container(generic_parse(data), v=b"LT\x01\x02")))


PING = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa"


@pytest.mark.parametrize("data, fast", [
    (PING + b"1:y1:qe", True),                                  # canonical
    (PING + b"1:v4:LT\x01\x021:y1:qe", True),                    # with a client version
    (PING.replace(b"1:t2:", b"1:t02:") + b"1:y1:qe", False),    # leading zero: not canonical
    (PING + b"1:y1:qee", False),                                # a trailing byte
    (PING + b"2:roi1e1:y1:qe", False),                          # keys out of order
    (PING.replace(b"1:t", b"2:roi1e1:t") + b"1:y1:qe", False),  # BEP 43 ro: left to the schema
    (PING.replace(b"89e", b"891:xi1ee") + b"1:y1:qe", False),   # an unknown argument
    (PING.replace(b"1:t2:", b"1:t9:") + b"1:y1:qe", False),     # t runs past the end
    (PING + b"1:v9:1:y1:qe", False),                            # v runs past the end
    (PING.replace(b"id20:abcdefghij0123456789", b"id19:abcdefghij012345678") + b"1:y1:qe",
     False),                                                    # a short id
    (PING.replace(b"89e", b"896:target20:abcdefghij0123456789e") + b"1:y1:qe", False),
])
def test_fast_parse_answers_only_for_the_exact_canonical_shape(data, fast):
    assert check_fast_parse(data) is fast
    if not fast:  # the schema decides: an error, or the message with what it has to say
        try:
            msg = generic_parse(data)
        except ParseError:
            return
        assert decode(data) == msg


def test_fast_build_answers_and_queries_and_falls_back():
    answer = response(b"\x00\x01", id=bytes(20), token=b"12345678",
                      nodes=[bytes([i]) * 26 for i in range(8)])
    answer.update(dict(v=b"PK\x00\x01", ip=bytes([127, 0, 0, 1, 0x1a, 0xe1])))
    for _ in range(2):  # the template is compiled once, then reused
        assert check_fast_build(answer)
    # nodes given as Containers (the schema's parsed form) encode to the same bytes
    built = encode(answer)
    answer.r.nodes = [CompactNode.parse(n) for n in answer.r.nodes]
    assert check_fast_build(answer) and encode(answer) == built
    assert check_fast_build(Container(query("get_peers", b"aa", id=bytes(20),
                                            info_hash=bytes(20)), v=b"LT\x01\x02"))
    assert check_fast_build(error(b"aa", ErrorCode.PROTOCOL_ERROR, "bad token"))
    # what the fast builder leaves to the schema: still built, or refused, by the schema
    put = query("put", b"aa", id=bytes(20), token=b"x", v={b"a": 1})
    assert krpc._fast_build(put) is None and decode(encode(put)) == put
    for bad in (query("ping", b"a", id=b"short"), dict(t=b"a", y="q", a=dict(id=bytes(20))),
                response(None)):
        assert krpc._fast_build(bad) is None
    # extra keys (libtorrent's "p", "bs", an error's "r") are bencoded as they are
    with_extra = Container(response(b"a", id=bytes(20)), extra={b"p": 1})
    assert check_fast_build(with_extra)
    assert encode(with_extra).startswith(b"d1:pi1e1:rd2:id20:")
    # an extra key that repeats a declared one is left to the schema, which refuses it
    twice = Container(response(b"a", id=bytes(20)), extra={b"t": b"b"})
    assert krpc._fast_build(twice) is None
    with pytest.raises(BuildError, match="duplicates"):
        encode(twice)


def test_templates_are_bounded():
    for i in range(krpc.MAX_TEMPLATES + 5):
        msg = response(b"a", id=bytes(20))
        msg[f"unknown{i}"] = None  # a new shape each time (None values are left out)
        assert encode(msg) == generic_build(msg)
    assert len(krpc._TEMPLATES) <= krpc.MAX_TEMPLATES


def test_compact_records_may_be_given_built():
    raw = bytes(range(26))
    assert encode(response(b"a", id=bytes(20), nodes=[raw])) == \
        encode(response(b"a", id=bytes(20), nodes=[CompactNode.parse(raw)]))


canonical_queries = st.builds(
    lambda shape, t, v, args: Container(
        query(shape[0], t, **{n: args[i] for i, n in enumerate(krpc.QUERY_ARGUMENTS[shape[0]])}),
        **({} if v is None else {"v": v})),
    st.sampled_from(krpc._query_shapes()), st.binary(max_size=120),
    st.none() | st.binary(max_size=120), st.lists(ids, min_size=3, max_size=3))


@settings(max_examples=200, deadline=None)
@given(canonical_queries)
def test_fast_parse_equals_the_schema_on_any_common_query(msg):
    data = generic_build(msg)
    fast = krpc._fast_parse_query(data)
    if len(msg.t) <= 99 and len(msg.get("v") or b"") <= 99:
        assert fast is not None  # the fast path really serves these
    if fast is not None:
        assert ordered(fast) == ordered(generic_parse(data))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_parse_on_mutated_queries_is_none_or_the_schema(data):
    msg = data.draw(canonical_queries)
    payload = bytearray(generic_build(msg))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.sampled_from(list(b"0123456789:deil") + [0, 255]))
    cut = data.draw(st.integers(0, len(payload)))
    for raw in (bytes(payload), bytes(payload[:cut])):
        try:
            generic_parse(raw)
        except ParseError:
            assert krpc._fast_parse_query(raw) is None
            continue
        check_fast_parse(raw)


@settings(max_examples=200, deadline=None)
@given(queries | responses | errors, st.none() | st.binary(max_size=6),
       st.none() | st.binary(min_size=6, max_size=6))
def test_fast_build_equals_the_schema(msg, v, ip):
    if v is not None:
        msg.v = v
    if ip is not None:
        msg.ip = ip
    check_fast_build(msg)
    assert encode(msg) == generic_build(msg)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_parse_bytes_path_equals_the_construct_path(data):
    """KrpcMessage.fast_parse ends in Envelope.parse_bytes: the same declaration without
    construct's streams. Same value (key order included), same error (path and offset)."""
    datagrams = krpc_datagrams(DHT02) + krpc_datagrams(NDPI_UTP)
    payload = bytearray(datagrams[data.draw(st.integers(0, len(datagrams) - 1))][2])
    for _ in range(data.draw(st.integers(0, 3))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.sampled_from(list(b"0123456789:deil") + [0, 255]))
    raw = bytes(payload[:data.draw(st.integers(0, len(payload)))])
    try:
        expected = generic_parse(raw)
    except ParseError as e:
        with pytest.raises(ParseError) as fast:
            KrpcMessage.fast_parse(raw)
        assert (fast.value.path, fast.value.offset, fast.value.reason) == (e.path, e.offset,
                                                                           e.reason)
        return
    assert ordered(KrpcMessage.fast_parse(raw)) == ordered(expected)


# ---- lenient parity: the rules the former codec (KrpcConstruct) reported on the same inputs --

ID = b"abcdefghij0123456789"
PARITY_INPUTS = [
    b"d1:rd2:id20:abcdefghij01234567891:pi6881ee1:t2:aa1:y1:re",
    b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re",
    b"d1:y1:r1:t2:aa1:rd2:id20:abcdefghij0123456789ee",
    b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
    b"d1:ad2:id20:" + ID + b"e1:q9:find_node1:t2:aa1:y1:qe",
    b"d1:rde1:t2:aa1:y1:re",
    b"d1:t2:aa1:y1:xe",
    b"d1:y1:re",
    b"d1:eli201ee1:t2:aa1:y1:ee",
    b"d1:ad2:id20:" + ID + b"e1:eli201e1:xe1:t2:aa1:y1:ee",
    b"d1:ad2:id20:" + ID + b"e1:rd2:id20:" + ID + b"e1:t2:aa1:y1:re",
    b"d1:ad2:id20:" + ID + b"1:k32:" + bytes(32) + b"5:token1:x1:v1:ve1:q3:put1:t2:aa1:y1:qe",
    b"d1:rd2:id20:" + ID + b"e1:t02:aa1:y1:rei1e",
    b"d1:rd2:id20:" + ID + b"2:roi01ee1:t2:aa1:y1:re",
    b"d1:ad2:id20:" + ID + b"e1:q4:ping1:t2:aa1:y1:q2:ipi3ee",
    b"d1:ad2:id20:" + ID + b"e1:q4:ping1:t2:aa1:y1:qe",
    b"li1ee",
    b"d1:rd2:id20:" + ID + b"e1:q4:ping1:t2:aa1:y1:re",
]
#: (rule, offset, level) per input, as recorded from the former codec; "error" = ParseError.
PARITY_EXPECTED = [
    [('krpc/unknown-key', 35, 'MAY')],
    [('krpc/malformed-value', 39, 'MUST')],
    [('bencode/dict/unsorted-keys', 7, 'MUST'), ('bencode/dict/unsorted-keys', 14, 'MUST')],
    [('krpc/malformed-value', 9, 'MUST'), ('krpc/missing-key', 9, 'MUST'), ('krpc/missing-argument', 9, 'MUST')],
    [('krpc/missing-argument', 4, 'MUST')],
    [('krpc/missing-key', 4, 'MUST')],
    [('krpc/unknown-type', 11, 'MUST')],
    [('krpc/missing-key', 0, 'MUST'), ('krpc/missing-key', 0, 'MUST')],
    [('krpc/malformed-value', 4, 'MUST'), ('krpc/missing-key', 4, 'MUST')],
    [('krpc/unexpected-key', 4, 'SHOULD')],
    [('krpc/unexpected-key', 4, 'SHOULD')],
    [('bep44/put/partial-mutable', 4, 'MUST')],
    [('bencode/string/leading-zero', 36, 'MUST'), ('bencode/trailing-data', 48, 'MUST')],
    [('bencode/integer/leading-zero', 37, 'MUST'), ('krpc/unknown-key', 36, 'MAY')],
    [('bencode/dict/unsorted-keys', 55, 'MUST'), ('krpc/malformed-value', 59, 'MUST')],
    [],
    'error',
    [('bencode/dict/unsorted-keys', 33, 'MUST')],
]


@pytest.mark.parametrize("case", range(len(PARITY_INPUTS)))
def test_lenient_reports_what_the_former_codec_reported(case):
    data, expected = PARITY_INPUTS[case], PARITY_EXPECTED[case]
    if expected == "error":
        with pytest.raises(ParseError):
            decode_lenient(data)
        return
    assert [(d.rule, d.offset, d.level) for d in decode_lenient(data).deviations] == expected


@settings(max_examples=200, deadline=None)
@given(queries | responses | errors,
       st.dictionaries(st.sampled_from([b"p", b"bs", b"r", b"t", b"zz", b""]), bvalues,
                       min_size=1, max_size=3))
def test_fast_build_with_extra_keys_equals_the_schema(msg, extra):
    msg.extra = extra
    try:
        expected = generic_build(msg)
    except BuildError:
        assert krpc._fast_build(msg) is None
        with pytest.raises(BuildError):
            encode(msg)
        return
    check_fast_build(msg)
    assert encode(msg) == expected
