"""The Gnutella fast paths derived from the schema objects (vendor message head, Messages
Supported and Features Supported vectors) against the construct schemas themselves."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import Dissection
from p2pkit.gnutella.descriptors import (
    PAYLOAD_TABLE,
    VENDOR_MESSAGES,
    DescriptorLenient,
    FeaturesSupported,
    MessagesSupported,
    Vendor,
    counted_vector_parser,
)
from p2pkit.gnutella.vendor import BODIES
from tests.pcap_payloads import CAPTURES

VECTORS = [(MessagesSupported, "messages", 8), (FeaturesSupported, "features", 6)]


@pytest.mark.parametrize(("schema", "key", "size"), VECTORS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_counted_vector_parser_equals_the_schema(schema, key, size, data):
    count = data.draw(st.integers(0, 6))
    body = data.draw(st.binary(min_size=count * size, max_size=count * size))
    payload = count.to_bytes(2, "little") + body
    if data.draw(st.booleans()):  # sometimes a count that does not match the bytes
        payload = data.draw(st.binary(max_size=3)) + payload[2:]
    fast = counted_vector_parser(schema)(payload)
    try:
        expected = schema.parse(payload)[key]
    except construct.ConstructError:
        assert fast is None
        return
    if fast is not None:  # None only when bytes are left over (the vector's own check)
        assert fast == expected
    else:
        assert len(payload) != 2 + len(expected) * size


def test_counted_vector_parser_refuses_other_shapes():
    with pytest.raises(TypeError):
        counted_vector_parser(construct.Struct("a" / construct.Int8ul, "b" / construct.Int8ul))


def generic_vendor(data: bytes) -> construct.Container:
    """The vendor message as the schema objects alone read it (no fast path)."""
    head = Vendor.head.parse(data[:8])
    out = construct.Container(vendor=head.vendor, selector=head.selector,
                              version=head.version, payload=data[8:])
    name = VENDOR_MESSAGES.get((head.vendor, head.selector))
    if name is not None:
        out.name = name
    if name in Vendor.vectors:
        schema, key = Vendor.vectors[name]
        parsed = schema.parse(data[8:])
        if len(schema.build(parsed)) != len(data) - 8:
            raise construct.ExplicitError(f"bytes after the {name} vector")
        out[key] = parsed[key]
    elif head.version in BODIES.get((head.vendor, head.selector), {}):
        out.body = BODIES[head.vendor, head.selector][head.version].parse(data[8:])
    return out


codes = st.sampled_from(sorted(VENDOR_MESSAGES)) | st.tuples(
    st.binary(min_size=4, max_size=4).map(lambda b: b.decode("latin-1")), st.integers(0, 99))


@settings(max_examples=300, deadline=None)
@given(codes, st.integers(0, 65535), st.binary(max_size=60))
def test_vendor_parse_equals_the_schema_objects(code, version, payload):
    (vendor, selector) = code
    data = (vendor.encode("latin-1") + selector.to_bytes(2, "little")
            + version.to_bytes(2, "little") + payload)
    try:
        expected = generic_vendor(data)
    except construct.ConstructError:
        with pytest.raises(construct.ConstructError):
            Vendor.parse(data)
        return
    got = Vendor.parse(data)
    assert {k: v for k, v in got.items() if k[:1] != "_"} == dict(expected)


def test_vendor_parse_of_a_real_messages_supported_vector():
    vector = MessagesSupported.build({"messages": [
        {"vendor": "BEAR", "selector": 7, "version": 1},
        {"vendor": "GTKG", "selector": 23, "version": 2}]})
    got = Vendor.parse(b"\0\0\0\0" + bytes(2) + bytes([1, 0]) + vector)
    assert got.name == "messages_supported"
    assert [(m.vendor, m.selector, m.version) for m in got.messages] == [
        ("BEAR", 7, 1), ("GTKG", 23, 2)]


# -- payload bodies: construct's compiled parser of each declaration vs the declaration ------

def _real_payloads() -> list[tuple[int, bytes]]:
    out = []
    for r in Dissection(CAPTURES / "gtkg123-plain-up2-3leaves.pcap"):
        if r.protocol == "gnutella" and r.value is not None and "guid" in r.value \
                and not r.deviations:
            raw = DescriptorLenient.build(r.value)
            out.append((raw[16], raw[23:]))
    return out


REAL = _real_payloads()


def same_body(type_id: int, payload: bytes) -> None:
    """The compiled body parses ``payload`` as the declaration does, and fails where it fails."""
    _, body = PAYLOAD_TABLE.messages[type_id]
    fast = PAYLOAD_TABLE._compiled_body(type_id, body)
    assert fast is not None
    try:
        expected = body.parse(payload)
    except Exception:  # noqa: BLE001
        with pytest.raises(Exception):  # noqa: B017,PT011 - any failure: the fallback reports
            fast.parse(payload)
        return
    got = fast.parse(payload)
    assert {k: v for k, v in got.items() if k[:1] != "_"} == \
        {k: v for k, v in expected.items() if k[:1] != "_"}


def test_compiled_bodies_agree_on_real_payloads():
    assert {PAYLOAD_TABLE.names[t] for t, _ in REAL} >= {"ping", "pong", "query", "query_hit",
                                                         "push", "bye", "vendor_message"}
    for type_id, payload in REAL:
        same_body(type_id, payload)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                       max_size=3), st.integers(0, 400))
def test_compiled_bodies_agree_on_mutated_payloads(real, flips, cut):
    type_id, payload = real
    data = bytearray(payload)
    for at, value in flips:
        if data:
            data[at % len(data)] = value
    same_body(type_id, bytes(data[:cut]) if cut < len(data) else bytes(data))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PAYLOAD_TABLE.messages)), st.binary(max_size=80))
def test_compiled_bodies_agree_on_random_bytes(type_id, payload):
    same_body(type_id, payload)
