"""Nothing disappears silently: every TCP direction and UDP datagram that is not decoded
becomes an ``undecoded`` record saying why (issue 12)."""

from __future__ import annotations

import json
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import Dissector, dissect
from p2pkit.capture.packets import TCP_ACK, TCP_FIN, TCP_SYN, Packet
from p2pkit.capture.record import UNDECODED_REASONS
from p2pkit.capture.render import Statistics, render_summary, render_tree
from p2pkit.cli import main
from tests.pcap_payloads import CAPTURES

HANDSHAKE = b"\x13BitTorrent protocol" + bytes(8) + bytes(range(20)) + b"-XX0001-" + bytes(12)


class Wire:
    """Packets of made-up connections, numbered as frames, fed to a :class:`Dissector`."""

    def __init__(self) -> None:
        self.frame = 0
        self.seq: dict[tuple[str, int, str, int], int] = {}
        self.packets: list[Packet] = []

    def _add(self, transport, src, dst, payload, flags=TCP_ACK):
        self.frame += 1
        (sip, sport), (dip, dport) = src, dst
        seq = self.seq.setdefault((sip, sport, dip, dport), 1000)
        self.packets.append(Packet(self.frame, float(self.frame), transport, sip, sport, dip,
                                   dport, payload, seq, 0, flags))
        if transport == "tcp":
            self.seq[(sip, sport, dip, dport)] = seq + len(payload) + (
                1 if flags & (TCP_SYN | TCP_FIN) else 0)

    def tcp(self, src, dst, payload=b"", flags=TCP_ACK):
        self._add("tcp", src, dst, payload, flags)

    def syn(self, a, b):
        self.tcp(a, b, flags=TCP_SYN)
        self.tcp(b, a, flags=TCP_SYN | TCP_ACK)

    def udp(self, src, dst, payload):
        self._add("udp", src, dst, payload)

    def records(self):
        d = Dissector()
        out = []
        for p in self.packets:
            out += d.packet(p)
        out += d.finish()
        return out


A, B = ("10.0.0.1", 40000), ("10.0.0.2", 6881)


def _undecoded(records):
    return [r for r in records if r.message == "undecoded"]


def test_an_unknown_tcp_stream_is_one_record_with_endpoints_frames_and_bytes():
    w = Wire()
    w.syn(A, B)
    for chunk in (b"SSH-2.0-OpenSSH_9.2\r\n", b"\x00" * 100, b"more"):
        w.tcp(A, B, chunk)
    w.tcp(A, B, flags=TCP_FIN | TCP_ACK)
    [r] = _undecoded(w.records())
    assert (r.protocol, r.transport, r.src, r.dst) == ("data", "tcp", "10.0.0.1:40000",
                                                       "10.0.0.2:6881")
    assert r.fields == {"reason": "unknown protocol", "bytes": 125, "first_frame": 3,
                        "last_frame": 5, "frames": 3}
    assert r.frame == 6 and r.length == 125  # reported at the FIN that ends it


def test_an_unknown_datagram_is_a_record():
    w = Wire()
    w.udp(A, B, b"\x99" * 30)
    [r] = w.records()
    assert (r.protocol, r.message, r.fields["reason"], r.fields["bytes"]) == (
        "data", "undecoded", "unknown protocol", 30)


def _mse_stream(rng, n):
    return rng.randbytes(n)


def test_a_fully_encrypted_mse_connection_is_labelled_with_its_byte_counts():
    """MSE/PE with RC4 from the first byte (BEP 8 era 'Message Stream Encryption'): each side
    opens with a 96-byte DH public key and random padding, then RC4 bytes."""
    rng = random.Random(7)
    w = Wire()
    w.syn(A, B)
    sent = {A: 0, B: 0}
    for src, dst, n in ((A, B, 96 + 200), (B, A, 96 + 45), (A, B, 1400), (B, A, 1400),
                        (B, A, 1400), (A, B, 60), (B, A, 16384)):
        for i in range(0, n, 1448):
            part = min(1448, n - i)
            w.tcp(src, dst, _mse_stream(rng, part))
            sent[src] += part
    w.tcp(A, B, flags=TCP_FIN | TCP_ACK)
    w.tcp(B, A, flags=TCP_FIN | TCP_ACK)
    records = w.records()
    assert {(r.protocol, r.message) for r in records} == {("bittorrent", "undecoded")}
    by_src = {r.src: r for r in records}
    assert by_src["10.0.0.1:40000"].fields["bytes"] == sent[A]
    assert by_src["10.0.0.2:6881"].fields["bytes"] == sent[B]
    assert all(r.fields["reason"] == "encrypted" and r.fields["encryption"] == "MSE/PE"
               for r in records)
    assert "reason=encrypted" in render_summary(records[0])


