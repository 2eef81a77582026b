"""Lenient decoding reports departures as Deviations (rule id and spec), never as marker
values in the record: an unknown peer-wire id, an extension item of the wrong form, an
unknown or unparsable Gnutella payload."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import encode
from p2pkit.bittorrent.dissect import peer_wire_stream
from p2pkit.bittorrent.wire.messages import Handshake
from p2pkit.capture.dissect import dissect
from p2pkit.gnutella.dissect import gnutella_stream
from tests.pcap_payloads import CAPTURES, tcp_streams

HANDSHAKE = Handshake.build({"reserved": {"extension_protocol": True}, "info_hash": bytes(20),
                             "peer_id": b"-XX0000-000000000000"})
GUID = bytes(range(16))


def test_an_unknown_peer_wire_id_is_a_deviation():
    stream = peer_wire_stream(src="a:1", dst="b:2")
    records = list(stream.data(0, HANDSHAKE + bytes.fromhex("0000000363abcd"), 1, 0.0))
    assert [r.message for r in records] == ["handshake", "unknown"]
    [deviation] = records[1].deviations
    assert (deviation.rule, deviation.spec, deviation.offset) == (
        "bittorrent/message/unknown-id", "BEP 3 §peer messages", 68 + 4)
    assert "99" in deviation.message


def test_an_extension_item_of_the_wrong_form_is_a_deviation_not_a_marker():
    payload = encode({b"m": {b"ut_pex": 1}, b"p": b"not a port"})
    message = (2 + len(payload)).to_bytes(4, "big") + b"\x14\x00" + payload
    stream = peer_wire_stream(src="a:1", dst="b:2")
    [_, record] = stream.data(0, HANDSHAKE + message, 1, 0.0)
    assert record.fields["extension"] == "handshake"
    assert "_unconverted" not in record.fields["message"]
    assert record.fields["message"]["p"] == "6e6f74206120706f7274"  # kept as sent
    # the rule the BEP 10 schema declares, at the item's value in the stream
    [deviation] = record.deviations
    assert (deviation.rule, deviation.spec) == ("bittorrent/extended/wrong-type",
                                                "BEP 10 §handshake message")
    whole = HANDSHAKE + message
    assert whole[deviation.offset:].startswith(b"10:not a port")


def test_unknown_and_unparsable_gnutella_payloads_are_deviations():
    stream = gnutella_stream(src="a:1", dst="b:2")
    data = (b"GNUTELLA CONNECT/0.6\r\n\r\nGNUTELLA/0.6 200 OK\r\n\r\n"
            + GUID + bytes.fromhex("ee0201030000006162 63".replace(" ", ""))
            + GUID + bytes.fromhex("01010003000000ca1800")
            + GUID + bytes.fromhex("00010000000000"))
    records = list(stream.data(0, data, 1, 0.0))
    assert [r.message for r in records] == ["handshake", "handshake", "unknown", "pong", "ping"]
    unknown, pong, ping = records[2:]
    assert [d.rule for d in unknown.deviations] == ["gnutella/descriptor/unknown-payload-type"]
    assert [d.rule for d in pong.deviations] == ["gnutella/pong/payload"]
    # where parsing stopped: the IP address, after the 2-byte port
    assert pong.deviations[0].offset == pong.offset + 23 + 2 and "error" not in pong.fields
    assert pong.fields["payload"] == "ca1800" and unknown.fields["payload_type"] == 0xEE
    assert ping.deviations == []


@pytest.mark.parametrize("path", sorted(CAPTURES.glob("*.pcap*")), ids=lambda p: p.name)
def test_no_record_carries_a_marker(path):
    for r in dissect(path):
        assert r.message != "malformed"
        assert r.message != "unknown" or r.deviations
        assert "_unconverted" not in str(r.fields)


def _streams(name, starts, limit=6, size=3000):
    out = [data[:size] for data in tcp_streams(name).values() if data.startswith(starts)]
    return out[:limit]


PEER_WIRE = _streams("ndpi-bittorrent.pcap", b"\x13BitTorrent protocol")
GNUTELLA = _streams("gtkg123-plain-up2-3leaves.pcap", b"GNUTELLA")


def _mutate(real, data):
    raw = bytearray(real)
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    return bytes(raw)


def _check(records, length):
    for r in records:
        assert r.message != "malformed" and "error" not in r.fields
        assert "_unconverted" not in str(r.fields)
        for d in r.deviations:
            assert d.rule and d.spec and d.level in ("MUST", "SHOULD", "MAY")
            assert 0 <= d.offset <= length


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PEER_WIRE), st.data())
def test_mutated_real_peer_wire_streams_give_records_and_deviations(real, data):
    """Lenient decoding of real bytes with a few bytes changed never raises: the dissector
    resynchronises or reports, and every departure is a Deviation."""
    raw = _mutate(real, data)
    stream = peer_wire_stream(src="a:1", dst="b:2")
    _check([*stream.data(0, raw, 1, 0.0), *stream.end()], len(raw))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(GNUTELLA), st.data())
def test_mutated_real_gnutella_streams_give_records_and_deviations(real, data):
    raw = _mutate(real, data)
    stream = gnutella_stream(src="a:1", dst="b:2")
    _check([*stream.data(0, raw, 1, 0.0), *stream.end()], len(raw))
