"""Random and truncated bytes: a record that says why, or a p2pkit error, never a traceback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.packets import Packet
from p2pkit.errors import P2PKitError
from p2pkit.kad2.dissect import KadDecoder
from p2pkit.kad2.messages import KadPacket, KadPacketLenient
from p2pkit.kad2.obfuscation import deobfuscate
from p2pkit.kad2.tags import TagList
from tests.pcap_payloads import udp_datagrams

REAL = [p for _, _, p in udp_datagrams("kad2-amule.pcap")]


def _packet(payload: bytes) -> Packet:
    return Packet(frame=1, time=0.0, transport="udp", src_ip="127.0.0.1", src_port=4672,
                  dst_ip="127.0.0.2", dst_port=4672, payload=payload)


@given(st.binary(max_size=600))
def test_random_bytes_raise_only_p2pkit_errors(data):
    for schema in (KadPacket, KadPacketLenient):
        try:
            schema.parse(data)
        except P2PKitError:
            pass
    try:
        TagList.parse(data)
    except P2PKitError:
        pass


@given(st.sampled_from(REAL), st.data())
def test_truncated_real_packets_give_an_undecoded_record_with_a_reason(payload, data):
    cut = data.draw(st.integers(min_value=2, max_value=max(2, len(payload) - 1)))
    records = KadDecoder().datagram(_packet(payload[:cut]))
    if records is None:  # an obfuscated packet cut too short to be recognised
        return
    [record] = records
    if record.message == "undecoded":
        assert record.fields["reason"] in ("truncated", "malformed", "encrypted")


@given(st.binary(max_size=300), st.binary(min_size=16, max_size=16))
def test_deobfuscating_random_bytes_gives_none_or_a_p2pkit_error(data, receiver_id):
    try:
        deobfuscate(data, receiver_id)
    except P2PKitError:
        pass


@settings(max_examples=300)
@given(st.sampled_from([b"\xe4", b"\xe5"]), st.binary(max_size=400))
def test_random_bodies_behind_a_kad_header(head, body):
    records = KadDecoder().datagram(_packet(head + body), forced=True)
    assert records is not None and len(records) == 1
    if records[0].message == "undecoded":
        assert records[0].fields["reason"] in ("truncated", "malformed")


_NAMES = st.one_of(st.sampled_from(["TAG_FILENAME", "TAG_FILESIZE", "TAG_SOURCEUPORT"]),
                   st.text(alphabet="abcdefghijklmnop", min_size=2, max_size=8))
_TAGS = st.one_of(
    st.builds(lambda n, v: {"type": "string", "name": n, "value": v}, _NAMES, st.text(max_size=40)),
    st.builds(lambda n, v: {"type": "uint8", "name": n, "value": v}, _NAMES,
              st.integers(0, 255)),
    st.builds(lambda n, v: {"type": "uint64", "name": n, "value": v}, _NAMES,
              st.integers(0, 2**64 - 1)),
    st.builds(lambda n, v: {"type": "hash16", "name": n, "value": v}, _NAMES,
              st.binary(min_size=16, max_size=16)),
    st.builds(lambda n, v: {"type": "bsob", "name": n, "value": v}, _NAMES,
              st.binary(max_size=255)),
)
_IDS = st.binary(min_size=16, max_size=16)


@given(st.sampled_from(["kad", "kad_packed"]), _IDS, _IDS,
       st.lists(st.tuples(_IDS, st.lists(_TAGS, max_size=5)), max_size=6))
def test_search_results_round_trip(protocol, sender, target, results):
    message = {"opcode": "search_res", "sender": sender, "target": target,
               "results": [{"id": i, "tags": tags} for i, tags in results]}
    data = KadPacket.build({"protocol": protocol, "message": message})
    again = KadPacket.parse(data)
    assert KadPacket.build(again) == data
    assert [r.id for r in again.message.results] == [i for i, _ in results]
    assert [[t.value for t in r.tags] for r in again.message.results] == \
        [[t["value"] for t in tags] for _, tags in results]


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=300).map(lambda b: b"\xe4" + b),
                 st.binary(max_size=300).map(lambda b: b"\xe5" + b),
                 st.binary(min_size=21, max_size=21).map(lambda b: b"\x00" + b[1:] + b"\x92")))
def test_the_whole_datagram_dissector_never_raises_on_random_datagrams(payload):
    from p2pkit.capture.datagrams import DatagramDissector

    dissector = DatagramDissector()
    records = [*dissector.datagram(_packet(payload)), *dissector.finish()]
    for record in records:
        if record.message == "undecoded":
            assert record.fields["reason"]
