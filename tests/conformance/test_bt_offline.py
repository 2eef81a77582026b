"""The peer-wire rules of ``conformance check`` on real captures, and on captures edited (with
scapy's capture writer) to break one rule: each verdict names the sender, rule and frame."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap

from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.conformance.bittorrent.offline import RULES, client_of
from p2pkit.conformance.offline import check_capture

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "tests/data/captures"
TORRENTS = ROOT / "tests/data/torrents"


def failures(report) -> dict[tuple[str, str], list[int]]:
    """(sender, rule) -> frames of the failures, for every rule that failed."""
    return {(e.endpoint, t.rule.rule): [f for f, _ in t.failures]
            for e in report.endpoints.values() for t in e.tallies.values() if t.failed}


def checked(report, endpoint: str, rule: str) -> int:
    tally = report.endpoints[endpoint].tallies.get(rule)
    return 0 if tally is None else tally.checked


def test_every_rule_has_a_live_catalog_requirement() -> None:
    from p2pkit.conformance import catalog

    live = {c.rule for c in catalog("bittorrent")}
    shared = {r for r in RULES if r in live}
    # the rules only a capture can judge (the sender's side of what the harness plays)
    assert set(RULES) - shared == {"bep3/piece/requested", "bep9/piece-index", "bep11/flags",
                                   "bep52/hash-request/bounds"}
    assert all(rule.requirement for rule in RULES.values())


def test_aria2_sends_bitfields_after_have_none() -> None:
    """bt-07: aria2 1.36.0 opens with have_none, then sends bitfields (frames 75, 194) and a
    have_all (241) as its download proceeds; BEP 6: "Exactly one of Have All, Have None, or
    Have Bitfield MUST appear and only immediately after the handshake"."""
    report = check_capture(CAPTURES / "bt-07-p2pkit-seed-aria2.pcap")
    aria2, p2pkit = "127.0.0.2:6881", "127.0.0.3:41869"
    assert report.endpoints[aria2].implementation == "aria2/1.36.0"
    assert report.endpoints[p2pkit].implementation == "p2pkit 0.1 (-PK0100-)"
    assert failures(report) == {(aria2, "bep6/have/only-first"): [75, 194, 241]}
    assert not report.ok
    # p2pkit, the seeder, served 19 requested blocks and passed every rule it fell under
    assert checked(report, p2pkit, "bep3/piece/requested") == 19
    assert checked(report, aria2, "bep6/enabled-by-both") == 12


def test_libtorrent_magnet_download_sends_have_none_late() -> None:
    """bt-05: libtorrent 2.0.8, starting from a magnet link, sends a ut_metadata request and
    upload_only before its have_none (frame 10). The seed side passes every rule, its BEP 52
    hashes correlate with the request, and the metadata the capture carries gives the torrent's
    shape (64 pieces) for the bounds rules."""
    report = check_capture(CAPTURES / "bt-05-libtorrent-v2-magnet.pcap")
    leech, seed = "127.0.0.3:53633", "127.0.0.2:6881"
    assert failures(report) == {(leech, "bep6/have/only-first"): [10]}
    assert checked(report, seed, "bep52/hashes/correlate") == 1
    assert checked(report, leech, "bep52/hash-request/bounds") == 1
    assert checked(report, leech, "bep3/request/index-bounds") == 128
    assert checked(report, leech, "bep3/have/index") == 64
    assert checked(report, seed, "bep9/data/piece-size") == 1


def test_p2pkit_leeching_from_libtorrent_passes() -> None:
    report = check_capture(CAPTURES / "bt-06-p2pkit-leech-libtorrent.pcap")
    assert failures(report) == {} and report.ok
    libtorrent = report.endpoints["127.0.0.2:6881"]
    assert libtorrent.implementation == "libtorrent/2.0.8.0 (-LT2080-)"
    # pieces while choked are allowed-fast ones only: the choke came at frame 13
    assert libtorrent.tallies["bep3/choke/no-data-while-choked"].checked == 19
    # no metadata in the capture and no torrent given: the shape rules are not judged
    assert checked(report, "127.0.0.3:41281", "bep3/request/index-bounds") == 0


