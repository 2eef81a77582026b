"""SummaryLines (p2pkit.capture.summary_lines) against render_summary, line for line, on every
record of every committed capture and on hypothesis-generated records; FrameOrder's queue and
heap against a single heap of (frame, push count), the order it replaced."""

from __future__ import annotations

import heapq
from importlib.resources import files

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit import registry
from p2pkit.capture.dissect import Dissection, FrameOrder
from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.record import BinarySize, Record
from p2pkit.capture.render import render_summary
from p2pkit.capture.summary_lines import SummaryLines
from tests.pcap_payloads import CAPTURES

SAMPLE = files("p2pkit") / "data" / "sample-bittorrent-utp-dht.pcap"
ALL_CAPTURES = [*sorted(CAPTURES.glob("*.pcap*")), SAMPLE]


def _undecoded(records: list[Record]) -> int:
    return sum(isinstance(r, LazyRecord) and not r.decoded for r in records)


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_the_lines_of_every_committed_capture_are_render_summary_s(path):
    dissection = Dissection(path)
    batches = list(dissection.batches())
    start = dissection.first_time or 0.0
    lines = SummaryLines(start)
    text = "".join(lines.text(batch) for batch in batches)
    reference = list(Dissection(path))
    expected = "".join(render_summary(r, start) + "\n" for r in reference)
    assert text == expected and text.count("\n") == len(reference)
    # the lines read no more of the messages than render_summary does
    assert _undecoded([r for batch in batches for r in batch]) == _undecoded(reference)


# -- random records --------------------------------------------------------------------------

PROTOCOLS = [*registry.names(), "no-such-protocol"]
KEYS = sorted({k for name in registry.names() for k in registry.get(name).summary}
              | {"reason", "at", "bytes", "x", "body"})
scalars = st.one_of(
    st.integers(min_value=-(10 ** 45), max_value=10 ** 45), st.booleans(), st.none(),
    st.text(max_size=50), st.floats(allow_nan=False),
    st.builds(BinarySize, st.integers(min_value=0, max_value=10 ** 6)),
    st.just({"length": 3, "sha1": "ab" * 20}),
    # where a value stops being shown whole (40 characters), and text shown escaped
    st.sampled_from([10 ** 40 - 1, 10 ** 40, -(10 ** 39) + 1, -(10 ** 39), "x" * 40, "x" * 41,
                     "a\x00b", "tab\t"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=4)


def _summary_of(protocol: str) -> tuple[str, ...]:
    try:
        return registry.get(protocol).summary or ("x", "body")
    except Exception:  # not registered
        return ("x", "body")


@st.composite
def records(draw):
    frame = draw(st.integers(min_value=0, max_value=5))
    time = draw(st.sampled_from([0.0, 0.5, 1.25, 1e6]))
    src, dst = draw(st.sampled_from([("a:1", "b:2"), ("b:2", "a:1"), ("c:3", "b:2")]))
    protocol = draw(st.sampled_from(PROTOCOLS))
    message = draw(st.sampled_from(["m", "undecoded", "ping"]))
    # mostly the keys its lines show (the protocol's, or an undecoded record's)
    shown = (*_summary_of(protocol), "reason", "at", "x")
    maps = st.dictionaries(st.sampled_from(shown), st.one_of(scalars, values), max_size=6)
    fields = draw(maps)
    if not draw(st.booleans()):
        return Record(frame=frame, time=time, transport="udp", src=src, dst=dst,
                      protocol=protocol, message=message, fields=fields)
    summary = draw(st.one_of(st.none(), maps))
    payload = draw(st.one_of(st.just(frozenset()),
                             st.frozensets(st.sampled_from(KEYS), max_size=2)))
    return LazyRecord(frame=frame, time=time, transport="udp", src=src, dst=dst,
                      protocol=protocol, message=message, decode=lambda: (fields, None, []),
                      summary=summary, payload_keys=payload)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(records(), max_size=4), max_size=3),
       st.sampled_from([0.0, 0.25]))
