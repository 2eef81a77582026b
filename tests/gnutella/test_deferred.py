"""Deferred descriptors (p2pkit.gnutella.deferred) against the eager decoding: the same summary
line without decoding, the same fields, value and deviations once decoded, on every descriptor
of the committed captures and on hypothesis-generated ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import p2pkit.gnutella.dissect as gnutella_dissect
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from p2pkit.errors import LimitExceeded
from p2pkit.gnutella.deferred import (
    DEFERRED_PAYLOADS,
    MAX_DEFERRED_PAYLOAD,
    deferrable,
    deferred_record,
)
from p2pkit.gnutella.descriptors import PAYLOAD_TYPES, DescriptorLenient
from p2pkit.gnutella.dissect import descriptor_record
from p2pkit.gnutella.ggep import MAX_EXTENSIONS, MAX_INFLATED_SIZE
from p2pkit.gnutella.protocol import GNUTELLA
from tests.pcap_payloads import CAPTURES

GNUTELLA_CAPTURES = ["gtkg123-plain-up2-3leaves.pcap", "gnutella-02-p2pkit-servents.pcap",
                     "ndpi-gnutella.pcap"]


def _outputs(name: str) -> tuple[list[str], list[str], list[str], int]:
    """Summary lines (drawn before anything else is read), trees and JSON of a capture."""
    dissection = Dissection(CAPTURES / name)
    records = list(dissection)
    start = dissection.first_time or 0.0
    lazy = sum(isinstance(r, LazyRecord) and not r.decoded for r in records)
    summaries = [render_summary(r, start) for r in records]
    assert sum(isinstance(r, LazyRecord) and not r.decoded for r in records) == lazy
    return (summaries, [render_tree(r, start) for r in records],
            [render_jsonl(r) for r in records], lazy)


@pytest.mark.parametrize("name", GNUTELLA_CAPTURES)
def test_deferred_records_equal_the_eager_ones_on_real_captures(name, monkeypatch):
    summaries, trees, jsons, lazy = _outputs(name)
    monkeypatch.setattr(gnutella_dissect.DescriptorRecords, "split",
                        lambda self, data, pos, offset, frames: pos)  # every one parsed
    eager = _outputs(name)
    assert lazy > 0  # the summary lines of undecoded descriptors were drawn from headers
    assert (summaries, trees, jsons) == eager[:3]


def test_the_deferred_types_come_from_the_schema():
    names = {name for name, _, _ in DEFERRED_PAYLOADS.values()}
    assert names == {"ping", "bye", "query", "hsep", "vendor_message", "standard_vendor_message",
                     "route_table_update"}
    for _, keys, _ in DEFERRED_PAYLOADS.values():
        assert not keys & set(GNUTELLA.summary)
    assert MAX_DEFERRED_PAYLOAD <= MAX_EXTENSIONS
    assert MAX_DEFERRED_PAYLOAD * 1032 < MAX_INFLATED_SIZE


def _descriptor(ptype: int, payload: bytes, guid: bytes, ttl: int, hops: int) -> bytes:
    return guid + bytes([ptype, ttl, hops]) + len(payload).to_bytes(4, "little") + payload


def _same(data: bytes) -> None:
    """``data`` deferred gives the eager record: summary first (undecoded), then the rest."""
    assert deferrable(data)
    lazy = deferred_record(data, transport="tcp", src="a:1", dst="b:2", offset=100, frame=3,
                           time=1.0, base=100)
    line = render_summary(lazy)
    assert not lazy.decoded
    eager = descriptor_record(DescriptorLenient.parse(data), transport="tcp", src="a:1",
                              dst="b:2", offset=100, length=len(data), frame=3, time=1.0,
                              base=100)
    assert line == render_summary(eager)
    assert render_tree(lazy) == render_tree(eager)
    assert render_jsonl(lazy) == render_jsonl(eager)
    assert lazy.value == eager.value and lazy.deviations == eager.deviations
    _, keys, _ = DEFERRED_PAYLOADS[data[16]]
    assert set(lazy.fields) <= keys | {"guid", "ttl", "hops"}


REAL = [bytes(r.value and DescriptorLenient.build(r.value))
        for r in Dissection(CAPTURES / "gtkg123-plain-up2-3leaves.pcap")
        if r.protocol == "gnutella" and r.message in {n for n, _, _ in DEFERRED_PAYLOADS.values()}
        and not r.deviations]


def test_real_descriptors_of_every_deferred_type():
    assert {d[16] for d in REAL} >= {PAYLOAD_TYPES[n] for n in ("ping", "query",
                                                                "vendor_message")}
    for data in REAL:
        if deferrable(data):
            _same(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(23, 400), st.integers(0, 255)),
                                       max_size=3), st.integers(23, 400))
def test_mutated_real_descriptors(real, flips, cut):
    data = bytearray(real)
    for at, value in flips:
        data[at % len(data)] = value
    data = data[:max(cut, 23)]
    data[19:23] = (len(data) - 23).to_bytes(4, "little")
    if deferrable(bytes(data)):
        _same(bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(DEFERRED_PAYLOADS)), st.binary(max_size=MAX_DEFERRED_PAYLOAD),
       st.binary(min_size=16, max_size=16), st.integers(0, 255), st.integers(0, 255))
def test_random_payloads_of_the_deferred_types(ptype, payload, guid, ttl, hops):
    _same(_descriptor(ptype, payload, guid, ttl, hops))


def test_longer_payloads_with_ggep_are_decoded_at_once():
    query = _descriptor(PAYLOAD_TYPES["query"], b"\x00\x00x\x00" + b"\xc3" * 300, bytes(16),
                        1, 0)
    assert not deferrable(query)
    assert not deferrable(_descriptor(PAYLOAD_TYPES["pong"], bytes(14), bytes(16), 1, 0))
    # a payload that reaches a bound stops the stream: never deferred
    many = b"\xc3" + b"\x01A\x40" * MAX_EXTENSIONS + b"\x81A\x40"
    with pytest.raises(LimitExceeded):
        DescriptorLenient.parse(_descriptor(PAYLOAD_TYPES["ping"], many, bytes(16), 1, 0))
    assert not deferrable(_descriptor(PAYLOAD_TYPES["ping"], many, bytes(16), 1, 0))