def test_pex_and_metadata_in_bt02() -> None:
    torrent = Metainfo.parse((TORRENTS / "bt-02-libtorrent-magnet-ut_metadata-pex.torrent")
                             .read_bytes())
    report = check_capture(CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap",
                           torrents=[torrent])
    pex = sum(checked(report, e, "bep11/flags") for e in report.endpoints)
    assert pex >= 1
    assert not any(rule in ("bep11/flags", "bep11/rate", "bep9/data/total-size")
                   for _, rule in failures(report))
    # the two magnet downloaders send have_none after their metadata requests
    assert set(failures(report)) == {("127.0.0.3:40049", "bep6/have/only-first"),
                                     ("127.0.0.4:50497", "bep6/have/only-first")}


def test_utorrent_extension_handshakes_are_not_canonical_bencoding() -> None:
    report = check_capture(CAPTURES / "ndpi-bittorrent.pcap")
    found = failures(report)
    assert found[("82.58.216.115:38305", "bep10/handshake/dictionary")] == [44]
    assert report.endpoints["82.58.216.115:38305"].implementation == \
        "μTorrent 3.4.5 (-UT3450-)"
    assert {rule for _, rule in found} == {"bep10/handshake/dictionary"}
    failing = report.endpoints["82.58.216.115:38305"].tallies["bep10/handshake/dictionary"]
    assert "out of sorted order" in failing.failures[0][1]


def _edited(tmp_path: Path, name: str, edit) -> Path:
    """The capture with ``edit(src_port, dst_port, payload, frame) -> payload`` applied to
    every TCP payload, written back with scapy (checksums recomputed)."""
    packets = rdpcap(str(CAPTURES / name))
    for frame, pkt in enumerate(packets, 1):
        if TCP in pkt and Raw in pkt:
            new = edit(pkt[TCP].sport, pkt[TCP].dport, bytes(pkt[Raw].load), frame)
            if new != bytes(pkt[Raw].load):
                pkt[Raw].load = new
                del pkt[IP].chksum, pkt[TCP].chksum
    out = tmp_path / name
    wrpcap(str(out), packets)
    return out


def test_an_unechoed_info_hash_is_caught(tmp_path: Path) -> None:
    def edit(sport: int, dport: int, payload: bytes, frame: int) -> bytes:
        if sport == 6881 and payload.startswith(b"\x13BitTorrent protocol"):
            return payload[:28] + bytes([payload[28] ^ 0xFF]) + payload[29:]
        return payload

    report = check_capture(_edited(tmp_path, "bt-06-p2pkit-leech-libtorrent.pcap", edit))
    assert failures(report) == {("127.0.0.2:6881", "bep3/handshake/info-hash-echo"): [6]}
    assert not report.ok


def test_an_oversized_request_and_the_piece_answering_it_are_caught(tmp_path: Path) -> None:
    request = bytes.fromhex("0000000d06" "00000006" "00000000" "00004000")  # index 6, 16 KiB

    def edit(sport: int, dport: int, payload: bytes, frame: int) -> bytes:
        if dport == 6881 and request in payload:
            return payload.replace(request, request[:-4] + (32768).to_bytes(4, "big"))
        return payload

    report = check_capture(_edited(tmp_path, "bt-06-p2pkit-leech-libtorrent.pcap", edit))
    assert failures(report) == {
        ("127.0.0.3:41281", "bep3/request/block-size"): [11],   # p2pkit asked for 32 KiB
        ("127.0.0.2:6881", "bep3/piece/requested"): [27],       # 16 KiB were never asked for
    }
    tally = report.endpoints["127.0.0.3:41281"].tallies["bep3/request/block-size"]
    assert tally.verdict == "non-strict"  # a SHOULD: a MUST fails only on the piece
    assert not report.ok


