"""Random and truncated bytes: a record that says why, or a p2pkit error, never a traceback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from p2pkit.capture.packets import Packet
from p2pkit.errors import P2PKitError
from p2pkit.rpcudp.dissect import RpcudpDecoder
from p2pkit.rpcudp.envelope import RpcudpDatagram
from tests.pcap_payloads import udp_datagrams

REAL = [p for _, _, p in udp_datagrams("kademlia-py-rpcudp.pcap")]


def _pkt(payload: bytes) -> Packet:
    return Packet(frame=1, time=0.0, transport="udp", src_ip="127.0.0.1", src_port=1,
                  dst_ip="127.0.0.2", dst_port=2, payload=payload)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_p2pkit_errors(data):
    try:
        RpcudpDatagram.parse(data)
    except P2PKitError:
        pass
    records = RpcudpDecoder().datagram(_pkt(data), forced=True)
    if records:
        [record] = records
        if record.message == "undecoded":
            assert record.fields["reason"] in ("truncated", "malformed")


@given(st.sampled_from(REAL), st.data())
def test_truncated_real_datagrams(payload, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    records = RpcudpDecoder().datagram(_pkt(payload[:cut]), forced=True)
    if records:
        assert records[0].message in ("undecoded", "request", "response")


_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
              st.text(max_size=20), st.binary(max_size=30)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20)


@given(st.sampled_from(["request", "response"]), st.binary(min_size=20, max_size=20), _VALUES)
def test_envelopes_round_trip(kind, message_id, body):
    data = RpcudpDatagram.build({"kind": kind, "message_id": message_id, "body": body})
    again = RpcudpDatagram.parse(data)
    assert again.body == body and RpcudpDatagram.build(again) == data
