"""The one reader builder (p2pkit.gnutella.payload_readers) and its check-only output: the
check (check_descriptor, the summary checks of fast_summary_check) against the Container path
(fast_descriptor, itself compared with the schema in test_descriptor_fast_path.py) on every
descriptor of every committed Gnutella capture, on query hits whose results carry mutated
extension blocks, and on random structs."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.gnutella.deferred import checked_summary, fast_summary_check
from p2pkit.gnutella.descriptor_fast_path import (
    CHECK,
    VALUE,
    check_descriptor,
    fast_descriptor,
    whole_descriptor,
)
from p2pkit.gnutella.descriptor_json import JSON, json_descriptor
from p2pkit.gnutella.descriptors import PAYLOADS
from p2pkit.gnutella.payload_readers import ANYTHING, build_reader, leaf_kind, unwrap
from tests.gnutella.test_descriptor_fast_path import (
    BLOCK_MUTATIONS,
    _descriptors,
    mutated_block,
    same,
)
from tests.pcap_payloads import CAPTURES

#: Every committed capture with Gnutella in it.
EVERY_GNUTELLA_CAPTURE = sorted(p.name for p in CAPTURES.iterdir()
                                if p.name.startswith(("gnutella-", "gtkg", "ndpi-gnutella")))


def agrees(data: bytes) -> None:
    """The check says what the Container path says; the summary check gives its values."""
    fast = fast_descriptor(data)
    assert check_descriptor(data) == (fast is not None)
    summary = fast_summary_check(PAYLOADS[data[16]][1]) if data[16] in PAYLOADS else None
    if summary is not None and whole_descriptor(data) is not None:
        check, shown, keys = summary
        values = check(data)
        assert (values is None) == (fast is None)
        if values is not None:
            assert values == tuple(fast[k] for k in shown)
            assert keys | set(shown) == set(fast) - {"guid", "type", "ttl", "hops"}
    checked = checked_summary(data)
    assert (checked is None) == (fast is None)


@pytest.mark.parametrize("name", EVERY_GNUTELLA_CAPTURE)
def test_every_descriptor_of_every_committed_capture(name):
    descriptors = _descriptors(name)
    assert descriptors
    for data in descriptors:
        agrees(data)


def test_the_captures_are_all_there():
    assert set(EVERY_GNUTELLA_CAPTURE) >= {
        "gtkg123-plain-up2-3leaves.pcap", "gnutella-02-p2pkit-servents.pcap",
        "gnutella-03-p2pkit-servents-all-features.pcap", "ndpi-gnutella.pcap"}


def _query_hit(blocks: list[bytes], trailer: bytes) -> bytes:
    payload = bytes([len(blocks)]) + bytes([0xCA, 0x18, 127, 0, 0, 1, 0, 0, 0, 0])
    for i, block in enumerate(blocks):
        payload += i.to_bytes(4, "little") + bytes(4) + b"file.txt\x00" + block + b"\x00"
    payload += trailer + bytes(range(16))
    return bytes(16) + bytes([0x81, 3, 1]) + len(payload).to_bytes(4, "little") + payload


@settings(max_examples=120, deadline=None)
@given(*BLOCK_MUTATIONS, st.sampled_from([b"", b"GTKG\x02\x1c\x00", b"BEAR\x04\x00\x01\x00\x00",
                                          b"LIME\x01"]))
def test_query_hits_with_mutated_result_blocks(seed, flips, cut, tail, trailer):
    block = mutated_block(seed, flips, cut, tail)
    for blocks in ([block], [seed, block], [block.replace(b"\x00", b"")]):
        data = _query_hit(blocks, trailer)
        agrees(data)
        same(data)  # (and the Container path says what the schema says)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["u8", "u16", "ip", "text", "bytes3"]), min_size=1,
                max_size=5), st.binary(max_size=24))
def test_random_structs_read_alike_in_every_output(kinds, data):
    """A Struct of random fields: the value, JSON and check readers accept the same bytes,
    and the check keeps the plain values the value reader reads."""
    from p2pkit.gnutella.fields import IPv4, Text

    fields = {"u8": construct.Int8ul, "u16": construct.Int16ul, "ip": IPv4,
              "text": construct.NullTerminated(Text), "bytes3": construct.Bytes(3)}
    con = construct.Struct(*(f"f{i}" / fields[kind] for i, kind in enumerate(kinds)))
    plain = tuple(f"f{i}" for i, kind in enumerate(kinds) if kind in ("u8", "u16"))
    results = []
    for leaves in (VALUE, JSON, CHECK):
        read = build_reader(con, leaves, keep=plain if leaves is CHECK else None)
        try:
            results.append(read(data, 0, None))
        except Exception:  # noqa: BLE001 - a refusal, whichever
            results.append(None)
    value, as_json, check = results
    assert (value is None) == (as_json is None) == (check is None)
    try:
        expected = con.parse(data)
    except construct.ConstructError:
        expected = None
    if value is not None:
        assert value[1] == check[1] == as_json[1]
        assert value[0] == {k: v for k, v in expected.items() if k != "_io"}
        assert check[0] == tuple(value[0][k] for k in plain)


def test_leaf_kinds_and_refusals():
    assert [leaf_kind(unwrap(sub)) for sub in PAYLOADS[0x81][1].subcons] == [
        None, "format", "adapter", "format", None, "trailer"]  # Rebuild, Array: structural
    assert leaf_kind(unwrap(PAYLOADS[0x31][1])) == "vendor"
    assert build_reader(construct.GreedyBytes, CHECK) is ANYTHING
    for leaves in (VALUE, JSON, CHECK):
        with pytest.raises(TypeError):
            build_reader(construct.Select(construct.Int8ul, construct.Pass), leaves)
    with pytest.raises(TypeError):  # a kept field must be a plain value of a run
        build_reader(PAYLOADS[0x01][1], CHECK, keep=("ip_address",))


def test_json_path_agrees_on_the_built_query_hits():
    data = _query_hit([b"urn:sha1:ABC\x1c\xc3\x82DU\x41\x01"], b"GTKG\x02\x1c\x00")
    assert json_descriptor(data) is not None and check_descriptor(data)
