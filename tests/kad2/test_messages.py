"""Kad2 schemas on the real aMule 2.3.3 capture, and on packets built from the schemas."""

from __future__ import annotations

import zlib
from collections import Counter

import pytest

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.kad2.messages import MESSAGES, KadPacket, KadPacketLenient, inflate_bound
from p2pkit.kad2.obfuscation import deobfuscate, looks_obfuscated
from p2pkit.kad2.tags import Tag, TagList
from p2pkit.kademlia.ids import distance
from tests.pcap_payloads import udp_datagrams

CAPTURE = "kad2-amule.pcap"
AMULE = {("127.0.0.21", 4682), ("127.0.0.22", 4692), ("127.0.0.23", 4702)}


def kad_datagrams():
    return [(s, d, p) for s, d, p in udp_datagrams(CAPTURE) if p[:1] in (b"\xe4", b"\xe5")]


def test_every_plain_and_packed_datagram_parses_strictly_and_rebuilds_byte_for_byte():
    packets = kad_datagrams()
    assert len(packets) == 99
    for _, _, payload in packets:
        packet = KadPacket.parse(payload)
        assert KadPacket.build(packet) == payload


def test_what_amule_sent():
    sent = Counter((str(KadPacket.parse(p).protocol), str(KadPacket.parse(p).message.opcode))
                   for s, _, p in kad_datagrams() if s in AMULE)
    assert sent == Counter({
        ("kad", "bootstrap_res"): 3, ("kad", "hello_res"): 3, ("kad", "firewalled_req"): 3,
        ("kad", "ping"): 3, ("kad", "firewalled2_req"): 3, ("kad", "res"): 3,
        ("kad", "pong"): 6, ("kad", "publish_res"): 9, ("kad_packed", "search_res"): 6,
        ("kad", "search_res"): 6, ("kad", "firewalled_res"): 6,
    })


def test_packed_search_results_hold_what_was_published():
    packed = [KadPacket.parse(p).message for s, _, p in kad_datagrams()
              if s in AMULE and p[0] == 0xE5]
    first = packed[0]
    assert first.opcode == "search_res" and first.inflated_size > first.packed_size
    names = sorted(t.value for r in first.results for t in r.tags if t.name == "TAG_FILENAME")
    assert names == [f"p2pkit kad2 sample {i}.txt" for i in range(8)]
    # every result is a file id close to the keyword (aMule indexes within SEARCHTOLERANCE)
    assert all(distance(r.id, first.target) >> 104 == 0 for r in first.results)


def test_contact_ids_are_the_big_endian_numbers_amule_prints():
    res = KadPacket.parse(kad_datagrams()[1][2]).message
    assert res.opcode == "bootstrap_res"
    assert res.client_id.hex().upper() == "F15B80CE0C3FA2842820C59B3028D21E"  # as tshark shows
    assert res.tcp_port == 4670 and res.version == 8 and res.contacts == []


def test_obfuscated_answers_to_a_version_8_peer_are_recognised_and_read_with_its_id():
    obfuscated = [p for s, d, p in udp_datagrams(CAPTURE) if p[:1] not in (b"\xe4", b"\xe5")]
    assert len(obfuscated) == 3 and all(looks_obfuscated(p) for p in obfuscated)
    assert not any(looks_obfuscated(p) for _, _, p in kad_datagrams())
    prober = KadPacket.parse(udp_datagrams(CAPTURE)[5][2]).message  # its hello_req, version 8
    assert prober.opcode == "hello_req" and prober.version == 8
    for payload in obfuscated:
        opened = deobfuscate(payload, prober.client_id)
        assert opened.packet.message.opcode == "hello_res"
        assert opened.packet.message.tags[0].name == "TAG_KADMISCOPTIONS"
        assert deobfuscate(payload, bytes(16)) is None  # another key: the magic is not there