def test_a_short_encrypted_direction_still_counts():
    rng = random.Random(3)
    w = Wire()
    w.syn(A, B)
    w.tcp(A, B, rng.randbytes(96 + 17))
    w.tcp(A, B, flags=TCP_FIN | TCP_ACK)
    [r] = w.records()
    assert (r.protocol, r.fields["reason"], r.fields["bytes"]) == ("bittorrent", "encrypted",
                                                                    113)


def test_garbage_in_a_peer_wire_stream_is_malformed_at_its_offset_and_resynchronised():
    rng = random.Random(5)
    garbage = rng.randbytes(50_000)
    haves = b"".join(bytes.fromhex("0000000504") + i.to_bytes(4, "big") for i in range(5))
    w = Wire()
    w.syn(A, B)
    w.tcp(A, B, HANDSHAKE + bytes.fromhex("0000000101"))  # handshake, unchoke
    for i in range(0, len(garbage), 1448):
        w.tcp(A, B, garbage[i:i + 1448])
    w.tcp(A, B, haves)
    w.tcp(A, B, flags=TCP_FIN | TCP_ACK)
    records = w.records()
    assert [r.message for r in records] == ["handshake", "unchoke", "undecoded", *["have"] * 5]
    skipped = records[2]
    assert skipped.fields["reason"] == "malformed" and skipped.fields["at"] == 73
    assert skipped.offset == 73 and skipped.length == len(garbage)
    assert skipped.fields["frames"] == len(range(0, len(garbage), 1448))


def test_a_stream_that_breaks_off_mid_message_is_truncated():
    w = Wire()
    w.syn(A, B)
    w.tcp(A, B, HANDSHAKE + bytes.fromhex("00004009 07 00000001 00000000") + b"x" * 100)
    w.tcp(A, B, flags=TCP_FIN | TCP_ACK)
    records = w.records()
    assert [r.message for r in records] == ["handshake", "undecoded"]
    assert records[1].fields["reason"] == "truncated" and records[1].fields["bytes"] == 113


def test_malformed_and_non_dictionary_krpc_datagrams_are_undecoded_bt_dht():
    w = Wire()
    w.udp(A, B, b"li1ei2ee")                        # bencoded, but a list
    w.udp(A, B, b"d1:ad2:id20:abcdefghij0123")       # breaks off
    w.udp(A, B, b"d1:t2:aa1:y1:q1:q4:pingXXXXX")     # garbage after a key
    w.udp(A, B, b"dns-query-looking-thing")          # not bencoding: not the DHT's
    records = w.records()
    assert [(r.protocol, r.message, r.fields["reason"]) for r in records] == [
        ("bt-dht", "undecoded", "malformed"), ("bt-dht", "undecoded", "truncated"),
        ("bt-dht", "undecoded", "malformed"), ("data", "undecoded", "unknown protocol")]
    assert records[0].fields["at"] == 0 and "dictionary" in records[0].fields["detail"]


def test_libtorrent_p_key_is_information_not_a_deviation():
    records = [r for r in dissect(CAPTURES / "dht-03-p2pkit-libtorrent-bittorrent-dht.pcap")
               if r.protocol == "bt-dht"]
    assert not [d for r in records for d in r.deviations if d.rule == "krpc/unknown-key"]
    listed = [u for r in records for u in r.fields.get("unknown_keys", ())]
    assert any("'p'" in u["message"] for u in listed)
    assert {u["level"] for u in listed} == {"MAY"}
    # still listed where it was sent
    assert any(r.fields.get("r", {}).get("extra", {}).get("p") for r in records)


def test_real_captures_account_for_what_they_skip():
    # gtk-gnutella's connect-back probe ("\n\n") is not taken for the peer wire any more
    records = list(dissect(CAPTURES / "gtkg123-plain-up2-3leaves.pcap"))
    skipped = _undecoded(records)
    assert skipped and {r.protocol for r in skipped} == {"data"}
    assert {r.fields["bytes"] for r in skipped} == {2}
    # a capture that starts mid-connection, behind an MSE preamble
    records = list(dissect(CAPTURES / "ndpi-bittorrent_tcp_miss.pcapng"))
    reasons = Counter(r.fields["reason"] for r in _undecoded(records))
    assert reasons["encrypted"] == 1 and set(reasons) <= set(UNDECODED_REASONS)


