"""bencode (BEP 3 §bencoding): canonical strict decoding, lenient deviations, limits, fuzzing."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit import bencode
from p2pkit.bencode import (
    Bencoded,
    BencodedLenient,
    decode,
    decode_lenient,
    decode_prefix,
    encode,
    top_level_spans,
)
from p2pkit.errors import BuildError, LimitExceeded, ParseError

# BEP 3's own examples.
BEP3_EXAMPLES = [
    (b"4:spam", b"spam"),
    (b"0:", b""),
    (b"i3e", 3),
    (b"i-3e", -3),
    (b"i0e", 0),
    (b"l4:spam4:eggse", [b"spam", b"eggs"]),
    (b"le", []),
    (b"d3:cow3:moo4:spam4:eggse", {b"cow": b"moo", b"spam": b"eggs"}),
    (b"d4:spaml1:a1:bee", {b"spam": [b"a", b"b"]}),
    (b"d9:publisher3:bob17:publisher-webpage15:www.example.com18:publisher.location4:homee",
     {b"publisher": b"bob", b"publisher-webpage": b"www.example.com",
      b"publisher.location": b"home"}),
    (b"de", {}),
]


@pytest.mark.parametrize(("data", "value"), BEP3_EXAMPLES)
def test_bep3_examples_round_trip(data, value):
    assert decode(data) == value
    assert encode(value) == data


@pytest.mark.parametrize(
    ("data", "rule", "offset"),
    [
        (b"i-0e", "bencode/integer/negative-zero", 1),
        (b"i03e", "bencode/integer/leading-zero", 1),
        (b"i-03e", "bencode/integer/leading-zero", 1),
        (b"03:abc", "bencode/string/leading-zero", 0),
        (b"d1:bi1e1:ai2ee", "bencode/dict/unsorted-keys", 7),
        (b"d1:ai1e1:ai2ee", "bencode/dict/duplicate-key", 7),
        (b"di1ei2ee", "bencode/dict/non-string-key", 1),
        (b"i1eXYZ", "bencode/trailing-data", 3),
    ],
)
def test_non_canonical_is_strict_error_and_lenient_deviation(data, rule, offset):
    with pytest.raises(ParseError) as info:
        decode(data)
    assert info.value.protocol == "bencode"
    result = decode_lenient(data)
    assert [d.rule for d in result.deviations] == [rule]
    assert result.deviations[0].offset == offset
    assert result.deviations[0].spec == "BEP 3 §bencoding"


def test_lenient_keeps_values_in_wire_order():
    result = decode_lenient(b"d1:bi03e1:ai1ee")
    assert list(result.value.items()) == [(b"b", 3), (b"a", 1)]


@pytest.mark.parametrize(
    ("data", "offset", "path"),
    [
        (b"", 0, ""),
        (b"i12", 3, ""),
        (b"5:abc", 0, ""),
        (b"l4:spam", 7, ""),
        (b"d3:fooi1e3:bar", 14, "bar"),
        (b"ixe", 1, ""),
        (b"i1 e", 1, ""),
        (b"x", 0, ""),
        (b"dli1ee1:ae", 1, ""),
        (b"d1:ali1ei2x", 11, "a[1]"),
    ],
)
def test_malformed_input_names_offset_and_path(data, offset, path):
    with pytest.raises(ParseError) as info:
        decode_lenient(data)
    assert info.value.offset == offset
    assert info.value.path == path
    assert "bencode" in str(info.value)


def test_string_length_is_checked_before_allocation():
    # A length prefix claiming ~1 EB must fail on the bound, not try to read or allocate.
    with pytest.raises(ParseError) as info:
        decode(b"999999999999999999:x")
    assert "runs past the end" in str(info.value)
    with pytest.raises(LimitExceeded):
        decode(b"9999999999999999999999:x")


def test_nesting_depth_is_bounded():
    deep = b"l" * (bencode.MAX_DEPTH + 1) + b"e" * (bencode.MAX_DEPTH + 1)
    with pytest.raises(LimitExceeded):
        decode(deep)
    ok = b"l" * bencode.MAX_DEPTH + b"e" * bencode.MAX_DEPTH
    assert decode(ok) is not None


def test_integer_digits_are_bounded():
    with pytest.raises(LimitExceeded):
        decode(b"i" + b"9" * (bencode.MAX_INTEGER_DIGITS + 1) + b"e")
    assert decode(b"i" + b"9" * bencode.MAX_INTEGER_DIGITS + b"e") == int("9" * 64)


def test_encode_sorts_keys_as_raw_bytes_and_rejects_junk():
    assert encode({"b": 1, "a": 2, "B": 3}) == b"d1:Bi3e1:ai2e1:bi1ee"
    assert encode({"é": b""}) == b"d2:\xc3\xa90:e"
    with pytest.raises(BuildError):
        encode({1: 2})
    with pytest.raises(BuildError):
        encode(1.5)
    with pytest.raises(BuildError):
        encode(True)
    with pytest.raises(BuildError):
        encode({"a": 1, b"a": 2})


def test_decode_prefix_stops_after_the_value():
    assert decode_prefix(b"d8:msg_typei1e5:piecei0eeRAW") == ({b"msg_type": 1, b"piece": 0}, 25)


def test_top_level_spans_give_exact_bytes():
    data = b"d8:announce3:url4:infod6:lengthi5e4:name1:aee"
    start, end = top_level_spans(data)[b"info"]
    assert data[start:end] == b"d6:lengthi5e4:name1:ae"


def test_construct_field_nests_and_relocates_errors():
    s = construct.Struct("kind" / construct.Int8ub, "dict" / Bencoded, "rest" / construct.GreedyBytes)
    parsed = s.parse(b"\x01d1:ai1ee..")
    assert parsed.dict == {b"a": 1} and parsed.rest == b".."
    assert s.build(dict(kind=1, dict={"a": 1}, rest=b"..")) == b"\x01d1:ai1ee.."
    with pytest.raises(ParseError) as info:
        s.parse(b"\x01d1:ai1e")
    assert info.value.offset == 8  # counted from the start of the whole input
    assert info.value.path == "dict"
    assert construct.Struct("d" / BencodedLenient).parse(b"i03e").d == 3


# --- property tests ---------------------------------------------------------------------------

values = st.recursive(
    st.binary(max_size=20) | st.integers(min_value=-(2**70), max_value=2**70),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.binary(max_size=8), children, max_size=5),
    max_leaves=30,
)


def _canonical(v):
    if isinstance(v, dict):
        return {k: _canonical(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_canonical(x) for x in v]
    return v


@given(values)
def test_round_trip(value):
    data = encode(value)
    decoded = decode(data)
    assert decoded == _canonical(value)
    assert list(decoded) == list(_canonical(value)) if isinstance(value, dict) else True
    assert encode(decoded) == data
    assert decode_lenient(data).deviations == []


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_parse_error(data):
    for fn in (decode, decode_lenient, lambda d: decode_prefix(d), top_level_spans):
        try:
            fn(data)
        except ParseError:
            pass


@given(values, st.data())
def test_mutated_encodings_raise_only_parse_error(value, data):
    raw = bytearray(encode(value))
    if raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        for candidate in (bytes(raw), bytes(raw[:cut])):
            try:
                decode_lenient(candidate)
            except ParseError:
                pass


# ---- BencodedDict: one declaration, strict and lenient, parse and build --------------------

from construct import Container  # noqa: E402

from p2pkit.bencode import (  # noqa: E402
    AnyValue,
    BencodedDict,
    Choice,
    Field,
    Integer,
    ListOf,
    MapOf,
    Rules,
    String,
    Text,
)
from p2pkit.deviations import Deviation  # noqa: E402
from p2pkit.schema import Schema  # noqa: E402


def common(schema, data, obj):
    """Parse, build and size together (construct's ``common``); a bencoded dictionary has no
    fixed size, so ``sizeof`` must refuse rather than guess."""
    assert schema.parse(data) == obj
    assert schema.build(obj) == data
    assert schema.build(schema.parse(data)) == data
    with pytest.raises((construct.SizeofError, BuildError)):
        schema.sizeof()


RULES = Rules(spec="test §1", malformed="test/wrong-type", missing="test/missing-key",
              unknown="test/unknown-key")
# fmt: off
Inner = BencodedDict([
    Field("n", Integer(0, 9), required=True),
], unknown="extra", rules=RULES, name="inner")
Sample = BencodedDict([
    Field("count", Integer(0, 1000), required=True),
    Field("id", String(4)),
    Field("label", Text()),
    Field("tags", ListOf(String(max_length=8))),
    Field("inner", Inner),
    Field("any", AnyValue()),
    Field("names", MapOf(Integer(), keys="text")),
    Field("kind", Choice({0: "zero", 1: "one"})),
    Field("piece length", Integer(1), name="piece_length", aliases=(b"piece_length",)),
    Field("dflt", Integer(), default=None),
], unknown="extra", rules=RULES, whole=True, name="sample")
# fmt: on
SAMPLE = Schema(Sample, protocol="bencode")
SAMPLE_LENIENT = Schema(Sample.lenient(), protocol="bencode")


def test_declared_types_parse_and_build():
    data = (b"d3:anyli1e1:xe5:counti7e2:id4:abcd5:innerd1:ni3ee4:kindi1e5:label3:\xc3\xa9t"
            b"5:namesd1:ai1ee12:piece lengthi16384e4:tagsl2:t1ee")
    common(SAMPLE, data, Container(
        any=[1, b"x"], count=7, id=b"abcd", inner=Container(n=3), kind="one", label="\xe9t",
        names=Container(a=1), piece_length=16384, tags=[b"t1"], dflt=None))
    # unknown keys are kept in extra (and built back in sorted order)
    common(SAMPLE, b"d5:counti0e1:zi1ee", Container(count=0, dflt=None, extra={b"z": 1}))


def test_aliases_parse_and_build_the_declared_key():
    assert SAMPLE.parse(b"d5:counti1e12:piece_lengthi5ee").piece_length == 5
    assert SAMPLE.build(dict(count=1, piece_length=5)) == b"d5:counti1e12:piece lengthi5ee"


@pytest.mark.parametrize(("data", "path", "at"), [
    (b"d5:counti1001ee", "count", b"i1001e"),
    (b"d5:counti1e5:innerd1:n1:xee", "inner -> n", b"1:x"),
    (b"d5:counti1e5:innerdee", "inner -> n", b"de"),
    (b"d5:counti1e4:tagsl2:ok9:123456789ee", "tags[1]", b"9:"),
    (b"d2:id4:abcde", "count", b"d2:"),
    (b"d5:counti1e4:kindi7ee", "kind", b"i7e"),
    (b"d5:counti1e5:namesd1:a1:bee", "names -> a", b"1:b"),
    (b"li1ee", "", b"li1ee"),
])
def test_strict_errors_name_the_field_path_and_offset(data, path, at):
    with pytest.raises(ParseError) as e:
        SAMPLE.parse(data)
    assert e.value.path == path and data[e.value.offset:].startswith(at)


def test_lenient_reports_each_departure_as_a_deviation():
    data = b"d5:counti01e1:xi1e2:id3:abc5:innerdee"
    found: list[Deviation] = []
    value = SAMPLE_LENIENT.parse(data, deviations=found)
    assert [d.rule for d in found] == [
        "bencode/integer/leading-zero", "bencode/dict/unsorted-keys", "test/unknown-key",
        "test/wrong-type", "test/missing-key"]
    assert [d.level for d in found] == ["MUST", "MUST", "MAY", "MUST", "MUST"]
    assert all(d.spec for d in found)
    assert data[found[3].offset:].startswith(b"3:abc")
    # what it could not convert is kept, raw, so nothing is lost
    assert value.count == 1 and value.extra == {b"x": 1, b"id": b"abc"}


def test_unknown_key_policies():
    keep = BencodedDict([Field("a", Integer())], unknown="keep")
    assert keep.parse(b"d1:ai1e1:bi2ee") == Container(a=1, b=2)
    assert keep.build(Container(a=1, b=2)) == b"d1:ai1e1:bi2ee"
    reject = BencodedDict([Field("a", Integer())], unknown="reject")
    with pytest.raises(ParseError, match="unknown key 'b'"):
        reject.parse(b"d1:ai1e1:bi2ee")
    found: list[Deviation] = []
    reject.lenient().parse(b"d1:bi2ee", deviations=found)
    assert [d.rule for d in found] == ["bencode/dict/unknown-key"]
    with pytest.raises(ValueError):
        BencodedDict([], unknown="drop")


def test_build_errors_name_the_field():
    with pytest.raises(BuildError, match="count"):
        SAMPLE.build(dict(count="x"))
    with pytest.raises(BuildError, match="extra"):
        SAMPLE.build(dict(count=1, bogus=2))
    with pytest.raises(BuildError) as e:
        SAMPLE.build(dict(count=1, inner=dict(n=1, m=2)))
    assert e.value.path == "inner -> m"


def test_limits_raise_limit_exceeded_before_work():
    small = BencodedDict([Field("a", ListOf(Integer(), max_items=3))], max_size=64)
    with pytest.raises(LimitExceeded):
        small.parse(b"d1:a" + b"l" + b"i1e" * 30 + b"ee")
    with pytest.raises(LimitExceeded):
        small.parse(b"d1:ali1ei2ei3ei4eee")
    with pytest.raises(LimitExceeded):
        SAMPLE.parse(b"d3:any" + b"l" * (bencode.MAX_DEPTH + 1) + b"e" * (bencode.MAX_DEPTH + 2))


samples = st.fixed_dictionaries(
    {"count": st.integers(0, 1000)},
    optional={
        "id": st.binary(min_size=4, max_size=4),
        "label": st.text(max_size=10),
        "tags": st.lists(st.binary(max_size=8), max_size=4),
        "inner": st.builds(lambda n: Container(n=n), st.integers(0, 9)),
        "any": st.recursive(st.binary(max_size=4) | st.integers(),
                            lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(st.binary(max_size=3), inner, max_size=3),
                            max_leaves=5),
        "names": st.dictionaries(st.text(st.characters(codec="ascii"), max_size=5),
                                 st.integers(), max_size=3).map(Container),
        "kind": st.sampled_from(["zero", "one"]),
        "piece_length": st.integers(1, 2**40),
    }).map(lambda d: Container(d, dflt=None))


@given(samples)
def test_generated_dictionaries_round_trip(obj):
    data = SAMPLE.build(obj)
    assert SAMPLE.parse(data) == obj
    assert SAMPLE.build(SAMPLE.parse(data)) == data
    assert SAMPLE_LENIENT.parse(data) == obj


def _top_level_schemas():
    from p2pkit.bittorrent.tracker.http import (
        AnnounceResponse,
        AnnounceResponseLenient,
        ScrapeResponse,
        ScrapeResponseLenient,
    )
    from p2pkit.bittorrent.wire import extensions
    from p2pkit.dht.krpc import KrpcMessage, KrpcMessageLenient

    return [SAMPLE, SAMPLE_LENIENT, KrpcMessage, KrpcMessageLenient, AnnounceResponse,
            AnnounceResponseLenient, ScrapeResponse, ScrapeResponseLenient,
            *extensions.EXTENSION_MESSAGES.values(),
            *extensions.EXTENSION_MESSAGES_LENIENT.values()]


TOP_LEVEL = _top_level_schemas()
KEYS = [b"count", b"id", b"inner", b"t", b"y", b"q", b"a", b"r", b"e", b"id", b"nodes", b"m",
        b"p", b"msg_type", b"added", b"interval", b"peers", b"files", b"failure reason", b"n"]
bencoded_inputs = st.one_of(
    st.binary(max_size=120),
    st.builds(encode, st.dictionaries(st.sampled_from(KEYS), st.recursive(
        st.integers(-3, 70000) | st.binary(max_size=26),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(KEYS), inner, max_size=3), max_leaves=6), max_size=6)),
)


@given(st.sampled_from(range(len(TOP_LEVEL))), bencoded_inputs)
def test_random_bytes_raise_only_parse_error_for_every_declared_schema(which, data):
    schema = TOP_LEVEL[which]
    try:
        schema.parse(data)
    except ParseError:
        pass


# ---- every declared schema on real bytes --------------------------------------------------

def _real_cases():
    """(schema, bytes, parsed) from the captures and torrents in tests/data and p2pkit/data."""
    from pathlib import Path

    from p2pkit.bittorrent.tracker.http import (
        AnnounceResponse,
        ScrapeResponse,
        parse_http_request,
        parse_http_response,
    )
    from p2pkit.bittorrent.wire.extensions import EXTENSION_MESSAGES
    from p2pkit.bittorrent.wire.metainfo import Torrent
    from p2pkit.dht.krpc import KrpcMessage
    from tests.bittorrent.tracker.test_http import exchanges
    from tests.bittorrent.wire.test_extensions import BT02, BT05, extended_messages
    from tests.pcap_payloads import udp_datagrams

    cases = []
    for capture in ("dht-02-bep44-put-get.pcap", "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap",
                    "ndpi-bittorrent_utp.pcap"):
        for _, _, payload in udp_datagrams(capture):
            if payload[:1] == b"d":
                cases.append((KrpcMessage, payload))
    for capture in (BT02, BT05):
        for name, payload, _ in extended_messages(capture):
            if name in ("handshake", "ut_metadata", "ut_pex"):
                cases.append((EXTENSION_MESSAGES[name], payload))
    for request, response in exchanges():
        kind = parse_http_request(request).kind
        body = parse_http_response(response, kind=kind).body
        cases.append((AnnounceResponse if kind == "announce" else ScrapeResponse, body))
    root = Path(__file__).parent
    for torrent in sorted((root / "data" / "torrents").glob("*.torrent")) + sorted(
            (root.parent / "p2pkit" / "data").glob("*.torrent")):
        cases.append((Torrent, torrent.read_bytes()))
    return cases


REAL = _real_cases()


def test_real_bytes_cover_every_kind_of_declared_dictionary():
    kinds = {getattr(schema, "name", None) for schema, _ in REAL}
    assert {"krpc_message", "extended_handshake", "ut_metadata", "ut_pex", "AnnounceResponse",
            "ScrapeResponse", "metainfo"} <= kinds
    assert len(REAL) > 100


@pytest.mark.parametrize("case", range(len(REAL)))
def test_real_bytes_parse_build_and_size_together(case):
    schema, data = REAL[case]
    common(schema, data, schema.parse(data))
