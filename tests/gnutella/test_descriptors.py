"""Descriptor schemas: spec vectors, the two real captures decoded completely, limits, fuzz."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.deviations import deviations_of
from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.gnutella.descriptors import (
    MAX_PAYLOAD_LENGTH,
    PAYLOAD_SPECS,
    PAYLOAD_TABLE,
    PAYLOADS,
    Descriptor,
    DescriptorLenient,
)
from p2pkit.gnutella.ggep import extension
from p2pkit.gnutella.handshake import Handshake, detect_greeting
from p2pkit.gnutella.stream import DescriptorFrame, HandshakeFrame, StreamReader
from p2pkit.gnutella.vendor import VENDOR_MESSAGES
from tests.pcap_payloads import tcp_streams

GTKG = "gtkg123-plain-up2-3leaves.pcap"
NDPI = "ndpi-gnutella.pcap"
GUID = bytes(range(16))


def common(schema, data, obj):
    """parse == obj, build == data, and parse_stream agrees."""
    assert schema.parse(data) == obj
    assert schema.parse_stream(io.BytesIO(data)) == obj
    assert schema.build(obj) == data


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_qrp_appendix_b_messages():
    """QRP Appendix B, Example 1: the RESET and PATCH messages, byte for byte."""
    reset = h("85 d9 76 4d bf 02 1d 9a ff 72 e7 21 c3 40 dd 00 30 01 00 06 00 00 00"
              "00 08 00 00 00 07")
    common(Descriptor, reset, dict(guid=reset[:16], type="route_table_update", ttl=1, hops=0,
                                   variant="reset", table_length=8, infinity=7))
    patch = h("a9 ab 9b 14 c1 1e 52 aa ff b4 b4 41 75 6d 29 00 30 01 00 0d 00 00 00"
              "01 01 01 00 08 00 00 fa 00 00 00 00 00")
    common(Descriptor, patch, dict(guid=patch[:16], type="route_table_update", ttl=1, hops=0,
                                   variant="patch", seq_no=1, seq_size=1, compressor=0,
                                   entry_bits=8, data=h("0000fa0000000000")))


def test_vendor_message_hops_flow():
    """vendor_msg §5: BEAR/4v1 Hops Flow, "the payload length for this 0x31 message is 9"."""
    data = GUID + h("31 01 00 09000000") + b"BEAR" + h("0400 0100 03")
    d = Descriptor.parse(data)
    assert (d.vendor, d.selector, d.version, d.payload, d.name) == ("BEAR", 4, 1, b"\x03",
                                                                    "hops_flow")
    assert Descriptor.build(d) == data


def test_bye_with_headers():
    """bye §2: code little-endian, then a NUL-terminated string (here with HTTP-like headers)."""
    message = "Servent shutdown\r\nServer: p2pkit\r\n\r\n"
    obj = dict(guid=GUID, type="bye", ttl=1, hops=0, code=200, message=message)
    data = Descriptor.build(obj)
    assert data[23:25] == b"\xc8\x00" and data.endswith(b"\r\n\r\n\x00")
    common(Descriptor, data, obj)


def test_query_with_huge_urn_and_ggep():
    """HUGE §3: "urn:sha1:" in the query's extension block, then a GGEP block."""
    urn = "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB"
    obj = dict(guid=GUID, type="query", ttl=3, hops=0,
               min_speed=dict(mark=True, ggep_h=True), search_criteria="",
               extensions=[dict(kind="urn", text=urn, separator=0x1C),
                           dict(kind="ggep", extensions=[extension("SCP")], separator=None)])
    data = Descriptor.build(obj)
    assert data[23:25] == b"\x88\x00"  # min_speed §: big-endian, bit 15 marks the new meaning
    d = Descriptor.parse(data)
    assert d.extensions[0].kind == "urn" and d.extensions[0].text == urn
    assert Descriptor.build(d) == data


