"""The dissector's descriptor records made in one loop (p2pkit.gnutella.descriptor_records)
and the checks they rely on (p2pkit.gnutella.deferred), against the records of the eagerly
parsed descriptors, on every descriptor of the committed Gnutella captures and on mutated and
random descriptors and streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from p2pkit.deviations import deviations_of
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella import ggep
from p2pkit.gnutella.deferred import (
    DEFERRED_PAYLOADS,
    TOTAL_DECODERS,
    checked_summary,
    fast_summary_check,
    may_reach_bound,
)
from p2pkit.gnutella.descriptor_fast_path import fast_descriptor
from p2pkit.gnutella.descriptor_records import PLANS, DescriptorRecords
from p2pkit.gnutella.descriptors import PAYLOAD_TYPES, PAYLOADS, DescriptorLenient, QueryFlags
from p2pkit.gnutella.dissect import descriptor_record
from p2pkit.gnutella.fields import IPv4, Text, VendorCode
from p2pkit.gnutella.protocol import GNUTELLA
from p2pkit.gnutella.stream import StreamReader
from p2pkit.schema import NamedBits
from tests.gnutella.test_descriptor_fast_path import MUTATIONS, REAL, mutated


def _descriptor(ptype: int, payload: bytes, guid: bytes = bytes(16), ttl: int = 1,
                hops: int = 0) -> bytes:
    return guid + bytes([ptype, ttl, hops]) + len(payload).to_bytes(4, "little") + payload


def _split(data: bytes, offset: int = 7) -> list:
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
    records.frame, records.time = 3, 1.0
    frames: list = []
    end = records.split(b"xx" + data, 2, offset - 2, frames)
    assert end in (2, 2 + len(data)) and len(frames) == (end > 2) == records.made
    return frames


def same(data: bytes) -> bool:
    """The loop's record of ``data`` (if it makes one) is the eager record: the summary line
    drawn without decoding, any summary field, the tree and JSON; True when it made one."""
    frames = _split(data)
    try:
        parsed = DescriptorLenient.parse(data)
    except ParseError:
        assert not frames  # a bound: left to the reader
        return False
    if not frames:
        return False
    [lazy] = frames
    eager = descriptor_record(parsed, transport="tcp", src="a:1", dst="b:2", offset=7,
                              length=len(data), frame=3, time=1.0, base=7)
    assert render_summary(lazy) == render_summary(eager)
    assert isinstance(lazy, LazyRecord) and not lazy.decoded
    for key in (*eager.fields, "port", "nothing"):
        assert _split(data)[0].summary_fields((key, "ttl", "guid")) == eager.summary_fields(
            (key, "ttl", "guid"))
    assert render_tree(lazy) == render_tree(eager)
    assert render_jsonl(lazy) == render_jsonl(eager)
    assert lazy.value == eager.value and lazy.deviations == eager.deviations
    return True


def test_every_real_descriptor_gets_its_record_in_the_loop():
    assert len(REAL) > 500
    for data in REAL:  # every one that parses without a deviation is made in the loop
        assert same(data) == (not deviations_of(DescriptorLenient.parse(data)))


@settings(max_examples=200, deadline=None)
@given(*MUTATIONS)
def test_mutated_real_descriptors(real, flips, cut, tail):
    mended, data = mutated(real, flips, cut, tail)
    same(mended)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=300))
def test_random_payloads(ptype, payload):
    same(_descriptor(ptype, payload))


def test_malformed_and_bounded_descriptors_are_left_to_the_reader():
    short_pong = _descriptor(PAYLOAD_TYPES["pong"], bytes(13))
    broken_ggep = _descriptor(PAYLOAD_TYPES["pong"], bytes(14) + b"\xc3\x83DU")
    unknown = _descriptor(0x7F, b"ab")
    many = b"\xc3" + b"\x01A\x40" * ggep.MAX_EXTENSIONS + b"\x81A\x40"
    bounded = _descriptor(PAYLOAD_TYPES["ping"], many)
    for data in (short_pong, broken_ggep, unknown, bounded):
        assert _split(data) == []
    with pytest.raises(LimitExceeded):
        DescriptorLenient.parse(bounded)
    # (a deviation under the pong's name: the eager record, whose summary has no port)
    assert "port=" not in render_summary(descriptor_record(
        DescriptorLenient.parse(broken_ggep), transport="tcp", src="a:1", dst="b:2",
        offset=0, length=len(broken_ggep), frame=1, time=0.0))


def _stream_records(stream: bytes, cuts: list[int], split: bool) -> tuple[list[str], str]:
    """Summary lines, trees and the error of a descriptor stream fed in pieces."""
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
    reader = StreamReader(handshake=False, strict=False,
                          split=records.split if split else None)
    out: list = []
    error = ""
    at = 0
    for cut in [*sorted(cuts), len(stream)]:
        try:
            out += reader.feed(stream[at:cut])
        except ParseError as e:
            error = str(e)
            break
        at = max(at, cut)
    else:
        try:
            reader.close()  # the error after the frames before it, or the stream's rest
        except ParseError as e:
            error = str(e)
    lines = []
    for f in out:
        if not isinstance(f, LazyRecord):  # parsed by the reader
            f = descriptor_record(f.descriptor, transport="tcp", src="a:1", dst="b:2",
                                  offset=f.offset, length=len(f.data), frame=0, time=0.0,
                                  base=f.offset)
        lines += [render_summary(f), render_tree(f)]
    return lines, error


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(REAL) | st.builds(
    _descriptor, st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=40)),
    min_size=1, max_size=12),
       st.lists(st.integers(0, 3000), max_size=6), st.binary(max_size=30))
def test_streams_split_in_any_pieces_give_the_reader_s_records(descriptors, cuts, tail):
    stream = b"".join(descriptors) + tail
    assert _stream_records(stream, cuts, True) == _stream_records(stream, cuts, False)


def test_a_payload_length_above_the_bound_stops_the_stream_at_once():
    stream = REAL[0] + bytes(16) + bytes([0, 1, 0]) + (70000).to_bytes(4, "little")
    lines, error = _stream_records(stream, [], True)
    assert "payload length 70000 above the bound" in error
    assert (lines, error) == _stream_records(stream, [], False)


def test_the_plans_come_from_the_declarations():
    assert set(PLANS) == set(PAYLOADS)
    fast = {name: shown for name, _, _, check, shown, _ in PLANS.values() if check is not None}
    assert fast == {"pong": ("port",), "push": ("port",), "query_hit": ("port",), "bye": (),
                    "query": (), "ping": (), "hsep": ()}
    for _, keys, _, _, _, checked_keys in PLANS.values():
        assert not keys & set(GNUTELLA.summary)
        assert not checked_keys & set(GNUTELLA.summary)
    # payloads that hold no GGEP cannot reach a bound: deferred at any length
    assert {name for name, _, longest in DEFERRED_PAYLOADS.values() if longest > 253} == {
        "bye", "hsep", "route_table_update", "vendor_message", "standard_vendor_message"}
    assert not may_reach_bound(PAYLOADS[PAYLOAD_TYPES["route_table_update"]][1])
    assert may_reach_bound(PAYLOADS[PAYLOAD_TYPES["query_hit"]][1])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([t for t, (_, _, longest) in DEFERRED_PAYLOADS.items()
                        if longest > 253]), st.binary(max_size=2000))
def test_payloads_without_ggep_never_reach_a_bound(ptype, payload):
    DescriptorLenient.parse(_descriptor(ptype, payload))  # LimitExceeded would raise


FAST_CHECKED = sorted(t for t, (_, body) in PAYLOADS.items() if fast_summary_check(body))


def _fast_check_agrees(data: bytes) -> None:
    """The check-only walk says what the Container path says, and gives its values."""
    check, shown, keys = fast_summary_check(PAYLOADS[data[16]][1])
    expected = fast_descriptor(data)
    values = check(data)
    assert (values is None) == (expected is None)
    assert (checked_summary(data) is None) == (expected is None)
    if values is not None:
        assert dict(zip(shown, values)) == {k: expected[k] for k in shown}
        assert keys | set(shown) == set(expected) - {"guid", "type", "ttl", "hops"}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FAST_CHECKED), st.binary(max_size=120))
def test_the_fast_check_says_what_the_check_says(ptype, payload):
    _fast_check_agrees(_descriptor(ptype, payload))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([d for d in REAL if d[16] in FAST_CHECKED and len(d) > 23]),
       st.lists(st.tuples(st.integers(23, 600), st.integers(0, 255)), max_size=3),
       st.integers(23, 600))
def test_the_fast_check_on_mutated_real_descriptors(real, flips, cut):
    data = bytearray(real)
    for at, value in flips:  # (the payload's bytes: the type stays one with a fast check)
        data[23 + at % (len(data) - 23)] = value
    data = data[:cut]
    _fast_check_agrees(bytes(data[:19]) + (len(data) - 23).to_bytes(4, "little") + data[23:])


def test_the_fast_check_on_every_real_descriptor():
    for data in REAL:
        if data[16] in FAST_CHECKED:
            _fast_check_agrees(data)


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_total_decoders_accept_every_value(raw, text, flags):
    assert {type(IPv4), type(VendorCode), type(Text), NamedBits} == set(TOTAL_DECODERS)
    IPv4._decode(raw, None, "")
    VendorCode._decode(raw, None, "")
    Text._decode(text, None, "")
    QueryFlags._decode(flags, None, "")  # (the one NamedBits of a payload)
