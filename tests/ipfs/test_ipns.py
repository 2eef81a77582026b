"""IPNS records (specs.ipfs.tech/ipns/ipns-record): creation, every verification step,
selection, against the ``protobuf`` package for the ``IpnsEntry`` layout."""

import time

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs.cbor import CborMap
from p2pkit.ipfs.ipns import (
    SIGNATURE_PREFIX,
    IpnsEntry,
    create_record,
    format_eol,
    parse_eol,
    routing_key,
    select_best,
    validate_record,
)
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.peer_id import PeerId

ALICE = Ed25519Identity(bytes(range(32)))
NAME = PeerId.from_public_key(ALICE.public_key)
NOW = 1_800_000_000 * 10**9
HOUR = 3600 * 10**9


def _reference_entry():
    """``IpnsEntry`` from the IPNS spec's ``.proto`` (proto2 ``optional`` fields)."""
    f = descriptor_pb2.FileDescriptorProto(name="ipns_test.proto", package="ipns_test",
                                           syntax="proto2")
    m = f.message_type.add(name="IpnsEntry")
    e = m.enum_type.add(name="ValidityType")
    e.value.add(name="EOL", number=0)
    T = descriptor_pb2.FieldDescriptorProto
    for number, name, kind in [(1, "value", T.TYPE_BYTES), (2, "signatureV1", T.TYPE_BYTES),
                               (3, "validityType", T.TYPE_ENUM), (4, "validity", T.TYPE_BYTES),
                               (5, "sequence", T.TYPE_UINT64), (6, "ttl", T.TYPE_UINT64),
                               (7, "pubKey", T.TYPE_BYTES), (8, "signatureV2", T.TYPE_BYTES),
                               (9, "data", T.TYPE_BYTES)]:
        fd = m.field.add(name=name, number=number, type=kind, label=T.LABEL_OPTIONAL)
        if kind == T.TYPE_ENUM:
            fd.type_name = ".ipns_test.IpnsEntry.ValidityType"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("ipns_test.IpnsEntry"))


def test_record_layout_matches_the_protobuf_package_and_dag_cbor():
    raw = create_record(ALICE, b"/ipfs/bafkqaaa", 7, NOW + HOUR, ttl_ns=5 * 10**9)
    ref = _reference_entry()()
    ref.ParseFromString(raw)
    assert ref.SerializeToString() == raw
    assert ref.sequence == 7 and ref.value == b"/ipfs/bafkqaaa" and ref.ttl == 5 * 10**9
    # data: the five keys in DAG-CBOR order (length first, then bytes)
    assert list(CborMap.parse(ref.data)) == ["TTL", "Value", "Sequence", "Validity",
                                             "ValidityType"]
    assert ref.data.startswith(bytes.fromhex("a5" "63" "54544c" "1b000000012a05f200"))
    # the V2 signature is Ed25519 over the prefix and data
    assert ref.signatureV2 == ALICE.sign(SIGNATURE_PREFIX + ref.data)
    record = validate_record(NAME, raw, NOW)
    assert (record.value, record.sequence, record.eol_ns) == (b"/ipfs/bafkqaaa", 7, NOW + HOUR)
    assert routing_key(NAME) == b"/ipns/" + NAME.multihash


def test_v2_only_records_and_embedded_public_keys():
    raw = create_record(ALICE, b"/ipfs/x", 1, NOW + HOUR, v1_fields=False)
    assert IpnsEntry.parse(raw).value is None
    assert validate_record(NAME, raw, NOW).value == b"/ipfs/x"
    entry = dict(IpnsEntry.parse(raw))
    entry.pop("_unknown", None)
    entry["pubKey"] = ALICE.public_key
    assert validate_record(NAME, IpnsEntry.build(entry), NOW).sequence == 1


def _tamper(raw: bytes, **fields) -> bytes:
    entry = dict(IpnsEntry.parse(raw))
    entry.pop("_unknown", None)
    entry.update(fields)
    return IpnsEntry.build(entry)


GOOD = create_record(ALICE, b"/ipfs/good", 3, NOW + HOUR)
BOB = Ed25519Identity(bytes(32))


@pytest.mark.parametrize(("raw", "name", "reason"), [
    (GOOD, PeerId.from_public_key(BOB.public_key), "signatureV2 does not verify"),
    (_tamper(GOOD, signatureV2=b"\x00" * 64), NAME, "signatureV2 does not verify"),
    (_tamper(GOOD, value=b"/ipfs/evil"), NAME, "value differs"),
    (_tamper(GOOD, sequence=4), NAME, "sequence differs"),
    (_tamper(GOOD, data=None), NAME, "must be present"),
    (_tamper(GOOD, pubKey=BOB.public_key), NAME, "not the key of the name"),
    (create_record(ALICE, b"/ipfs/old", 3, NOW - 1), NAME, "EOL has passed"),
])
def test_verification_steps_refuse(raw, name, reason):
    with pytest.raises(ParseError, match=reason):
        validate_record(name, raw, NOW)


def test_size_limit_and_sha256_names_without_key():
    with pytest.raises(LimitExceeded):
        validate_record(NAME, GOOD + bytes(10 * 1024), NOW)
    hashed = PeerId(bytes.fromhex("1220") + bytes(32))  # a sha2-256 peer id: key not inlined
    with pytest.raises(ParseError, match="inline"):
        validate_record(hashed, GOOD, NOW)


def test_selection_sequence_then_eol_then_first():
    def rec(seq, eol):
        return validate_record(NAME, create_record(ALICE, b"/ipfs/v", seq, eol), NOW)
    assert select_best([rec(1, NOW + 5 * HOUR), rec(2, NOW + HOUR)]) == 1
    assert select_best([rec(2, NOW + HOUR), rec(2, NOW + 2 * HOUR)]) == 1
    assert select_best([rec(2, NOW + HOUR), rec(2, NOW + HOUR)]) == 0


def test_rfc3339_round_trip():
    text = b"2027-01-15T08:00:00Z"
    assert parse_eol(text) == 1800000000 * 10**9  # date -d 2027-01-15T08:00:00Z +%s
    value = parse_eol(text)
    assert parse_eol(format_eol(value)) == value
    assert parse_eol(b"2027-01-15T09:00:00+01:00") == value
    assert parse_eol(b"2027-01-15T08:00:00.5Z") == value + 5 * 10**8
    with pytest.raises(ParseError):
        parse_eol(b"2027-13-15T08:00:00Z")
    with pytest.raises(ParseError):
        parse_eol(b"tomorrow")


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_random_records_raise_only_parse_error(data):
    try:
        validate_record(NAME, data, NOW)
    except ParseError:
        pass
    else:  # pragma: no cover - random bytes never carry Alice's signature
        raise AssertionError("a random record verified")


def test_time_now_is_before_a_fresh_eol():
    raw = create_record(ALICE, b"/ipfs/now", 1, time.time_ns() + HOUR)
    assert validate_record(NAME, raw, time.time_ns()).value == b"/ipfs/now"