def test_unknown_payload_type_is_framed():
    data = GUID + h("ee 02 01 03000000 616263") + GUID + h("00 01 00 00000000")
    stream = io.BytesIO(data)
    first = Descriptor.parse_stream(stream)
    assert (first.type, first.payload_type, first.payload) == ("unknown", 0xEE, b"abc")
    assert Descriptor.parse_stream(stream).type == "ping"
    assert Descriptor.build(first) == data[:26]


def test_payload_length_bound_checked_before_reading():
    header = GUID + h("80 07 00") + (MAX_PAYLOAD_LENGTH + 1).to_bytes(4, "little")
    with pytest.raises(LimitExceeded) as e:
        Descriptor.parse(header)  # no payload bytes at all: the header alone is refused
    assert e.value.offset == 19 and e.value.protocol == "gnutella"


def test_strict_and_lenient():
    bad_pong = GUID + h("01 01 00 03000000 ca1800")
    with pytest.raises(ParseError) as e:
        Descriptor.parse(bad_pong)
    assert "pong" in str(e.value)
    lenient = DescriptorLenient.parse(bad_pong)
    # the payload keeps its name and its bytes; the departure is a Deviation, not a marker
    assert (lenient.type, lenient.payload) == ("pong", h("ca1800"))
    assert set(lenient) == {"guid", "type", "ttl", "hops", "payload", "_deviations"}
    [deviation] = deviations_of(lenient)
    assert (deviation.rule, deviation.spec, deviation.level) == (
        "gnutella/pong/payload", "GGEP §Pong Message", "MUST")
    assert deviation.offset == 23 + 2  # the IP address the 1 byte left cannot hold
    assert "ip_address" in deviation.message
    assert DescriptorLenient.build(lenient) == bad_pong
    assert Descriptor.build(lenient) == bad_pong
    # a value that does not carry the deviation is built from its fields, as any other
    with pytest.raises(BuildError):
        Descriptor.build(dict(guid=GUID, type="pong", ttl=1, hops=0, payload=h("ca1800")))


@pytest.mark.parametrize(("payload_type", "payload", "offset", "spec"), [
    (0x00, "c300", 25, "GGEP §Ping Message"),
    (0x02, "01", 23, "bye §2"),
    (0x30, "0502", 23, 'QRP §"Gnutella Protocol Changes"'),
    (0x31, "010203", 23, "vendor_msg §2"),
    (0x40, "00" * 20, 23 + 20, "GGEP §Push Message"),
    (0x80, "0000616263", 28, "GGEP §Query Message"),
    (0x81, "010203", 26, "GGEP §Query Hit Result"),
    (0xCD, "0102030405", 23, "HSEP §Normal operation for ultrapeers"),
])
def test_every_unparsable_payload_is_a_deviation_and_builds_back(payload_type, payload, offset,
                                                                 spec):
    data = GUID + bytes([payload_type, 1, 0]) + len(h(payload)).to_bytes(4, "little") + h(payload)
    d = DescriptorLenient.parse(data)
    assert d.type == PAYLOAD_TABLE.names[payload_type] and d.payload == h(payload)
    [deviation] = deviations_of(d)
    assert (deviation.rule, deviation.offset, deviation.spec) == (
        f"gnutella/{d.type}/payload", offset, spec)
    assert DescriptorLenient.build(d) == data


def test_every_payload_names_its_spec():
    assert set(PAYLOAD_SPECS) == set(PAYLOAD_TABLE.ids)


def test_an_unknown_payload_type_is_a_deviation():
    data = GUID + h("ee 01 00 02000000 abcd")
    for schema in (Descriptor, DescriptorLenient):
        d = schema.parse(data)
        assert (d.type, d.payload_type, d.payload) == ("unknown", 0xEE, h("abcd"))
        assert [(x.rule, x.offset, x.level) for x in deviations_of(d)] == [
            ("gnutella/descriptor/unknown-payload-type", 16, "MAY")]
        assert schema.build(d) == data


