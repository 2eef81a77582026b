"""Dissecting uTP sent with UDP GSO: a capture on the sending host (or loopback) shows each
``sendmsg`` as one UDP payload holding many uTP packets (tests/data/captures/
bt-11-p2pkit-utp-gso.pcap, recorded by tests/bittorrent/record_utp_gso_capture.py)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.bittorrent.wire.utp import UtpPacket, build_plain_packet, split_segmented
from p2pkit.capture.dissect import dissect
from tests.pcap_payloads import CAPTURES, udp_datagrams

NAME = "bt-11-p2pkit-utp-gso"
PCAP = CAPTURES / f"{NAME}.pcap"
SEEDER = "127.0.0.2"


def test_the_capture_holds_segmentation_offload_sends():
    payloads = [payload for _, _, payload in udp_datagrams(PCAP.name)]
    coalesced = [p for p in payloads if len(p) > 1472]
    assert len(coalesced) >= 3  # GSO sends, seen before the kernel cut them
    assert max(len(split_segmented(p)) for p in coalesced) == 44  # 44 × 1457 bytes
    for payload in coalesced:
        packets = split_segmented(payload)
        assert len(packets) > 1 and b"".join(packets) == payload
        assert all(len(p) <= 1472 for p in packets)
        parsed = [UtpPacket.parse(p) for p in packets]
        assert [p.seq_nr for p in parsed] == [(parsed[0].seq_nr + i) & 0xFFFF
                                              for i in range(len(parsed))]


def test_every_piece_comes_out_of_the_coalesced_payloads():
    records = list(dissect(PCAP))
    names = Counter((r.protocol, r.message) for r in records)
    assert names[("bittorrent", "undecoded")] == 0
    meta = Metainfo.parse((CAPTURES.parent / "torrents" / f"{NAME}.torrent").read_bytes())
    blocks: dict[int, dict[int, bytes]] = {}
    for r in records:
        if r.protocol == "bittorrent" and r.message == "piece":
            assert r.src.startswith(SEEDER) and r.transport == "utp"
            blocks.setdefault(r.value.index, {})[r.value.begin] = bytes(r.value.piece)
    assert len(blocks) == meta.piece_count
    for index, parts in blocks.items():
        assert hashlib.sha1(b"".join(parts[b] for b in sorted(parts))).digest() == \
            meta.pieces[index]
    # one bt-utp record per packet on the wire, not per captured payload
    udp = [payload for _, _, payload in udp_datagrams(PCAP.name)]
    wire = sum(len(split_segmented(p)) for p in udp)
    assert sum(n for (proto, _), n in names.items() if proto == "bt-utp") == wire > len(udp)


@settings(deadline=None)  # no timing in tests: a loaded machine is slow
@given(st.integers(1, 40), st.integers(1, 1452), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.randoms(use_true_random=False))
def test_a_run_of_packets_splits_back(count, size, seq, ident, rng):
    """What the socket core hands one ``sendmsg`` (equal-size ST_DATA packets, maybe a
    shorter last one, maybe an ST_STATE at the end) splits back exactly."""
    packets = [build_plain_packet("st_data", ident, 0, 0, 1 << 20, (seq + i) & 0xFFFF, 5,
                                  rng.randbytes(size)) for i in range(count)]
    if rng.random() < 0.5:
        packets.append(build_plain_packet("st_state", ident, 0, 0, 1 << 20,
                                          (seq + count) & 0xFFFF, 5, b""))
    assert split_segmented(b"".join(packets)) == packets


@settings(deadline=None)  # no timing in tests: a loaded machine is slow
@given(st.binary(min_size=21, max_size=4000))
def test_one_packet_stays_whole(payload):
    packet = build_plain_packet("st_data", 0x1234, 0, 0, 1 << 20, 77, 5, payload)
    parts = split_segmented(packet)
    assert b"".join(parts) == packet
    # a cut needs headers of the same connection at every multiple of the cut in the payload
    assert parts == [packet] or all(p[2:4] == b"\x12\x34" for p in parts)


def test_a_large_genuine_datagram_is_not_cut():
    """With ``--utp-mtu interface`` datagrams are genuinely large: not cut."""
    rng = random.Random(4)
    for _ in range(50):
        packet = build_plain_packet("st_data", rng.randrange(0x10000), 0, 0, 1 << 20,
                                    rng.randrange(0x10000), 5, rng.randbytes(60_000))
        assert split_segmented(packet) == [packet]
