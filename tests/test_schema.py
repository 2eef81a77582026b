"""The shared schema shapes: MessageTable (one type-id -> body switch for BitTorrent peer
messages, Gnutella descriptors and UDP tracker packets)."""

from __future__ import annotations

import construct
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.tracker import udp
from p2pkit.bittorrent.wire import messages
from p2pkit.errors import BuildError, ParseError
from p2pkit.gnutella import descriptors
from p2pkit.schema import FixedLayout, MessageTable, Schema

# fmt: off
TABLE = MessageTable({
    4: ("have", construct.Struct("index" / construct.Int32ub)),
    7: ("piece", construct.Struct("index" / construct.Int32ub, "piece" / construct.GreedyBytes)),
}, rule="test/unknown-id", spec="BEP 3 §peer messages")
STRICT = Schema(TABLE.switch(strict=True, empty="keep_alive"), protocol="test")
LENIENT = Schema(TABLE.switch(strict=False, empty="keep_alive"), protocol="test")
# fmt: on


def test_tables_of_the_three_protocols_derive_their_maps():
    assert messages.MESSAGE_IDS == {name: mid for mid, (name, _) in messages.MESSAGES.items()}
    assert messages.MESSAGE_TABLE.names[6] == "request" and messages.MESSAGE_IDS["hashes"] == 22
    assert descriptors.PAYLOAD_TYPES["query_hit"] == 0x81
    assert descriptors.PAYLOAD_TABLE.names[0x30] == "route_table_update"
    assert udp.REQUESTS.ids == {"connect": 0, "announce": 1, "scrape": 2}


def test_flat_parse_and_build():
    assert STRICT.parse(bytes.fromhex("0400000007")) == dict(type="have", index=7)
    assert STRICT.parse(b"") == dict(type="keep_alive")
    assert STRICT.build(dict(type="piece", index=1, piece=b"ab")) == bytes.fromhex("07000000016162")
    assert STRICT.build(dict(type="keep_alive")) == b""


def test_unknown_id_strict_and_lenient():
    with pytest.raises(ParseError) as e:
        STRICT.parse(b"\x63\x01\x02")
    assert (e.value.path, e.value.offset, e.value.reason) == ("type", 0, "unknown message id 99")
    unknown = LENIENT.parse(b"\x63\x01\x02")
    assert unknown == dict(type="unknown", id=99, payload=b"\x01\x02")
    [deviation] = unknown._deviations
    assert (deviation.rule, deviation.offset, deviation.spec, deviation.level) == (
        "test/unknown-id", 0, "BEP 3 §peer messages", "MAY")
    assert STRICT.build(unknown) == LENIENT.build(unknown) == b"\x63\x01\x02"


def test_errors_name_the_body():
    with pytest.raises(ParseError) as e:
        STRICT.parse(bytes.fromhex("040000000700"))
    assert (e.value.path, e.value.offset) == ("have", 5)
    with pytest.raises(ParseError) as e:
        STRICT.parse(bytes.fromhex("040000"))
    assert e.value.path == "have -> index"
    with pytest.raises(BuildError):
        STRICT.build(dict(type="nope"))
    with pytest.raises(TypeError):
        TABLE.switch(construct.Bytes(1), strict=True)


def test_peeked_type_field_udp_tracker():
    """BEP 15: the action follows the 8-byte connection id; the body carries it itself."""
    connect = bytes.fromhex("00000417271019800000000062876e5a")  # libtorrent 2.0.8
    assert udp.UdpTrackerRequest.parse(connect).action == "connect"
    lenient = Schema(udp.REQUESTS.switch(construct.Int32ub, strict=False, peek_at=8,
                                         label="message"), protocol="bt-tracker")
    odd = bytes(8) + bytes.fromhex("00000007 00000001")
    with pytest.raises(ParseError) as e:
        udp.UdpTrackerRequest.parse(odd)
    assert (e.value.path, e.value.offset) == ("action", 8)
    unknown = lenient.parse(odd)
    assert (unknown.action, unknown.id, unknown.payload) == ("unknown", 7, odd)
    assert unknown._deviations[0].rule == "bittorrent/udp-tracker/unknown-request-action"
    assert lenient.build(unknown) == odd and lenient.parse(connect) == udp.UdpTrackerRequest.parse(
        connect)


def test_gnutella_unknown_payload_is_framed_with_a_deviation():
    data = bytes(16) + bytes.fromhex("7f0100" "02000000" "abcd")
    for schema in (descriptors.Descriptor, descriptors.DescriptorLenient):
        d = schema.parse(data)
        assert (d.type, d.payload_type, d.payload) == ("unknown", 0x7F, b"\xab\xcd")
        assert [x.offset for x in d._deviations] == [16]
        assert list(d) == ["guid", "type", "ttl", "hops", "payload_type", "payload",
                           "_deviations"]
        assert schema.build(d) == data


def test_qrp_variant_is_a_table_too():
    reset = bytes(16) + bytes.fromhex("30" "01" "00" "06000000" "00" "00400000" "02")
    assert descriptors.Descriptor.parse(reset).variant == "reset"
    bad = bytes(16) + bytes.fromhex("30" "01" "00" "06000000" "05" "00400000" "02")
    with pytest.raises(ParseError) as e:
        descriptors.Descriptor.parse(bad)
    assert "unknown variant 5" in e.value.reason and e.value.offset == 23
    lenient = descriptors.DescriptorLenient.parse(bad)
    assert lenient.type == "route_table_update" and lenient.payload == bad[23:]
    assert [(d.rule, d.offset) for d in lenient._deviations] == [
        ("gnutella/route_table_update/payload", 23)]


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_random_bytes_raise_only_parse_error(data):
    for schema in (STRICT, LENIENT):
        try:
            obj = schema.parse(data)
        except ParseError:
            continue
        assert schema.build(obj) == data


_ITEM = construct.Struct("vendor" / descriptors.VendorCode, "selector" / construct.Int16ul,
                         "flag" / construct.Int8ul)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=7, max_size=7), max_size=20))
def test_many_unpacker_into_a_list_container_equals_the_unpacker_item_by_item(items):
    layout = FixedLayout(_ITEM)
    parsed = layout.many_unpacker(construct.ListContainer)(b"".join(items))
    assert type(parsed) is construct.ListContainer
    assert list(parsed) == [layout.unpacker()(item) for item in items]
    assert list(parsed) == [_ITEM.parse(item) for item in items]


# -- FixedLayout.many_unpacker: records parsed in one pass, as unpacker parses each ----------

def _layouts():
    from p2pkit.addresses import CompactPeer, CompactPeer6
    from p2pkit.dht.krpc import CompactNode

    with_const = construct.Struct("magic" / construct.Const(b"\x01"), "port" / construct.Int16ub)
    return [CompactPeer, CompactPeer6, CompactNode, with_const]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(range(4)), st.binary(max_size=120))
def test_many_unpacker_is_the_unpacker_record_by_record(which, data):
    from p2pkit.schema import FixedLayout

    layout = FixedLayout(_layouts()[which])
    one, many = layout.unpacker(), layout.many_unpacker()
    size = layout.size
    records = many(data)
    if len(data) % size:
        assert records is None
        return
    each = [one(data[i:i + size]) for i in range(0, len(data), size)]
    if None in each:  # a Const that differs: record by record
        assert records is None
    else:
        assert records == each
        assert [list(r) for r in records] == [list(r) for r in each]
