"""The declared protobuf messages, byte for byte against the ``protobuf`` package running the
``.proto`` text of the specs (compiled at test time, :mod:`tests.ipfs.spec_protos`)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.bitswap_messages import BitswapMessage, BitswapMessageFrame
from p2pkit.ipfs.dag_pb import PBLink, PBNode, decode_node
from p2pkit.ipfs.envelope import EnvelopeMessage
from p2pkit.ipfs.identify_messages import IdentifyFrame, IdentifyMessage
from p2pkit.ipfs.kad_dht_messages import KadMessage, KadMessageFrame, KadRecord
from p2pkit.ipfs.keys import PrivateKeyMessage, PublicKeyMessage
from p2pkit.ipfs.noise_payload import NoiseHandshakePayload
from p2pkit.ipfs.protobuf import SCALARS, Field, Message
from p2pkit.ipfs.unixfs import UnixfsData
from tests.ipfs.spec_protos import classes

#: p2pkit's declaration -> the reference message name (file stem . message path).
PAIRS = [
    (PublicKeyMessage, "crypto.PublicKey"),
    (PrivateKeyMessage, "crypto.PrivateKey"),
    (EnvelopeMessage, "envelope.Envelope"),
    (NoiseHandshakePayload, "noise.NoiseHandshakePayload"),
    (IdentifyMessage, "identify.Identify"),
    (KadMessage, "kad.Message"),
    (KadRecord, "kad.Record"),
    (BitswapMessage, "bitswap.Message"),
    (PBLink, "dagpb.PBLink"),
    (UnixfsData, "unixfs.Data"),
]

_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
           "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1), "sint32": (-(2**31), 2**31 - 1),
           "sint64": (-(2**63), 2**63 - 1), "fixed32": (0, 2**32 - 1),
           "fixed64": (0, 2**64 - 1), "sfixed32": (-(2**31), 2**31 - 1),
           "sfixed64": (-(2**63), 2**63 - 1)}


def _scalar(f: Field):
    if f.enum is not None:
        return st.sampled_from([m.name for m in f.enum])
    if f.type == "bytes":
        return st.binary(max_size=min(f.max_length or 40, 40))
    if f.type == "string":
        return st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    if f.type == "bool":
        return st.booleans()
    return st.integers(*_RANGES[f.type])


def values(msg: Message, depth: int = 0):
    """Values for ``msg``'s declared fields (absent, present, repeated)."""
    parts = {}
    for f in msg.fields:
        one = values(f.type, depth + 1) if isinstance(f.type, Message) else _scalar(f)
        if f.repeated:
            parts[f.name] = st.lists(one, max_size=3 if depth < 2 else 0)
        elif f.required:
            parts[f.name] = one
        else:
            parts[f.name] = st.none() | one
    return st.fixed_dictionaries(parts)


def to_reference(msg: Message, obj: dict, ref):
    """Set ``obj`` (p2pkit's form) on ``ref``, a message of the protobuf package."""
    for f in msg.fields:
        value = obj.get(f.name)
        if value is None:
            continue
        items = value if f.repeated else [value]
        for item in items:
            if isinstance(f.type, Message):
                target = getattr(ref, f.name).add() if f.repeated else getattr(ref, f.name)
                to_reference(f.type, item, target)
                if not f.repeated:
                    target.SetInParent()
                continue
            if f.enum is not None:
                item = int(f.enum[item])
            if f.repeated:
                getattr(ref, f.name).append(item)
            else:
                setattr(ref, f.name, item)
    return ref


@pytest.mark.parametrize("msg,ref_name", PAIRS, ids=[p[1] for p in PAIRS])
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_byte_for_byte_with_the_protobuf_package(msg, ref_name, data):
    obj = data.draw(values(msg))
    ref = to_reference(msg, obj, classes()[ref_name]())
    expected = ref.SerializeToString()
    assert msg.build(obj) == expected
    parsed = msg.parse(expected)
    assert msg.build(parsed) == expected
    assert classes()[ref_name].FromString(msg.build(parsed)) == ref