def test_random_records_give_render_summary_s_lines(batches, start):
    lines = SummaryLines(start)
    text = [lines.text(batch) for batch in batches]
    assert text == ["".join(render_summary(r, start) + "\n" for r in batch) for batch in batches]


def test_a_lazy_record_s_line_needs_no_decoding_when_its_header_gives_the_fields():
    def decode():
        raise AssertionError("decoded")

    r = LazyRecord(frame=3, time=1.5, transport="tcp", src="a:1", dst="b:2",
                   protocol="gnutella", message="ping", decode=decode,
                   summary={"guid": "00" * 16, "ttl": 7, "hops": 0},
                   payload_keys=frozenset({"ggep"}))
    assert SummaryLines(1.0).text([r]) == (
        "    3   0.500000 a:1 → b:2 gnutella ping guid=" + "00" * 16 + " ttl=7 hops=0\n")
    assert not r.decoded


def test_a_failed_decode_leaves_an_empty_record():
    def decode():
        raise ValueError("bad")

    r = LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2", protocol="p",
                   message="m", decode=decode)
    with pytest.raises(ValueError):
        _ = r.fields
    assert (r.fields, r.value, r.deviations) == ({}, None, [])
    given_fields = LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
                              protocol="p", message="m", fields={"x": 1}, decode=decode)
    with pytest.raises(ValueError):
        _ = given_fields.value
    assert given_fields.fields == {"x": 1}


# -- FrameOrder ------------------------------------------------------------------------------

class _HeapOrder:
    """The order FrameOrder gave with one heap of (frame, push count, record)."""

    def __init__(self, window: int, max_held: int, max_bytes: int) -> None:
        self.window, self.max_held, self.max_bytes = window, max_held, max_bytes
        self.heap: list[tuple[int, int, Record]] = []
        self.count = self.bytes = 0

    def full(self) -> bool:
        return len(self.heap) > self.max_held or self.bytes > self.max_bytes

    def push(self, record: Record) -> None:
        heapq.heappush(self.heap, (record.frame, self.count, record))
        self.count += 1
        self.bytes += record.length

    def pop(self) -> Record:
        record = heapq.heappop(self.heap)[2]
        self.bytes -= record.length
        return record

    def frame(self, number: int, records: list[Record]) -> list[Record]:
        out = []
        for r in records:
            self.push(r)
            if self.full():
                out.append(self.pop())
        if self.heap and self.heap[0][0] <= number - self.window:
            while self.heap and (self.heap[0][0] <= number - self.window or self.full()):
                out.append(self.pop())
        return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(min_value=-3, max_value=0),
                                   st.integers(min_value=0, max_value=60)), max_size=6),
                min_size=1, max_size=30),
       st.integers(min_value=0, max_value=4), st.integers(min_value=-1, max_value=8),
       st.integers(min_value=50, max_value=400))
def test_frame_order_releases_what_one_heap_released(frames, window, max_held, max_bytes):
    """Frames read one by one; each produces records of its own frame or up to three
    before it (late records), of random lengths; released after each frame and at the end."""
    order, reference = FrameOrder(window, max_held, max_bytes), _HeapOrder(window, max_held,
                                                                          max_bytes)
    at_once = FrameOrder(window, max_held, max_bytes)  # extend(records, out, frame)
    got, expected, got_at_once = [], [], []
    for number, produced in enumerate(frames, start=1):
        records = [Record(frame=number + back, time=0.0, transport="udp", src="a", dst="b",
                          protocol="p", message=f"{number}.{i}", length=length)
                   for i, (back, length) in enumerate(produced)]
        batch: list[Record] = []
        order.extend(records, batch)
        if order.ready(number):
            order.release_into(number, batch)
        got += batch
        at_once.extend(records, got_at_once, number)
        expected += reference.frame(number, records)
        assert len(order) == len(reference.heap) and order.held_bytes == reference.bytes
        assert len(at_once) == len(order) and at_once.held_bytes == order.held_bytes
    got += list(order.flush())
    got_at_once += list(at_once.flush())
    expected += [reference.pop() for _ in range(len(reference.heap))]
    assert [r.message for r in got] == [r.message for r in expected]
    assert [r.message for r in got_at_once] == [r.message for r in expected]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10, max_value=10 ** 12),
       st.one_of(st.floats(allow_nan=True), st.integers(min_value=-10 ** 6, max_value=10 ** 6)),
       st.sampled_from([0.0, 0.25, 0]))
