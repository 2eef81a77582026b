"""The Gnutella fast paths derived from the schema objects (vendor message head, Messages
Supported and Features Supported vectors) against the construct schemas themselves."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.gnutella.descriptors import (
    VENDOR_MESSAGES,
    FeaturesSupported,
    MessagesSupported,
    Vendor,
    counted_vector_parser,
)

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
