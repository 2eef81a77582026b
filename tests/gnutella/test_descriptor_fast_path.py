"""The descriptor fast path (p2pkit.gnutella.descriptor_fast_path), the GGEP fast paths
(p2pkit.gnutella.ggep) and the check the dissector's summary lines rely on, against the
schemas alone, on every descriptor of the committed Gnutella captures and on random and
mutated descriptors."""

from __future__ import annotations

import io
import ipaddress
import json
from contextlib import contextmanager

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import p2pkit.gnutella.descriptors as descriptors
from p2pkit.capture.lazy_record import scalar_summary
from p2pkit.capture.record import json_fields
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from p2pkit.deviations import deviations_of
from p2pkit.errors import ParseError
from p2pkit.gnutella import ggep
from p2pkit.gnutella.deferred import checked_summary, deferred_record
from p2pkit.gnutella.descriptor_fast_path import (
    BODY_READERS,
    body_reader,
    check_descriptor,
    fast_descriptor,
)
from p2pkit.gnutella.descriptors import PAYLOADS, DescriptorLenient
from p2pkit.gnutella.dissect import descriptor_record, detect_gnutella_udp
from p2pkit.gnutella.fields import IPv4
from p2pkit.gnutella.stream import DescriptorFrame, StreamReader
from p2pkit.gnutella.vendor import BODIES
from tests.pcap_payloads import CAPTURES, tcp_streams, udp_datagrams

GNUTELLA_CAPTURES = ["gtkg123-plain-up2-3leaves.pcap", "gnutella-02-p2pkit-servents.pcap",
                     "ndpi-gnutella.pcap"]


def _descriptors(name: str) -> list[bytes]:
    """Every descriptor of the capture: TCP directions framed by the reader (inflated when
    deflated), and UDP datagrams that are one descriptor."""
    out: list[bytes] = []
    for stream in tcp_streams(name).values():
        if not stream.startswith(b"GNUTELLA"):
            continue
        reader = StreamReader(strict=False)
        try:
            out += [f.data for f in reader.feed(stream) if isinstance(f, DescriptorFrame)]
        except ParseError:
            pass
    out += [p for _, _, p in udp_datagrams(name) if detect_gnutella_udp(p)]
    return out


REAL = [d for name in GNUTELLA_CAPTURES for d in _descriptors(name)]

#: Hypothesis arguments of :func:`mutated`: a real descriptor, bytes to overwrite (position
#: modulo its length, value), where to cut it and the bytes appended.
MUTATIONS = (st.sampled_from(REAL),
             st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), max_size=4),
             st.integers(0, 600), st.binary(max_size=8))


def mutated(real: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes
            ) -> tuple[bytes, bytes]:
    """A real descriptor with bytes overwritten, cut (never inside its header) and ``tail``
    appended: (the result with its header's payload length set to what follows the header,
    the result as it is)."""
    data = bytearray(real)
    for at, value in flips:
        data[at % len(data)] = value
    out = bytes(data[:max(cut, 23)]) + tail
    return out[:19] + (len(out) - 23).to_bytes(4, "little") + out[23:], out


@contextmanager
def schema_only():
    """The schemas without any of this work's fast paths."""
    saved = (ggep._fast_extension_block, dict(ggep._FAST_VALUES),
             descriptors.fast_extension_block)
    ggep._fast_extension_block = lambda data, check=False: None
    descriptors.fast_extension_block = ggep._fast_extension_block
    ggep._FAST_VALUES.clear()
    try:
        yield
    finally:
        ggep._fast_extension_block, values, descriptors.fast_extension_block = saved
        ggep._FAST_VALUES.update(values)


def schema_parse(data: bytes):
    """The lenient schema's own parse (an exception is returned, not raised)."""
    with schema_only():
        try:
            return DescriptorLenient.parse_stream(io.BytesIO(data))
        except ParseError as e:
            return e