def test_the_frame_and_time_prefix_is_render_summary_s_for_any_number(frame, time, start):
    r = Record(frame=frame, time=time, transport="udp", src="a:1", dst="b:2",
               protocol="bt-dht", message="query", fields={})
    assert SummaryLines(start).text([r]) == render_summary(r, start) + "\n"


# -- SummaryLines.write: the lines as bytes to standard output's buffer -------------------


def _stdout(monkeypatch, line_buffering: bool = False, encoding: str = "utf-8",
            errors: str = "strict"):
    """A stand-in for the process's standard output (a file: bytes underneath)."""
    import io
    import sys

    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors=errors,
                              line_buffering=line_buffering)
    monkeypatch.setattr(sys, "__stdout__", stream)
    return stream


def _written(stream) -> bytes:
    stream.flush()
    return stream.buffer.getvalue()


@pytest.mark.parametrize("path", [CAPTURES / "gnutella-02-p2pkit-servents.pcap",
                                  CAPTURES / "dht-02-bep44-put-get.pcap", SAMPLE],
                         ids=lambda p: p.name)
def test_written_bytes_are_the_text_s(path, monkeypatch):
    """The batches of a summary (runs of Gnutella lines too) written to standard output
    through its buffer: the bytes of the text, and the text written before them first."""
    dissection = Dissection(path, summary_runs=True)
    batches = list(dissection.batches())
    start = dissection.first_time or 0.0
    expected = "".join(SummaryLines(start).text(batch) for batch in batches)
    stream = _stdout(monkeypatch)
    stream.write("before\n")
    lines = SummaryLines(start)
    for batch in batches:
        lines.write(batch, stream)
    assert lines._binary == (stream, stream.buffer)  # (the bytes path was taken)
    assert _written(stream) == ("before\n" + expected).encode()
    assert lines.made == expected.count("\n")


def test_a_line_holding_the_mark_is_written_as_text(monkeypatch):
    stream = _stdout(monkeypatch)
    plain = Record(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2",
                   protocol="p", message="m", fields={})
    odd = Record(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2",
                 protocol="p", message="m\x1f→é", fields={})
    lines = SummaryLines(0.0)
    lines.write([plain, odd, plain], stream)
    lines.write([plain], stream)
    text = SummaryLines(0.0).text([plain, odd, plain, plain])
    assert _written(stream) == text.encode() and "m\x1f→é" in text


def test_other_streams_get_text(monkeypatch):
    import io

    record = Record(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2",
                    protocol="p", message="m", fields={})
    expected = SummaryLines(0.0).text([record])
    for stream in (_stdout(monkeypatch, line_buffering=True),
                   _stdout(monkeypatch, encoding="latin-1", errors="replace"), io.StringIO()):
        lines = SummaryLines(0.0)
        if isinstance(stream, io.StringIO):
            monkeypatch.setattr("sys.__stdout__", None)
        lines.write([record], stream)
        assert lines._binary == (stream, None)
        if isinstance(stream, io.StringIO):
            assert stream.getvalue() == expected
        else:
            assert _written(stream) == expected.encode(stream.encoding, "replace")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(records(), max_size=4), max_size=3),
       st.sampled_from(["m", "\x1f", "a\x1fb→", "é", "→"]))
def test_random_records_written_as_bytes(monkeypatch, batches, message):
    """Random records (some with the mark or other text outside ASCII in their message) give
    the bytes of their text."""
    for batch in batches[:1]:
        for record in batch[:1]:
            record.message = message
    stream = _stdout(monkeypatch)
    lines = SummaryLines(0.25)
    for batch in batches:
        lines.write(batch, stream)
    reference = SummaryLines(0.25)
    assert _written(stream) == "".join(reference.text(b) for b in batches).encode()