def test_stats_count_undecoded_per_reason_and_the_cli_can_hide_them(tmp_path, capsys):
    stats = Statistics().extend(dissect(CAPTURES / "ndpi-gnutella.pcap"))
    doc = stats.to_json()["undecoded"]
    assert {(u["protocol"], u["reason"]) for u in doc} >= {("data", "unknown protocol")}
    assert "Undecoded" in stats.render()
    path = str(CAPTURES / "ndpi-gnutella.pcap")
    assert main(["dissect", path, "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(r["message"] == "undecoded" for r in shown)
    assert main(["dissect", path, "--json", "--no-undecoded"]) == 0
    hidden = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hidden and not any(r["message"] == "undecoded" for r in hidden)
    assert len(hidden) < len(shown)
    assert main(["dissect", path, "--message", "undecoded", "--protocol", "data", "-c", "1",
                 "-V"]) == 0
    assert "data undecoded" in capsys.readouterr().out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=600)), max_size=12),
       st.sampled_from([b"", HANDSHAKE, b"GNUTELLA CONNECT/0.6\r\n", b"d1:", b"l"]))
def test_random_and_truncated_bytes_give_only_records(chunks, prefix):
    """Random streams and datagrams (after a plausible prefix, or truncated): records only;
    every captured TCP byte of an undecided stream is accounted for."""
    w = Wire()
    w.syn(A, B)
    for to_b, data in chunks:
        src, dst = (A, B) if to_b else (B, A)
        w.tcp(src, dst, prefix + data)
        w.udp(src, dst, prefix + data)
        w.udp(src, dst, (prefix + data)[: len(prefix) + len(data) // 2])
    for r in w.records():
        assert r.message
        if r.message == "undecoded":
            assert r.fields["reason"] in UNDECODED_REASONS
            assert r.fields["bytes"] > 0 or r.transport == "udp"  # empty datagram
            render_tree(r)


def test_nul_padded_and_non_utf8_text_fields_are_escaped_the_same_everywhere():
    from p2pkit.capture.record import Record, json_fields
    from p2pkit.capture.render import render_jsonl

    raw = {"vendor": "\0\0\0\0", "xml": b"{deflate}x\xda\x00".decode("utf-8", "surrogateescape")}
    fields = json_fields(raw)
    r = Record(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2", protocol="unlisted",
               message="vendor_message", fields=fields)
    line, tree, doc = render_summary(r), render_tree(r), json.loads(render_jsonl(r))
    assert "vendor=\\u0000\\u0000\\u0000\\u0000" in line
    assert 'vendor: "\\u0000\\u0000\\u0000\\u0000"' in tree
    assert doc["fields"]["vendor"] == "\0\0\0\0"  # JSON's own \u0000 escapes
    assert doc["fields"]["xml"] == "{deflate}x\\xda\0" and "\\\\xda" in render_jsonl(r)
    assert "\0" not in line + tree


def test_real_gnutella_query_hits_with_binary_xml_print_as_json(capsys):
    assert main(["dissect", str(CAPTURES / "ndpi-gnutella.pcap"), "--json",
                 "--message", "query_hit"]) == 0
    assert all(json.loads(line) for line in capsys.readouterr().out.splitlines())


def test_http10_tracker_answer_after_the_client_half_closed_is_decoded():
    """An HTTP/1.0 client may half-close (FIN) before the tracker answers: the connection's
    protocol is kept until both directions end."""
    from p2pkit.bencode import encode

    T = ("10.0.0.9", 6969)
    w = Wire()
    w.syn(A, T)
    w.tcp(A, T, b"GET /announce?info_hash=" + b"%12" * 20
                + b"&peer_id=-XX0001-123456789012&port=6881"
                b"&uploaded=0&downloaded=0&left=0 HTTP/1.0\r\nHost: t\r\n\r\n")
    w.tcp(A, T, flags=TCP_FIN | TCP_ACK)                       # half-close
    body = encode({b"interval": 1800, b"peers": b""})
    w.tcp(T, A, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body)
    w.tcp(T, A, flags=TCP_FIN | TCP_ACK)
    records = w.records()
    assert [(r.protocol, r.fields.get("direction")) for r in records] == [
        ("bt-tracker-http", "request"), ("bt-tracker-http", "response")], records
    assert records[1].fields.get("interval") == 1800 or "1800" in json.dumps(records[1].fields)


def test_a_udp_tracker_client_sharing_connection_ids_between_addresses_is_decoded():
    records = list(dissect(CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap"))
    assert not _undecoded(records)
    errors = [r for r in records if r.protocol == "bt-tracker" and r.message == "error"]
    assert errors and all(r.src == "127.0.0.1:6969" for r in errors)


def test_ut_metadata_of_a_v2_torrent_reports_the_sha256_info_hash():
    """bt-05: a v2-only magnet (urn:btmh:1220…): the assembled info dictionary's SHA-256 is
    the v2 info-hash the magnet names."""
    records = list(dissect(CAPTURES / "bt-05-libtorrent-v2-magnet.pcap"))
    assembled = [r.fields["message"]["assembled"] for r in records
                 if r.message == "extended" and "assembled" in r.fields.get("message", {})]
    assert assembled and {a["info_hash_v2"] for a in assembled} == {
        "53a4c27da212ea02bba649b6bc62c681e0ba1a49bb46cf5e3ff543eee19398a9"}


def test_ut_metadata_pieces_are_assembled_across_messages():
    import hashlib

    from p2pkit.bencode import encode
    from p2pkit.bittorrent.dissect import PeerWireStream

    info = encode({b"name": b"x", b"piece length": 16384, b"pieces": bytes(20),
                   b"length": 1, b"pad": bytes(30_000)})
    seeder = PeerWireStream(transport="tcp", src="s:1", dst="l:2")
    leecher = PeerWireStream(transport="tcp", src="l:2", dst="s:1")
    seeder.peer, leecher.peer = leecher, seeder

    def extended(ext_id, payload):
        body = bytes([20, ext_id]) + payload
        return len(body).to_bytes(4, "big") + body

    list(leecher.data(0, HANDSHAKE + extended(0, encode({b"m": {b"ut_metadata": 3}})), 1, 0))
    out = list(seeder.data(0, HANDSHAKE, 2, 0))
    offset = len(HANDSHAKE)
    for piece in range(2):
        chunk = info[piece * 16384:(piece + 1) * 16384]
        msg = extended(3, encode({b"msg_type": 1, b"piece": piece,
                                  b"total_size": len(info)}) + chunk)
        out += seeder.data(offset, msg, 3 + piece, 0)
        offset += len(msg)
    data = [r for r in out if r.fields.get("extension") == "ut_metadata"]
    assert len(data) == 2 and "assembled" not in data[0].fields["message"]
    assert data[1].fields["message"]["assembled"] == {
        "length": len(info), "info_hash_v1": hashlib.sha1(info).hexdigest(),
        "info_hash_v2": hashlib.sha256(info).hexdigest()}


def test_decode_as_bittorrent_labels_an_encrypted_stream_too():
    from p2pkit.capture.detect import parse_decode_as

    rng = random.Random(11)
    w = Wire()
    w.syn(A, B)
    w.tcp(A, B, rng.randbytes(96 + 300))
    w.tcp(B, A, rng.randbytes(96 + 10))
    d = Dissector(decode_as=[parse_decode_as("tcp.port==6881,bittorrent")])
    records = [r for p in w.packets for r in d.packet(p)] + list(d.finish())
    assert sorted((r.src, r.fields["reason"], r.fields["bytes"]) for r in records) == [
        ("10.0.0.1:40000", "encrypted", 396), ("10.0.0.2:6881", "encrypted", 106)]


def test_a_real_rc4_mse_connection_is_labelled_encrypted_in_both_directions():
    """bt-08: libtorrent 2.0.8 to libtorrent 2.0.8 with pe_forced/pe_rc4 (tests/data/captures/
    README-mse.md): nothing decodes, nothing is dropped."""
    records = list(dissect(CAPTURES / "bt-08-libtorrent-mse-rc4.pcap"))
    assert [(r.protocol, r.message, r.fields["reason"], r.fields["encryption"])
            for r in records] == [("bittorrent", "undecoded", "encrypted", "MSE/PE")] * 2
    by_src = {r.src.rsplit(":", 1)[0]: r.fields for r in records}
    assert (by_src["127.0.0.2"]["bytes"], by_src["127.0.0.2"]["frames"]) == (263261, 39)
    assert (by_src["127.0.0.3"]["bytes"], by_src["127.0.0.3"]["frames"]) == (1364, 20)


def test_a_gnutella_descriptor_cut_off_by_the_end_is_truncated():
    G = ("10.0.0.7", 6346)
    w = Wire()
    w.syn(A, G)
    ping = bytes(16) + bytes([0x00, 1, 0]) + (0).to_bytes(4, "little")
    w.tcp(A, G, b"GNUTELLA CONNECT/0.6\r\nUser-Agent: x\r\n\r\n")
    w.tcp(G, A, b"GNUTELLA/0.6 200 OK\r\n\r\n")
    w.tcp(A, G, b"GNUTELLA/0.6 200 OK\r\n\r\n" + ping + ping[:10])
    w.tcp(A, G, flags=TCP_FIN | TCP_ACK)
    records = [r for r in w.records() if r.src == "10.0.0.1:40000"]
    assert [r.message for r in records] == ["handshake", "handshake", "ping", "undecoded"]
    records = records[1:]
    assert (records[2].protocol, records[2].fields["reason"], records[2].fields["bytes"]) == (
        "gnutella", "truncated", 10)
