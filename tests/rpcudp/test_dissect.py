"""The dissector on the real capture of four python kademlia nodes (bootstrap, set, get)."""

from __future__ import annotations

from collections import Counter

from p2pkit.capture.dissect import dissect
from p2pkit.capture.packets import Packet
from p2pkit.rpcudp.dissect import RpcudpDecoder
from tests.pcap_payloads import CAPTURES

CAPTURE = CAPTURES / "kademlia-py-rpcudp.pcap"


def test_every_datagram_is_decoded_and_every_response_knows_its_method():
    records = list(dissect(CAPTURE))
    assert len(records) == 60 and {r.protocol for r in records} == {"kademlia-rpcudp"}
    requests = Counter(r.fields["method"] for r in records if r.message == "request")
    responses = Counter(r.fields["method"] for r in records if r.message == "response")
    assert requests == responses
    assert set(requests) == {"ping", "find_node", "store", "find_value"}


def test_the_set_and_the_get_are_visible():
    records = list(dissect(CAPTURE))
    stores = [r for r in records if r.fields.get("method") == "store"]
    assert any(r.fields.get("value") == "hello from python-kademlia" for r in stores)
    assert all(r.fields.get("stored") is True for r in stores if r.message == "response")
    found = [r for r in records if r.message == "response" and r.fields.get("method") ==
             "find_value" and "value" in r.fields]
    assert found and found[0].fields["value"] == "hello from python-kademlia"
    nodes = [n for r in records if r.message == "response" for n in r.fields.get("nodes", [])]
    assert nodes and all(n["ip"].startswith("127.0.0.3") and n["port"] == 8468 for n in nodes)


def _pkt(payload: bytes) -> Packet:
    return Packet(frame=1, time=0.0, transport="udp", src_ip="127.0.0.1", src_port=1,
                  dst_ip="127.0.0.2", dst_port=2, payload=payload)


def test_a_broken_request_is_an_undecoded_record_and_foreign_bytes_are_left_alone():
    decoder = RpcudpDecoder()
    [record] = decoder.datagram(_pkt(b"\x00" + bytes(20) + b"\x92\xa4ping\xc1"))
    assert record.message == "undecoded" and record.fields["reason"] == "malformed"
    [record] = decoder.datagram(_pkt(b"\x00" + bytes(20) + b"\x92\xa4pi"))
    assert record.fields["reason"] == "truncated"
    assert decoder.datagram(_pkt(b"\x01" + bytes(30))) is None  # a response nobody asked for