def test_unknown_fields_are_kept_in_order():
    ref = classes()["kad.Record"](key=b"k", value=b"v")
    data = ref.SerializeToString() + bytes.fromhex("f80701") + bytes.fromhex("a206026869")
    parsed = KadRecord.parse(data)
    assert [(u.number, u.wire_type) for u in parsed._unknown] == [(127, 0), (100, 2)]
    assert classes()["kad.Record"].FromString(data).SerializeToString() == data
    assert KadRecord.build(parsed) == data


def test_packed_and_unpacked_repeated_both_read():
    blocksizes = Field(4, "blocksizes", "uint64", repeated=True, packed=True)
    packed = Message("Packed", blocksizes)
    data = packed.build({"blocksizes": [1, 300]})
    assert data.hex() == "2203" "01ac02"
    assert UnixfsData.parse(data).blocksizes == [1, 300]  # declared unpacked: still read
    assert UnixfsData.build({"blocksizes": [1, 300]}).hex() == "2001" "20ac02"


@pytest.mark.parametrize("data,path,offset", [
    (bytes.fromhex("0802"), "PublicKey -> Data", 2),          # required field missing
    (bytes.fromhex("0801128001"), "PublicKey -> Data", 3),    # length past the end
    (bytes.fromhex("1b"), "PublicKey -> #3", 0),              # group wire type 3
    (bytes.fromhex("1001"), "PublicKey -> Data", 0),          # varint where bytes expected
    (bytes.fromhex("08ffffffffffffffffffff01"), "PublicKey -> Type", 1),  # varint > 64 bits
])
def test_errors_name_field_and_offset(data, path, offset):
    with pytest.raises(ParseError) as e:
        PublicKeyMessage.parse(data)
    assert (e.value.protocol, e.value.path, e.value.offset) == ("libp2p-key", path, offset)


def test_nested_offsets_are_absolute():
    bad = KadMessage.build({"record": {"key": b"k"}})[:-1] + b"\x12\x05\xff"
    data = bytes.fromhex("0801") + bytes([0x1A, len(bad) - 0]) + bad
    with pytest.raises(ParseError) as e:
        KadMessage.parse(data)
    assert e.value.path.startswith("Message -> record")


def test_lengths_bounded_before_reading():
    with pytest.raises(LimitExceeded) as e:
        PublicKeyMessage.parse(bytes.fromhex("0801") + bytes.fromhex("12") + b"\xff\xff\x03")
    assert e.value.offset == 3
    with pytest.raises(LimitExceeded):
        IdentifyFrame.parse(b"\xff\xff\xff\x7f")


def test_build_errors():
    with pytest.raises(BuildError) as e:
        PublicKeyMessage.build({"Type": "Ed25519"})
    assert e.value.path == "PublicKey -> Data"
    with pytest.raises(BuildError):
        PublicKeyMessage.build({"Type": "Nope", "Data": b""})
    with pytest.raises(BuildError):
        KadRecord.build({"nosuch": 1})
    with pytest.raises(BuildError):
        UnixfsData.build({"mode": 2**32})


def test_dag_pb_writes_links_first_and_is_strict():
    node = {"Data": b"\x08\x01", "Links": [{"Hash": b"\x01\x55", "Name": "a", "Tsize": 3}]}
    data = PBNode.build(node)
    assert data[0] == 0x12  # field 2 (Links) before field 1 (Data), §Canonical Form
    ref = classes()["dagpb.PBNode"].FromString(data)
    assert ref.Data == b"\x08\x01" and ref.Links[0].Name == "a"
    with pytest.raises(ParseError):
        decode_node(data + bytes.fromhex("1801"))


@pytest.mark.parametrize("msg", [m for m, _ in PAIRS] + [PBNode])
@given(data=st.binary(max_size=60))
def test_random_bytes_raise_only_parse_error(msg, data):
    try:
        parsed = msg.parse(data)
    except ParseError:
        return
    msg.build(parsed)  # whatever parses can be written back


def test_scalar_table_is_complete():
    assert set(_RANGES) | {"bool", "enum", "bytes", "string", "float", "double"} == set(SCALARS)


@pytest.mark.parametrize("frame", [IdentifyFrame, KadMessageFrame, BitswapMessageFrame])
@given(data=st.binary(max_size=40))
def test_delimited_frames_raise_only_parse_error(frame, data):
    try:
        frame.parse(data)
    except ParseError:
        pass