def test_a_have_beyond_the_torrent_is_caught(tmp_path: Path) -> None:
    """bt-02 with the torrent given (64 pieces): a have for piece 64 is caught, at its frame."""
    torrent = Metainfo.parse((TORRENTS / "bt-02-libtorrent-magnet-ut_metadata-pex.torrent")
                             .read_bytes())
    edited: list[tuple[int, int]] = []

    def edit(sport: int, dport: int, payload: bytes, frame: int) -> bytes:
        at = payload.find(bytes.fromhex("0000000504"))
        if edited or at < 0 or len(payload) < at + 9:
            return payload
        edited.append((frame, sport))
        return payload[:at + 5] + (64).to_bytes(4, "big") + payload[at + 9:]

    name = "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
    report = check_capture(_edited(tmp_path, name, edit), torrents=[torrent])
    [(frame, sport)] = edited
    haves = {(who, frames[0]) for (who, rule), frames in failures(report).items()
             if rule == "bep3/have/index"}
    assert len(haves) == 1
    [(who, at)] = haves
    assert who.endswith(f":{sport}") and at == frame
    original = check_capture(CAPTURES / name, torrents=[torrent])
    assert not any(rule == "bep3/have/index" for _, rule in failures(original))


@pytest.mark.parametrize("peer_id, client", [(b"-LT2080-" + bytes(12), "-LT2080-"),
                                              (b"A2-1-36-0-" + bytes(10), "A2-1-36-0"),
                                              (bytes(20), "?")])
def test_client_of(peer_id: bytes, client: str) -> None:
    assert client_of(peer_id) == client