def same(data: bytes, *, taken: bool = False) -> None:
    """The fast path gives the schema's descriptor, or gives way where the schema does not
    simply succeed (``taken``: only there); the check agrees with it and reads the same
    top-level scalars."""
    fast = fast_descriptor(data)
    checked = check_descriptor(data)
    expected = schema_parse(data)
    assert checked == (fast is not None)
    if fast is None:
        if taken:
            assert isinstance(expected, Exception) or deviations_of(expected)
        return
    assert not isinstance(expected, Exception)
    assert not deviations_of(expected)
    assert fast == expected
    assert list(fast) == [k for k in expected if k[:1] != "_"]  # the same order
    assert json.dumps(json_fields(fast)) == json.dumps(json_fields(expected))
    assert DescriptorLenient.build(fast) == data
    name, fields = checked_summary(data)
    assert name == fast.type
    shown = fields["summary"]
    assert shown == {k: v for k, v in scalar_summary(fast, {"guid": fast.guid.hex()})[
        "summary"].items() if k in shown}  # the values the check gives are the descriptor's
    assert set(shown) | fields["payload_keys"] == set(fast) - {"type"}
    eager = descriptor_record(expected, transport="tcp", src="a:1", dst="b:2", offset=7,
                              length=len(data), frame=3, time=1.0, base=7)
    lazy = _checked_record(data)
    assert render_summary(lazy) == render_summary(eager)
    assert not lazy.decoded  # the summary line was drawn from the check
    for key in (*eager.fields, "port", "nothing"):  # any other key: decoded, the same
        assert _checked_record(data).summary_fields((key, "ttl")) == \
            eager.summary_fields((key, "ttl"))
    assert render_tree(lazy) == render_tree(eager)
    assert render_jsonl(lazy) == render_jsonl(eager)


def _checked_record(data: bytes):
    return deferred_record(data, transport="tcp", src="a:1", dst="b:2", offset=7, frame=3,
                           time=1.0, base=7, checked=checked_summary(data))


def test_every_real_descriptor():
    assert len(REAL) > 500
    assert {d[16] for d in REAL} >= {0x00, 0x01, 0x02, 0x30, 0x31, 0x40, 0x80, 0x81}
    for data in REAL:
        same(data, taken=True)  # every real descriptor the schema reads without a deviation


def _descriptor(ptype: int, payload: bytes, guid: bytes = bytes(16), ttl: int = 1,
                hops: int = 0) -> bytes:
    return guid + bytes([ptype, ttl, hops]) + len(payload).to_bytes(4, "little") + payload


@settings(max_examples=500, deadline=None)
@given(*MUTATIONS)
def test_mutated_real_descriptors(real, flips, cut, tail):
    mended, data = mutated(real, flips, cut, tail)
    same(mended)
    same(data)  # the header's length may disagree: the schema reads what it says


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=120))
def test_random_payloads(ptype, payload):
    same(_descriptor(ptype, payload))


def test_a_bound_is_left_to_the_schema():
    many = b"\xc3" + b"\x01A\x40" * ggep.MAX_EXTENSIONS + b"\x81A\x40"
    data = _descriptor(0x00, many)
    assert fast_descriptor(data) is None and check_descriptor(data) is False
    assert checked_summary(data) is None
    with pytest.raises(ParseError):
        DescriptorLenient.parse(data)


def test_every_payload_has_a_reader_and_other_kinds_are_refused():
    assert set(BODY_READERS) == set(PAYLOADS)
    with pytest.raises(TypeError):
        body_reader(construct.Select(construct.Int8ul, construct.Pass))
    with pytest.raises(TypeError):
        body_reader(construct.Struct(construct.Padding(2)))


# -- GGEP: blocks and extension values ------------------------------------------------------

BLOCKS = [bytes.fromhex("c30256434547544b47830255504302ff318244554101"),
          bytes.fromhex("c30547544b475650010102030065e3bd800000000005000382424840"),
          b"urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB\x1c\xc3\x82DU\x41\x01",
          b"\xc3\x60DU\x81\x41" + b"x" * 65, b"\xc3\xc2DU\x43\x02\x01\x01", b"<xml/>\x00text"]

