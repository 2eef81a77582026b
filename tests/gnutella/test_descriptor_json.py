"""Descriptors parsed straight into their record's JSON fields
(p2pkit.gnutella.descriptor_json, the extension blocks of p2pkit.gnutella.ggep asked for
JSON) against the Container path they replace (the fast path, else the lenient schema, then
``json_fields``), on every descriptor of the committed Gnutella captures and on random and
mutated descriptors and extension blocks."""

from __future__ import annotations

import json

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.record import json_fields, json_value
from p2pkit.capture.render import render_jsonl, render_tree
from p2pkit.gnutella import ggep
from p2pkit.gnutella.deferred import _decode_value, checked_summary, deferrable, deferred_record
from p2pkit.gnutella.descriptor_fast_path import fast_descriptor
from p2pkit.gnutella.descriptor_json import (
    _INLINE_DECODES,
    EXTENSION_JSON,
    JSON_READERS,
    json_descriptor,
    json_items,
    json_reader,
)
from p2pkit.gnutella.descriptors import (
    PAYLOADS,
    DescriptorLenient,
    _Vendor,
    counted_vector_parser,
)
from p2pkit.gnutella.fields import IPv4, VendorCode
from p2pkit.schema import FixedLayout
from tests.gnutella.test_descriptor_fast_path import (
    BLOCK_MUTATIONS,
    BLOCKS,
    MUTATIONS,
    REAL,
    _descriptor,
    mutated,
    mutated_block,
)


def same(data: bytes) -> None:
    """The JSON fields are the Container path's, byte for byte once dumped (the same keys in
    the same order, the same types), given exactly where the fast path gives its Container;
    the record made from them equals the one decoded through the Container (value included,
    made when read)."""
    fields = json_descriptor(data)
    fast = fast_descriptor(data)
    assert (fields is None) == (fast is None)
    if fast is None:
        return
    expected = json_fields(fast)
    expected["guid"] = fast.guid.hex()
    assert json.dumps(fields) == json.dumps(expected)
    assert fields == expected
    record = _record(data)
    old_fields, old_value, old_deviations = _decode_value(data, 7)
    assert json.dumps(record.fields) == json.dumps(old_fields)
    assert record.deviations == old_deviations == []
    assert render_tree(record).count("\n") > 0 and render_jsonl(record) == render_jsonl(
        _record(data))
    assert record.value == old_value == DescriptorLenient.parse(data)
    assert list(record.value) == list(old_value)


def _record(data: bytes):
    """The record the dissector makes of a descriptor the fast path parses."""
    checked = None if deferrable(data) else checked_summary(data)
    return deferred_record(data, transport="tcp", src="a:1", dst="b:2", offset=7, frame=3,
                           time=1.0, base=7, checked=checked)


def test_every_real_descriptor():
    taken = [d for d in REAL if json_descriptor(d) is not None]
    assert len(taken) > 1000
    assert {d[16] for d in taken} >= {0x00, 0x01, 0x02, 0x30, 0x31, 0x40, 0x80, 0x81}
    for data in REAL:
        same(data)


@settings(max_examples=400, deadline=None)
@given(*MUTATIONS)
def test_mutated_real_descriptors(real, flips, cut, tail):
    mended, data = mutated(real, flips, cut, tail)
    same(mended)
    same(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PAYLOADS) + [0x7F]), st.binary(max_size=120))
def test_random_payloads(ptype, payload):
    same(_descriptor(ptype, payload))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0x00, 0x01, 0x40, 0x80]), st.sampled_from(BLOCKS),
       st.binary(max_size=10))
def test_extension_blocks_in_descriptors(ptype, block, head):
    same(_descriptor(ptype, head + block))


def same_block(data: bytes) -> None:
    parts = ggep._fast_extension_block(data, json=EXTENSION_JSON)
    fast = ggep._fast_extension_block(data)
    assert (parts is None) == (fast is None)
    if fast is not None:
        assert json.dumps(parts) == json.dumps(json_value(fast))


@settings(max_examples=300, deadline=None)
@given(*BLOCK_MUTATIONS)
def test_mutated_extension_blocks(seed, flips, cut, tail):
    same_block(mutated_block(seed, flips, cut, tail))


def test_extension_blocks_with_every_kind_of_value():
    latin = "É".encode("latin-1")
    for data in BLOCKS:
        same_block(data)
    # a non-ASCII ID, non-UTF-8 legacy text, a value longer than JSON writes inline
    for data in [b"\xc3\x81" + latin + b"\x41\x01", b"caf\xc3\xa9\xff\x1c",
                 b"\xc3\x81H" + bytes([0x80 | 1, 0x40 | 16]) + b"\x01" + bytes(79)]:
        same_block(data)
        assert ggep._fast_extension_block(data, json=EXTENSION_JSON) is not None


def test_every_payload_has_a_reader_and_other_kinds_are_refused():
    assert set(JSON_READERS) == set(PAYLOADS)
    with pytest.raises(TypeError):
        json_reader(construct.Select(construct.Int8ul, construct.Pass))
    with pytest.raises(TypeError):
        json_reader(construct.Struct(construct.Padding(2)))


@pytest.mark.parametrize("ext_id", sorted(EXTENSION_JSON.values))
@settings(max_examples=80, deadline=None)
@given(payload=st.binary(max_size=12))
def test_extension_values_as_json(ext_id, payload):
    made = EXTENSION_JSON.values[ext_id](payload)
    expected = json_value(ggep._value(ext_id, payload))
    assert made is None or json.dumps(made) == json.dumps(expected)
    assert (made is None) == (len(payload) < FixedLayout(ggep.EXTENSIONS[ext_id]).size)


VECTORS = sorted(_Vendor.vectors.items())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), st.integers(0, 5), st.binary(max_size=40))
def test_vendor_vectors_as_json(vector, count, items):
    name, (schema, _) = vector
    for data in (count.to_bytes(2, "little") + items, items):
        made = counted_vector_parser(schema, json_items)(data)
        expected = counted_vector_parser(schema)(data)
        assert (made is None) == (expected is None)
        if made is not None:
            assert json.dumps(made) == json.dumps(json_value(expected))


@pytest.mark.parametrize("kind", sorted(_INLINE_DECODES, key=repr))
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(min_size=4, max_size=4))
def test_inline_decodes_are_the_adapters(kind, raw):
    adapter_type, code = kind
    adapter = next(a for a in (IPv4, VendorCode) if type(a) is adapter_type)
    assert code == f"{len(raw)}s"
    inline = eval(_INLINE_DECODES[kind].format("raw"))  # noqa: S307 - the module's own source
    assert inline == adapter._decode(raw, None, "") and type(inline) is str