def test_every_opcode_builds_and_parses_back():
    tags = [{"type": "string", "name": "TAG_FILENAME", "value": "x"}]
    some_id = bytes(range(16))
    bodies = {
        "bootstrap_req": {}, "publish_res_ack": {}, "ping": {}, "firewalled_ack_res": {},
        "bootstrap_res": {"client_id": some_id, "tcp_port": 1, "version": 8, "contacts": [
            {"client_id": some_id, "ip": "127.0.0.1", "udp_port": 2, "tcp_port": 3,
             "version": 8}]},
        "hello_req": {"client_id": some_id, "tcp_port": 1, "version": 8, "tags": tags},
        "hello_res": {"client_id": some_id, "tcp_port": 1, "version": 8, "tags": []},
        "req": {"type": 2, "target": some_id, "receiver": some_id},
        "hello_res_ack": {"client_id": some_id, "tags": []},
        "res": {"target": some_id, "contacts": []},
        "search_key_req": {"target": some_id, "start": {"restrictive": False,
                                                        "start_position": 3},
                           "expression": None},
        "search_source_req": {"target": some_id, "start": {"restrictive": False,
                                                           "start_position": 0},
                              "file_size": 1 << 40},
        "search_notes_req": {"target": some_id, "file_size": 7},
        "search_res": {"sender": some_id, "target": some_id,
                       "results": [{"id": some_id, "tags": tags}]},
        "publish_key_req": {"keyword": some_id, "entries": [{"id": some_id, "tags": tags}]},
        "publish_source_req": {"file": some_id, "source": some_id, "tags": tags},
        "publish_notes_req": {"file": some_id, "source": some_id, "tags": tags},
        "publish_res": {"target": some_id, "load": 50, "options": None},
        "firewalled_req": {"tcp_port": 9},
        "findbuddy_req": {"buddy_id": some_id, "user_id": some_id, "tcp_port": 9},
        "callback_req": {"buddy_id": some_id, "file": some_id, "tcp_port": 9},
        "firewalled2_req": {"tcp_port": 9, "user_id": some_id, "connect_options": 2},
        "firewalled_res": {"ip": "10.1.2.3"},
        "findbuddy_res": {"buddy_id": some_id, "user_id": some_id, "tcp_port": 9,
                          "connect_options": 1},
        "pong": {"udp_port": 4672},
        "firewall_udp": {"error_code": 0, "udp_port": 4672},
    }
    assert set(bodies) == set(MESSAGES.ids)
    for name, body in bodies.items():
        for protocol in ("kad", "kad_packed"):
            data = KadPacket.build({"protocol": protocol, "message": {"opcode": name, **body}})
            assert data[1] == MESSAGES.ids[name]
            again = KadPacket.parse(data)
            assert again.message.opcode == name and KadPacket.build(again) == data


def test_unknown_opcode_is_strict_error_and_lenient_deviation():
    with pytest.raises(ParseError):
        KadPacket.parse(b"\xe4\x7f\x01")
    lenient = KadPacketLenient.parse(b"\xe4\x7f\x01")
    assert lenient.message.opcode == "unknown" and lenient.message.opcode_id == 0x7F


def test_a_zlib_bomb_is_refused_before_it_is_inflated():
    bomb = b"\xe5\x3b" + zlib.compress(bytes(1_000_000), 9)
    assert inflate_bound(len(bomb)) < 1_000_000
    with pytest.raises(LimitExceeded) as info:
        KadPacketLenient.parse(bomb)
    assert info.value.protocol == "emule-kad"


def test_a_deep_search_expression_is_refused():
    deep = b"\x00\x00" * 30 + b"\x01\x01\x00a" * 31
    data = b"\xe4\x33" + bytes(16) + b"\x00\x80" + deep
    with pytest.raises(LimitExceeded):
        KadPacket.parse(data)


def test_tags_with_lengths_beyond_the_bounds_are_refused():
    with pytest.raises(LimitExceeded):
        Tag.parse(b"\x02" + (60_000).to_bytes(2, "little") + b"x")
    with pytest.raises(ParseError):  # a declared string longer than the datagram
        TagList.parse(b"\x01\x02\x01\x00\x01\xff\x00ab")