#: Hypothesis arguments of :func:`mutated_block`: a real extension block, bytes to overwrite
#: (position modulo its length, value), where to cut it and the bytes appended.
BLOCK_MUTATIONS = (st.sampled_from(BLOCKS),
                   st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=4),
                   st.integers(0, 100), st.binary(max_size=6))


def mutated_block(seed: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes) -> bytes:
    """A real extension block with bytes overwritten, cut at ``cut`` and ``tail`` appended."""
    data = bytearray(seed)
    for at, value in flips:
        data[at % len(data)] = value
    return bytes(data[:cut]) + tail


def same_block(data: bytes) -> None:
    """The fast path, its check walk, the check (the regular expression first) and the
    regular expressions alone say what the schema says (the expressions: never yes where it
    says no; the one of blocks a 0x00 ends only on blocks without one)."""
    fast = ggep._fast_extension_block(data)
    checked = ggep._fast_extension_block(data, check=True)
    assert (fast is None) == (checked is None)
    assert ggep.check_extension_block(data) == (fast is not None)
    assert ggep.check_extension_block(b"\x1c" + data + b"\x00", 1, len(data) + 1) == \
        (fast is not None)  # (a block inside other bytes: read where it is)
    if fast is None:
        assert ggep._CHECKED_BLOCK(data) is None
        assert ggep._CHECKED_TERMINATED_BLOCK(data) is None
    if 0 in data:
        assert ggep._CHECKED_TERMINATED_BLOCK(data) is None
    with schema_only():
        try:
            expected = ggep.ExtensionBlock.parse(data)
        except ParseError:
            assert fast is None
            return
    if fast is None:  # the only way to give way on bytes the schema reads: none
        pytest.fail(f"fast path refused {data.hex()}")
    assert fast == expected and len(checked) == len(expected)
    assert json.dumps(json_fields({"x": fast})) == json.dumps(json_fields({"x": expected}))
    assert ggep.ExtensionBlock.build(fast) == data  # what private areas rely on


def test_the_regular_expressions_read_the_usual_blocks():
    """The blocks without COBS, deflate or a length of more than one chunk take the regular
    expression (the check's fast way), as do the committed captures' pongs and results."""
    plain = [b for b in BLOCKS if b[1] not in (0x60, 0xC2)]
    assert all(ggep._CHECKED_BLOCK(b) for b in plain)
    assert all(ggep._CHECKED_TERMINATED_BLOCK(b) for b in plain if 0 not in b)
    assert not ggep._CHECKED_BLOCK(BLOCKS[3]) and not ggep._CHECKED_BLOCK(BLOCKS[4])
    pongs = [d[37:] for d in REAL if d[16] == 0x01]
    matched = [p for p in pongs if ggep._CHECKED_BLOCK(p)]
    assert len(matched) > 0.8 * len(pongs)
    for block in pongs:
        same_block(block)


@settings(max_examples=400, deadline=None)
@given(*BLOCK_MUTATIONS)
def test_mutated_extension_blocks(seed, flips, cut, tail):
    same_block(mutated_block(seed, flips, cut, tail))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_extension_blocks(data):
    same_block(b"\xc3" + data)
    same_block(data)


@pytest.mark.parametrize("ext_id", sorted(ggep.EXTENSIONS))
@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=24))
def test_extension_values(ext_id, payload):
    with schema_only():
        expected = ggep._value(ext_id, payload)
    assert ggep._value(ext_id, payload) == expected


def test_vendor_bodies_with_a_reader_agree():
    for (vendor, selector), versions in BODIES.items():
        for version in versions:
            head = vendor.encode("latin-1") + selector.to_bytes(2, "little") + \
                version.to_bytes(2, "little")
            for body in (b"", b"\x01", b"\x01\x02", bytes(range(6)), bytes(range(22))):
                same(_descriptor(0x31, head + body))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=4, max_size=4))
def test_ipv4_text(raw):
    assert IPv4.parse(raw) == str(ipaddress.IPv4Address(raw))


def test_real_capture_files_exist():
    for name in GNUTELLA_CAPTURES:
        assert (CAPTURES / name).exists()