def test_build_errors():
    with pytest.raises(BuildError):
        Descriptor.build(dict(guid=b"short", type="ping", ttl=1, hops=0, extensions=[]))
    with pytest.raises(BuildError):
        Descriptor.build(dict(guid=GUID, type="nope", ttl=1, hops=0))
    with pytest.raises(BuildError):
        Descriptor.build(dict(guid=GUID, type="ping", ttl=256, hops=0, extensions=[]))


# --- real captures ---------------------------------------------------------------------------


def decode_capture(name):
    """Every Gnutella stream of a capture through the reader; returns per-stream results."""
    results = {}
    for key, data in tcp_streams(name).items():
        if detect_greeting(data) is None:
            continue
        reader = StreamReader()
        frames = reader.feed(data)
        reader.close()  # raises if a stream stopped inside a frame
        results[key] = (reader, frames, data)
    return results


def check_complete(results):
    """No byte unaccounted for: frames tile each stream, and each frame re-builds exactly."""
    counts = Counter()
    for reader, frames, data in results.values():
        handshake_bytes = b"".join(f.data for f in frames if isinstance(f, HandshakeFrame))
        descriptor_bytes = b"".join(f.data for f in frames if isinstance(f, DescriptorFrame))
        for frame in frames:
            if isinstance(frame, HandshakeFrame):
                assert Handshake.build(frame.handshake) == frame.data
            else:
                assert Descriptor.build(frame.descriptor) == frame.data
                d = frame.descriptor
                assert d.type != "unknown" and not deviations_of(d)
                counts[d.type] += 1
                if d.type in ("vendor_message", "standard_vendor_message"):
                    counts[f"{d.vendor.strip(chr(0)) or 'null'}/{d.selector}"] += 1
        assert data.startswith(handshake_bytes)
        if reader.state == "descriptors" and not reader.compressed:
            assert handshake_bytes + descriptor_bytes == data
        elif reader.state == "descriptors":
            import zlib
            inflated = zlib.decompressobj().decompress(data[len(handshake_bytes):])
            assert inflated == descriptor_bytes
        elif reader.state in ("tls", "gnutella2"):
            assert len(handshake_bytes) + reader.opaque_bytes == len(data)
        else:
            assert handshake_bytes == data and reader.state in ("handshake", "rejected")
        counts["state:" + reader.state] += 1
    return counts


def test_gtkg123_capture_decodes_completely():
    """Five gtk-gnutella 1.2.3 servents (see shared/traces/README.md)."""
    results = decode_capture(GTKG)
    counts = check_complete(results)
    # The README: 2 ultrapeers + 3 leaves, four Gnutella connections, both directions.
    assert counts["state:descriptors"] == 8
    # "Ping/Pong with GGEP; QRP reset + patch; vendor messages (Messages-Supported,
    # Features-Supported, BEAR/7 connect-back, BEAR/12, LIME/21); HSEP (0xCD); [...] Push
    # routed to the firewalled leaf; Byes at shutdown."  Counts as decoded from this capture:
    assert {k: v for k, v in counts.items() if not k.startswith("state:")} == {
        "ping": 21, "pong": 36, "route_table_update": 13, "vendor_message": 29,
        "null/0": 8, "null/10": 8, "BEAR/7": 4, "BEAR/12": 5, "LIME/21": 4,
        "hsep": 23, "query": 9, "query_hit": 9, "push": 3, "bye": 4,
    }
    queries = Counter()
    for _reader, frames, _ in results.values():
        for f in frames:
            if isinstance(f, DescriptorFrame) and f.descriptor.type == "query":
                queries[f.descriptor.search_criteria] += 1
    # "queries `alpha`, `bravo charlie`, `kilo` [...] forwarded one hop over the ultrapeer link"
    assert set(queries) == {"alpha", "bravo charlie", "kilo"}


