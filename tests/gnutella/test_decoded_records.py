"""Descriptors decoded as they are framed when every record's fields will be read
(p2pkit.gnutella.decoded_records, the ``fields_read`` hint), against the records the summary
loop makes (p2pkit.gnutella.descriptor_records) and the reader's eager ones: on every
descriptor of the committed Gnutella captures, on mutated and random descriptors, on streams
fed in any pieces, and on whole captures dissected with and without the hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.lazy_record import DecodedRecord, LazyRecord
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from p2pkit.gnutella.deferred import checked_summary
from p2pkit.gnutella.descriptor_json import json_descriptor
from p2pkit.gnutella.descriptor_records import PLANS, DescriptorRecords
from p2pkit.gnutella.descriptors import MAX_PAYLOAD_LENGTH, PAYLOADS
from p2pkit.gnutella.dissect import descriptor_record, gnutella_stream
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader
from tests.gnutella.test_descriptor_fast_path import GNUTELLA_CAPTURES, MUTATIONS, REAL, mutated

CAPTURES = Path(__file__).parents[1] / "data" / "captures"


def _descriptor(ptype: int, payload: bytes) -> bytes:
    return bytes(16) + bytes([ptype, 1, 0]) + len(payload).to_bytes(4, "little") + payload


def _split(data: bytes, fields_read: bool) -> tuple[list, int]:
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
    records.frame, records.time = 3, 1.0
    records.fields_read = fields_read
    frames: list = []
    end = records.split(b"xx" + data, 2, 5, frames)
    assert len(frames) == records.made
    return frames, end


def _shown(record) -> tuple:
    """Everything a record shows: summary line, tree, JSON line, value and deviations."""
    return (record.message, record.offset, record.length, render_summary(record),
            render_tree(record), render_jsonl(record), record.fields, record.value,
            record.deviations)


def same(data: bytes) -> None:
    """With the hint, the loop makes the records it makes without (the same ones, stopping
    at the same place), decoded already when the fast path parses the descriptor; and a
    descriptor the fast path parses is one the summary loop stands in for (its check
    accepts it)."""
    decoded, end = _split(data, True)
    lazy, lazy_end = _split(data, False)
    assert end == lazy_end
    assert [_shown(r) for r in decoded] == [_shown(r) for r in lazy]
    fields = json_descriptor(data)
    framed = int.from_bytes(data[19:23], "little") == len(data) - 23 <= MAX_PAYLOAD_LENGTH
    if fields is not None and data[16] in PLANS and framed:
        assert len(decoded) == 1 and type(decoded[0]) is DecodedRecord
        assert decoded[0].fields == fields
        check = PLANS[data[16]][3]
        if check is not None:
            assert check(data) is not None
        assert checked_summary(data) is not None


def test_every_real_descriptor():
    assert len(REAL) > 500
    for data in REAL:
        same(data)


@settings(max_examples=200, deadline=None)
@given(*MUTATIONS)
def test_mutated_real_descriptors(real, flips, cut, tail):
    mended, data = mutated(real, flips, cut, tail)
    same(mended)
    same(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=300))
def test_random_payloads(ptype, payload):
    same(_descriptor(ptype, payload))


def _stream_lines(stream: bytes, cuts: list[int], fields_read: bool | None) -> tuple[list, str]:
    """Trees, JSON lines and the error of a descriptor stream fed in pieces (``None``: the
    reader alone, every descriptor parsed eagerly)."""
    records = DescriptorRecords(transport="tcp", src="a:1", dst="b:2")
    records.fields_read = bool(fields_read)
    reader = StreamReader(handshake=False, strict=False,
                          split=None if fields_read is None else records.split)
    out: list = []
    error = ""
    at = 0
    for cut in [*sorted(cuts), len(stream)]:
        try:
            out += reader.feed(stream[at:cut])
        except Exception as e:  # noqa: BLE001 - compared, whatever it is
            error = str(e)
            break
        at = max(at, cut)
    lines = []
    for f in out:
        if isinstance(f, DescriptorFrame):  # parsed by the reader
            f = descriptor_record(f.descriptor, transport="tcp", src="a:1", dst="b:2",
                                  offset=f.offset, length=len(f.data), frame=0, time=0.0,
                                  base=f.offset)
        lines += [render_tree(f), render_jsonl(f)]
    return lines, error


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(REAL) | st.builds(
    _descriptor, st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=40)),
    min_size=1, max_size=12),
       st.lists(st.integers(0, 3000), max_size=6), st.binary(max_size=30))
def test_streams_split_in_any_pieces(descriptors, cuts, tail):
    stream = b"".join(descriptors) + tail
    eager = _stream_lines(stream, cuts, None)
    assert _stream_lines(stream, cuts, True) == eager
    assert _stream_lines(stream, cuts, False) == eager


@pytest.mark.parametrize("name", GNUTELLA_CAPTURES)
def test_whole_captures_with_and_without_the_hint(name):
    def shown(fields_read: bool) -> list:
        return [(render_tree(r), render_jsonl(r))
                for r in Dissection(CAPTURES / name, fields_read=fields_read)]

    assert shown(True) == shown(False)


def test_the_hint_reaches_the_gnutella_decoder():
    stream = gnutella_stream(src="a:1", dst="b:2")
    assert stream.fields_read is False
    stream.fields_read = True
    assert stream.records.fields_read is True

    def kinds(fields_read: bool) -> list[type]:
        return [type(r) for r in Dissection(CAPTURES / GNUTELLA_CAPTURES[0],
                                            fields_read=fields_read)
                if isinstance(r, (LazyRecord, DecodedRecord))]

    hinted, plain = kinds(True), kinds(False)
    assert len(hinted) == len(plain) > 100
    assert set(plain) == {LazyRecord} and hinted.count(DecodedRecord) > len(hinted) * 0.9