def test_cli_judges_peer_wire_and_takes_torrents(tmp_path: Path, capsys) -> None:
    import json

    from p2pkit.cli import main

    status = main(["conformance", "check", str(CAPTURES / "bt-07-p2pkit-seed-aria2.pcap"),
                   "--json", "--endpoint", "127.0.0.2:6881"])
    document = json.loads(capsys.readouterr().out)
    assert status == 1  # aria2's have/only-first failures are MUST
    [aria2] = document["endpoints"]
    rules = {r["rule"]: r for r in aria2["rules"]}
    assert [f["frame"] for f in rules["bep6/have/only-first"]["failures"]] == [75, 194, 241]
    assert main(["conformance", "check", str(CAPTURES / "bt-06-p2pkit-leech-libtorrent.pcap"),
                 "--torrent", str(tmp_path / "missing.torrent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


# -- the judge never raises on any sequence of messages -------------------------------------

MESSAGES = st.one_of(
    st.sampled_from([{"type": t} for t in ("choke", "unchoke", "interested", "have_all",
                                           "have_none")]),
    st.builds(lambda i: {"type": "have", "index": i}, st.integers(0, 70)),
    st.builds(lambda b: {"type": "bitfield", "bitfield": b}, st.binary(max_size=10)),
    st.builds(lambda t, i, b, n: {"type": t, "index": i, "begin": b, "length": n},
              st.sampled_from(["request", "cancel", "reject_request"]), st.integers(0, 70),
              st.sampled_from([0, 16384, 2**31]), st.sampled_from([0, 1, 16384, 32768])),
    st.builds(lambda i, d: {"type": "piece", "index": i, "begin": 0, "piece": d},
              st.integers(0, 70), st.binary(max_size=64)),
    st.builds(lambda i, n: {"type": "hash_request", "pieces_root": bytes(32), "base_layer": 0,
                            "index": i, "length": n, "proof_layers": 0},
              st.integers(0, 8), st.integers(0, 9)),
    st.builds(lambda p: {"type": "extended", "extended_id": 1, "payload": p},
              st.sampled_from([b"d8:msg_typei1e5:piecei9e10:total_sizei5eeabc", b"de", b"x",
                               b"d5:added6:\x01\x02\x03\x04\x05\x067:added.f2:\x00\x00e"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), MESSAGES), max_size=40), st.integers(0, 0xFF))
def test_the_judge_takes_any_message_sequence(sequence, bits: int) -> None:
    from construct import Container

    from p2pkit.bittorrent.wire.messages import PeerMessage, PeerMessageLenient
    from p2pkit.capture.record import Record
    from p2pkit.conformance.bittorrent.offline import PeerWireJudge
    from p2pkit.deviations import deviations_of

    a, b = "10.0.0.1:1", "10.0.0.2:2"
    judge = PeerWireJudge()
    reserved = Container(extension_protocol=bool(bits & 1), fast=bool(bits & 2),
                         dht=bool(bits & 4), v2_upgrade=False, unknown=0)
    for frame, src in enumerate((a, b), 1):
        hs = Container(reserved=reserved, info_hash=bytes([bits]) * 20, peer_id=bytes(20))
        judge.judge(Record(frame=frame, time=0.0, transport="tcp", src=src,
                           dst=b if src == a else a, protocol="bittorrent",
                           message="handshake", offset=0, length=68, value=hs))
    for frame, (from_a, message) in enumerate(sequence, 3):
        data = PeerMessage.build(message)
        value = PeerMessageLenient.parse(data)
        extension = {"extension": "ut_metadata" if b"msg_type" in data else "ut_pex"} \
            if message["type"] == "extended" else {}
        record = Record(frame=frame, time=frame * 7.0, transport="tcp", src=a if from_a else b,
                        dst=b if from_a else a, protocol="bittorrent", message=value.type,
                        fields=extension, offset=100 + frame, length=len(data), value=value,
                        deviations=deviations_of(value))
        for rule, ok, reason in judge.judge(record):
            assert rule in RULES and isinstance(ok, bool) and isinstance(reason, str)


# -- each rule on a synthetic connection: the message that breaks it, at its frame ----------

A, B = "10.0.0.1:1", "10.0.0.2:2"
PEX = b"d5:added6:\x01\x02\x03\x04\x05\x067:added.f1:\x00e"


def _records(messages, *, bits_a: int = 0x7, bits_b: int = 0x7):
    """Records of a connection: handshakes (bits: 1 BEP 10, 2 fast, 4 DHT), then
    ``messages`` as (sender, message, time); ``extended`` ones name their extension."""
    from construct import Container

    from p2pkit.bittorrent.wire.messages import PeerMessage, PeerMessageLenient
    from p2pkit.capture.record import Record
    from p2pkit.deviations import deviations_of

    out = []
    for frame, (src, bits) in enumerate(((A, bits_a), (B, bits_b)), 1):
        reserved = Container(extension_protocol=bool(bits & 1), fast=bool(bits & 2),
                             dht=bool(bits & 4), v2_upgrade=False, unknown=0)
        out.append(Record(frame=frame, time=0.0, transport="tcp", src=src,
                          dst=B if src == A else A, protocol="bittorrent",
                          message="handshake", offset=0, length=68, value=Container(
                              reserved=reserved, info_hash=bytes(20), peer_id=bytes(20))))
    for frame, (src, message, time) in enumerate(messages, 3):
        name = message.pop("extension", None)
        data = PeerMessage.build(message)
        value = PeerMessageLenient.parse(data)
        out.append(Record(frame=frame, time=time, transport="tcp", src=src,
                          dst=B if src == A else A, protocol="bittorrent", message=value.type,
                          fields={"extension": name} if name else {}, offset=68 + frame,
                          length=len(data), value=value, deviations=deviations_of(value)))
    return out


def _failed(records) -> dict[str, list[int]]:
    from p2pkit.conformance.bittorrent.offline import PeerWireJudge

    judge, found = PeerWireJudge(), {}
    for record in records:
        for rule, ok, _ in judge.judge(record):
            if not ok:
                found.setdefault(rule, []).append(record.frame)
    return found


def _ext(payload: bytes, name: str, ext_id: int = 1) -> dict:
    return {"type": "extended", "extended_id": ext_id, "payload": payload, "extension": name}


@pytest.mark.parametrize("messages, options, expected", [
    # BEP 11: two ut_pex messages 10 s apart (the second is the offence), then 61 s later
    ([(A, _ext(PEX, "ut_pex"), 0.0), (A, _ext(PEX, "ut_pex"), 10.0),
      (A, _ext(PEX, "ut_pex"), 71.0)], {}, {"bep11/rate": [4]}),
    # BEP 11: two added peers, one flag byte
    ([(A, _ext(b"d5:added12:" + bytes(12) + b"7:added.f1:\x00e", "ut_pex"), 0.0)], {},
     {"bep11/flags": [3]}),
    # BEP 6 and 10 and 5: messages of extensions the other side did not enable
    ([(A, {"type": "have_all"}, 0.0)], {"bits_b": 0x5}, {"bep6/enabled-by-both": [3]}),
    ([(A, _ext(b"de", "handshake", 0), 0.0)], {"bits_b": 0x6}, {"bep10/enabled-by-both": [3]}),
    ([(A, {"type": "port", "port": 6881}, 0.0)], {"bits_a": 0x3}, {"bep5/port-message": [3]}),
    # BEP 3: a bitfield after a have; BEP 6: a bitfield after have_none
    ([(A, {"type": "have", "index": 1}, 0.0), (A, {"type": "bitfield", "bitfield": b"\x80"},
                                               0.0)], {}, {"bep3/bitfield/first": [4]}),
    ([(A, {"type": "have_none"}, 0.0), (A, {"type": "bitfield", "bitfield": b"\x80"}, 0.0)],
     {}, {"bep6/have/only-first": [4]}),
    # BEP 3: a piece while choking, never requested, of a piece never announced
    ([(B, {"type": "request", "index": 0, "begin": 0, "length": 4}, 0.0),
      (A, {"type": "have_all"}, 0.0),
      (A, {"type": "piece", "index": 0, "begin": 0, "piece": b"abcd"}, 0.0),
      (A, {"type": "unchoke"}, 0.0),
      (A, {"type": "piece", "index": 0, "begin": 0, "piece": b"abcd"}, 0.0)], {},
     {"bep3/choke/no-data-while-choked": [5], "bep3/piece/requested": [7]}),
    ([(A, {"type": "have_none"}, 0.0), (A, {"type": "unchoke"}, 0.0),
      (B, {"type": "request", "index": 3, "begin": 0, "length": 4}, 0.0),
      (A, {"type": "piece", "index": 3, "begin": 0, "piece": b"abcd"}, 0.0)], {},
     {"bep3/piece/announced": [6]}),
    # BEP 6: an allowed_fast piece may come while choking; a reject of nothing requested
    ([(A, {"type": "have_all"}, 0.0), (A, {"type": "allowed_fast", "index": 2}, 0.0),
      (B, {"type": "request", "index": 2, "begin": 0, "length": 4}, 0.0),
      (A, {"type": "piece", "index": 2, "begin": 0, "piece": b"abcd"}, 0.0),
      (A, {"type": "reject_request", "index": 2, "begin": 0, "length": 4}, 0.0)], {},
     {"bep6/reject/unrequested": [7]}),
    # BEP 52: a length of 3; hashes nobody asked for
    ([(A, {"type": "hash_request", "pieces_root": bytes(32), "base_layer": 0, "index": 0,
           "length": 3, "proof_layers": 0}, 0.0),
      (B, {"type": "hash_reject", "pieces_root": bytes(32), "base_layer": 0, "index": 0,
           "length": 4, "proof_layers": 0}, 0.0)], {},
     {"bep52/hash-request/bounds": [3], "bep52/hashes/correlate": [4]}),
    # BEP 9: total_size other than metadata_size, a short middle piece, a piece beyond
    ([(A, _ext(b"d13:metadata_sizei20000ee", "handshake", 0), 0.0),
      (A, _ext(b"d8:msg_typei1e5:piecei0e10:total_sizei20001ee" + bytes(100), "ut_metadata"),
       0.0),
      (B, _ext(b"d8:msg_typei0e5:piecei5ee", "ut_metadata"), 0.0)], {},
     {"bep9/data/total-size": [4], "bep9/data/piece-size": [4], "bep9/piece-index": [5]}),
])
def test_each_rule_catches_its_offence(messages, options, expected) -> None:
    assert _failed(_records(messages, **options)) == expected