def test_gtkg123_push_and_firewalled_hits():
    """The Push reaches the firewalled leaf 127.0.0.13, whose hits carry the push flag."""
    results = decode_capture(GTKG)
    leaf = "127.0.0.13"
    to_leaf = [f.descriptor for (src, dst), (_, frames, _) in results.items() if dst[0] == leaf
               for f in frames if isinstance(f, DescriptorFrame) and f.descriptor.type == "push"]
    assert to_leaf
    leaf_guid = next(r.handshakes[0].headers["GUID"] for (src, _), (r, _, _) in results.items()
                     if src[0] == leaf)
    assert all(p.servent_id.hex() == leaf_guid for p in to_leaf)
    hits = [f.descriptor for (src, _), (_, frames, _) in results.items() if src[0] == leaf
            for f in frames if isinstance(f, DescriptorFrame) and f.descriptor.type == "query_hit"]
    assert hits and all(h.trailer.vendor_code == "GTKG" for h in hits)
    assert all(h.trailer.flags & 0x01 for h in hits)  # push flag
    assert all(h.trailer.servent_id.hex() == leaf_guid for h in hits)
    h_ext = [e for h in hits for r in h.results for p in r.extensions if p.kind == "ggep"
             for e in p.extensions if e.id == "H"]
    # GGEP "H": 0x01 SHA-1 (20 bytes) or 0x02 bitprint (SHA-1 + Tiger tree root, 44 bytes).
    assert h_ext and all({1: 20, 2: 44}[e.value.hash_type] == len(e.value.digest) for e in h_ext)


def test_ndpi_capture_decodes_completely():
    """gtk-gnutella on the public network: deflated links, 503/204 refusals, TLS, Gnutella2."""
    results = decode_capture(NDPI)
    counts = check_complete(results)
    assert counts["state:descriptors"] == 8
    assert sum(r.compressed for r, _, _ in results.values()) == 8  # every open link is deflated
    codes = Counter(r.handshakes[0].status_code for r, _, _ in results.values()
                    if r.handshakes[0].kind == "response")
    assert codes[503] == 28 and codes[204] == 2 and codes[200] == 15
    assert counts["state:tls"] == 12 and counts["state:gnutella2"] == 4
    assert counts["query_hit"] == 87 and counts["pong"] == 138 and counts["hsep"] == 99


def test_ndpi_streams_cut_anywhere_do_not_crash():
    """A stream cut at any point (a capture gap) ends in frames plus one ParseError at most."""
    data = next(d for d in tcp_streams(NDPI).values()
                if d.startswith(b"GNUTELLA/0.6 200") and len(d) > 20000)
    for cut in range(1, len(data), 997):
        reader = StreamReader()
        try:
            reader.feed(data[:cut])
            reader.close()
        except ParseError as e:
            assert e.protocol == "gnutella"


# --- hypothesis -------------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_characters="\x00\x1c", blacklist_categories=("Cs",)),
                max_size=20)
guids = st.binary(min_size=16, max_size=16)
bytes8 = st.integers(0, 255)
ipv4 = st.tuples(*[bytes8] * 4).map(lambda t: ".".join(map(str, t)))
ggep_ids = st.sampled_from(["DU", "VC", "H", "XX", "GTKGV", "IPP"])
extensions = st.lists(st.builds(lambda i, p, c, d: extension(i, p, cobs=c, deflate=d),
                                st.sampled_from(["XX", "GTKGV", "QQ"]), st.binary(max_size=30),
                                st.booleans(), st.booleans()), min_size=1, max_size=3)
blocks = st.lists(st.one_of(
    st.builds(lambda e: dict(kind="ggep", extensions=e, separator=None), extensions),
    st.builds(lambda t: dict(kind="urn", text="urn:sha1:" + t, separator=0x1C), texts),
), max_size=3)


