"""Dissecting MSE/PE connections with a key log (``p2pkit dissect --keylog``), on the committed
captures of p2pkit downloading from libtorrent and seeding to transmission over RC4
(tests/data/captures/bt-09-…-mse.pcap, bt-10-…-mse.pcap, README-mse.md)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter

import pytest

from p2pkit.bittorrent.mse.keylog import KeyLog, format_entry, parse_keylog
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.capture.dissect import dissect
from p2pkit.capture.render import render_tree
from p2pkit.cli import main
from tests.pcap_payloads import CAPTURES, tcp_streams

NAME = "bt-09-p2pkit-leech-libtorrent-mse"
PCAP = CAPTURES / f"{NAME}.pcap"
KEYLOG = CAPTURES / f"{NAME}.keylog"
OURS, LIBTORRENT = "127.0.0.3", "127.0.0.2"
#: capture name -> (address of the side that sends pieces, of the one that requests them).
CAPTURED = {NAME: (LIBTORRENT, OURS),
            "bt-10-p2pkit-seed-transmission-mse": (OURS, "127.0.0.2")}


def records(keylog: KeyLog | None, name: str = NAME):
    secrets = {"bittorrent": keylog} if keylog is not None else None
    return [r for r in dissect(CAPTURES / f"{name}.pcap", secrets=secrets)
            if r.protocol == "bittorrent"]


def keys(name: str = NAME) -> KeyLog:
    return parse_keylog((CAPTURES / f"{name}.keylog").read_text())


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_key_log_decrypts_every_peer_wire_message(name):
    seeder, leecher = CAPTURED[name]
    got = records(keys(name), name)
    torrent = CAPTURES.parent / "torrents" / f"{name}.torrent"
    meta = Metainfo.parse(torrent.read_bytes())
    names = Counter(r.message for r in got)
    assert names["undecoded"] == 0
    assert names["mse_preamble"] == 2 and names["handshake"] == 2
    assert all(r.fields["info_hash"] == meta.info_hash.hex()
               for r in got if r.message == "handshake")
    # every piece of the torrent came out of the RC4 stream and passes its SHA-1
    blocks: dict[int, dict[int, bytes]] = {}
    for r in got:
        if r.message == "piece":
            assert r.src.startswith(seeder)
            blocks.setdefault(r.value.index, {})[r.value.begin] = bytes(r.value.piece)
    assert len(blocks) == meta.piece_count
    for index, parts in blocks.items():
        data = b"".join(parts[b] for b in sorted(parts))
        assert hashlib.sha1(data).digest() == meta.pieces[index]
    requests = [r for r in got if r.message == "request"]
    assert requests and all(r.src.startswith(leecher) for r in requests)
    assert sum(r.fields["length"] for r in requests) >= meta.total_length


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_every_decrypted_byte_is_accounted_for(name):
    """The preamble plus the decoded messages cover each direction's captured bytes."""
    got = records(keys(name), name)
    for (src, _dst), data in tcp_streams(f"{name}.pcap").items():
        mine = [r for r in got if r.src == f"{src[0]}:{src[1]}"]
        assert sum(r.length for r in mine) == len(data)


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_preambles_show_the_key_exchange(name):
    got = records(keys(name), name)
    pre = {r.fields["side"]: r for r in got if r.message == "mse_preamble"}
    ours, theirs = pre["initiator"], pre["responder"]  # p2pkit dialled in both captures
    assert ours.src.startswith(OURS) and theirs.src.startswith("127.0.0.2")
    assert ours.fields["encryption"] == theirs.fields["encryption"] == "rc4"
    # Ya + PadA + 40 bytes of hashes + VC, crypto_provide, len(PadC), PadC, len(IA)
    assert ours.length == 96 + ours.fields["pad"] + 40 + 16 + ours.fields["pad_c"]
    assert ours.fields["initial_payload"] == 68  # p2pkit sends its handshake as IA
    # Yb + PadB + VC, crypto_select, len(PadD), PadD
    assert theirs.length == 96 + theirs.fields["pad"] + 14 + theirs.fields["pad_d"]
    tree = render_tree(next(r for r in got if r.message == "handshake"), 0.0)
    assert "info_hash" in tree and "peer_id" in tree


def test_without_the_key_log_the_streams_stay_labelled_encrypted():
    got = records(None)
    assert {r.message for r in got} == {"undecoded"}
    assert {r.fields["reason"] for r in got} == {"encrypted"}


def test_a_wrong_key_leaves_the_stream_encrypted():
    entry = next(iter(parse_keylog(KEYLOG.read_text())._by_pair.values()))
    wrong = dataclasses.replace(entry, secret=bytes(95) + b"\x01")
    got = records(KeyLog([wrong]))
    assert {r.message for r in got} == {"undecoded"}
    details = {r.fields.get("detail", "") for r in got}
    assert any("not found within 512" in d for d in details), details
    assert format_entry(entry) == KEYLOG.read_text().strip()


def test_cli_keylog(capsys, tmp_path):
    status = main(["dissect", str(PCAP), "--keylog", str(KEYLOG), "--message", "handshake"])
    out, err = capsys.readouterr()
    assert status == 0 and out.count(" bittorrent handshake ") == 2
    bad = tmp_path / "bad.keylog"
    bad.write_text("# fine\nMSE_SECRET 1.2.3.4:5 6.7.8.9:10 zz\n")
    status = main(["dissect", str(PCAP), "--keylog", str(bad)])
    out, err = capsys.readouterr()
    assert status != 0 and out == "" and len(err.strip().splitlines()) == 1
    assert "offset 7" in err
    status = main(["dissect", str(PCAP), "--keylog", str(tmp_path / "missing")])
    out, err = capsys.readouterr()
    assert status != 0 and len(err.strip().splitlines()) == 1


# -- MSE over uTP (BEP 29): a synthetic capture of two p2pkit MSE cores ------------------------


def _utp_capture(path, entry_out: list) -> None:
    """Two MseConnection cores talk over uTP (SYN, STATE, then DATA packets carrying each
    write), written as a pcap with scapy; ``entry_out`` receives the key log entry."""
    import random

    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from p2pkit.bittorrent.mse.connection import MseConnection, MseEstablished, events
    from p2pkit.bittorrent.mse.keylog import KeyLogEntry
    from p2pkit.bittorrent.wire.utp import UtpPacket

    ih = hashlib.sha1(b"utp").digest()
    hs = b"\x13BitTorrent protocol" + bytes(8) + ih + b"-PK0100-utputputputp"
    a = MseConnection.initiator(info_hash=ih, rng=random.Random(5), now=0.0)
    b = MseConnection.responder(info_hashes=[ih], rng=random.Random(6), now=0.0)
    ends = {"a": ("10.0.0.1", 7000), "b": ("10.0.0.2", 6881)}
    cid, seq = 3000, {"a": 100, "b": 500}
    frames = []

    def packet(side, kind, payload=b"", seq_nr=0, ack_nr=0):
        src, dst = ends[side], ends["b" if side == "a" else "a"]
        conn = cid if (side == "b" or kind == "st_syn") else cid + 1
        raw = UtpPacket.build(dict(type=kind, version=1, connection_id=conn,
                                   timestamp_microseconds=len(frames),
                                   timestamp_difference_microseconds=0, wnd_size=65536,
                                   seq_nr=seq_nr, ack_nr=ack_nr, extensions=[],
                                   payload=payload))
        frames.append(Ether() / IP(src=src[0], dst=dst[0]) / UDP(sport=src[1], dport=dst[1])
                      / raw)

    def data(side, wire):
        for i in range(0, len(wire), 900):
            packet(side, "st_data", wire[i:i + 900], seq_nr=seq[side])
            seq[side] += 1

    packet("a", "st_syn", seq_nr=seq["a"])
    seq["a"] += 1
    packet("b", "st_state", seq_nr=seq["b"], ack_nr=seq["a"] - 1)
    a.send_payload(hs)
    for _ in range(4):
        out = a.data_to_send()
        data("a", out)
        b.receive_data(out, 0.0) if out else None
        out = b.data_to_send()
        data("b", out)
        a.receive_data(out, 0.0) if out else None
    b.send_payload(hs + bytes.fromhex("0000000102"))  # handshake, interested
    data("b", b.data_to_send())
    est = [e for e in events(b) if isinstance(e, MseEstablished)][0]
    entry_out.append(KeyLogEntry(initiator="10.0.0.1:7000", responder="10.0.0.2:6881",
                                 info_hash=ih, secret=est.secret, method=est.method))
    wrpcap(str(path), frames)


def test_key_log_decrypts_mse_over_utp(tmp_path):
    pcap = tmp_path / "mse-utp.pcap"
    entries: list = []
    _utp_capture(pcap, entries)
    plain = [r for r in dissect(pcap) if r.protocol == "bittorrent"]
    assert {r.fields.get("reason") for r in plain} == {"encrypted"}
    got = [r for r in dissect(pcap, secrets={"bittorrent": KeyLog(entries)})
           if r.protocol == "bittorrent"]
    names = [(r.transport, r.message) for r in got]
    assert names.count(("utp", "mse_preamble")) == 2
    assert names.count(("utp", "handshake")) == 2 and ("utp", "interested") in names
    assert not [r for r in got if r.message == "undecoded"]