@st.composite
def descriptors(draw):
    kind = draw(st.sampled_from(sorted(name for name, _ in PAYLOADS.values())))
    base = dict(guid=draw(guids), type=kind, ttl=draw(bytes8), hops=draw(bytes8))
    if kind == "ping":
        base.update(extensions=[b for b in draw(blocks) if b["kind"] == "ggep"][:1])
    elif kind == "pong":
        base.update(port=draw(st.integers(0, 65535)), ip_address=draw(ipv4),
                    files_shared=draw(st.integers(0, 2**32 - 1)),
                    kilobytes_shared=draw(st.integers(0, 2**32 - 1)), extensions=[])
    elif kind == "bye":
        base.update(code=draw(st.integers(0, 65535)), message=draw(texts))
    elif kind == "push":
        base.update(servent_id=draw(guids), file_index=draw(st.integers(0, 2**32 - 1)),
                    ip_address=draw(ipv4), port=draw(st.integers(0, 65535)), extensions=[])
    elif kind == "query":
        base.update(min_speed=draw(st.integers(0, 65535)), search_criteria=draw(texts),
                    extensions=draw(blocks))
    elif kind == "query_hit":
        results = draw(st.lists(st.builds(
            lambda i, s, n: dict(file_index=i, file_size=s, file_name=n, extensions=[]),
            st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), texts), max_size=3))
        base.update(port=1, ip_address=draw(ipv4), speed=draw(st.integers(0, 2**32 - 1)),
                    results=results, trailer=dict(vendor_code="GTKG", open_data=b"\x01\x21",
                                                  private_data=b"", servent_id=draw(guids)))
    elif kind == "route_table_update":
        base.update(variant="patch", seq_no=1, seq_size=1, compressor=1, entry_bits=4,
                    data=draw(st.binary(max_size=40)))
    elif kind in ("vendor_message", "standard_vendor_message"):
        # selectors without a declared body: a raw payload under a known message's selector
        # (GTKG/7v1 with no port, say) is not that message; those are tested on real bytes
        selector = draw(st.integers(0, 65535).filter(
            lambda s: ("GTKG", s) not in VENDOR_MESSAGES))
        base.update(vendor="GTKG", selector=selector, version=1,
                    payload=draw(st.binary(max_size=20)))
    elif kind == "hsep":
        base.update(triples=[dict(nodes=1, files=2, kibibytes=3)] * draw(st.integers(0, 3)))
    return base


@settings(max_examples=150, deadline=None)
@given(descriptors())
def test_round_trip(obj):
    data = Descriptor.build(obj)
    parsed = Descriptor.parse(data)
    assert parsed.type == obj["type"] and parsed.guid == obj["guid"]
    assert Descriptor.build(parsed) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_parse_error(data):
    for schema in (Descriptor, DescriptorLenient):
        try:
            schema.parse(data)
        except ParseError:
            pass


@settings(max_examples=200, deadline=None)
@given(descriptors(), st.data())
def test_mutated_bytes_raise_only_parse_error(obj, data):
    raw = bytearray(Descriptor.build(obj))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(bytes8)
    try:
        parsed = Descriptor.parse(bytes(raw))
    except ParseError:
        return
    assert bytes(raw).startswith(Descriptor.build(parsed))  # a shorter length leaves a tail


def _real_descriptors(limit=400):
    out = []
    for _reader, frames, _data in decode_capture("gtkg123-plain-up2-3leaves.pcap").values():
        out += [f.data for f in frames if isinstance(f, DescriptorFrame) and len(f.data) < 600]
    return out[:limit]


REAL_DESCRIPTORS = _real_descriptors()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REAL_DESCRIPTORS), st.data())
def test_mutated_real_descriptors_lenient_raise_only_parse_error_and_build_back(real, data):
    """Lenient parsing of a real descriptor with some payload bytes changed (its length kept,
    so it stays framed): a value (with deviations) that builds back to the same bytes, or a
    ParseError, nothing else."""
    raw = bytearray(real)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(16, len(raw) - 1))] = data.draw(bytes8)
    raw = bytes(raw)
    try:
        parsed = DescriptorLenient.parse(raw)
    except ParseError:
        return
    for d in deviations_of(parsed):
        assert d.rule.startswith("gnutella/") and d.spec and 0 <= d.offset <= len(raw)
    built = DescriptorLenient.build(parsed)
    assert raw.startswith(built)  # a smaller length field leaves a tail
    assert parsed.type != "malformed" and "error" not in parsed
