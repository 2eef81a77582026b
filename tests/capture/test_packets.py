"""Link/IP/TCP/UDP decoding, checked frame by frame against scapy's independent dissection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Raw

from p2pkit.capture.packets import decode_frame
from p2pkit.capture.readers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
    read_frames,
)
from tests.pcap_payloads import CAPTURES

SCAPY_FAILED = object()


def _scapy_view(frame: Frame):
    if frame.linktype != LINKTYPE_ETHERNET:
        return None
    try:
        pkt = Ether(frame.data)
    except Exception:  # scapy's own dissectors choke on some frames: not a verdict on ours
        return SCAPY_FAILED
    ip = pkt[IP] if IP in pkt else pkt[IPv6] if IPv6 in pkt else None
    if ip is None:
        return None
    if TCP in pkt:
        t = pkt[TCP]
        return ("tcp", ip.src, t.sport, ip.dst, t.dport, bytes(t.payload), t.seq, int(t.flags))
    if UDP in pkt:
        u = pkt[UDP]
        return ("udp", ip.src, u.sport, ip.dst, u.dport, bytes(u.payload), 0, 0)
    return None


@pytest.mark.parametrize("name", ["ndpi-bittorrent.pcap", "ndpi-gnutella.pcap",
                                  "ndpi-bittorrent_utp.pcap", "dht-02-bep44-put-get.pcap",
                                  "ndpi-bittorrent_tcp_miss.pcapng"])
def test_agrees_with_scapy_on_every_frame(name):
    checked = 0
    for frame in read_frames(CAPTURES / name):
        ours = decode_frame(frame)
        theirs = _scapy_view(frame)
        if theirs is SCAPY_FAILED:
            continue
        if theirs is None:
            assert ours is None
            continue
        if ours is None:  # we skip IP fragments that scapy shows as TCP/UDP
            continue
        payload = theirs[5]
        if theirs[0] == "tcp" or len(payload) == len(ours.payload):
            assert (ours.transport, ours.src_ip, ours.src_port, ours.dst_ip, ours.dst_port,
                    ours.payload, ours.seq, ours.flags) == theirs
        checked += 1
    assert checked > 50


def _frame(linktype: int, data: bytes) -> Frame:
    return Frame(1, 0.0, linktype, data, len(data), 0)


@pytest.mark.parametrize(
    ("linktype", "layer"),
    [
        (LINKTYPE_ETHERNET, lambda p: Ether() / Dot1Q(vlan=7) / p),
        (LINKTYPE_LINUX_SLL, lambda p: CookedLinux(proto=0x0800 if IP in p else 0x86DD) / p),
        (LINKTYPE_LINUX_SLL2, lambda p: CookedLinuxV2(proto=0x0800 if IP in p else 0x86DD) / p),
        (LINKTYPE_NULL, lambda p: Loopback(type=2 if IP in p else 24) / p),
        (LINKTYPE_RAW, lambda p: p),
    ],
)
@pytest.mark.parametrize("v6", [False, True])
def test_link_types_and_ipv6_extension_headers(linktype, layer, v6):
    if v6:
        ip = IPv6(src="::1", dst="fe80::2") / IPv6ExtHdrDestOpt()
    else:
        ip = IP(src="127.0.0.2", dst="127.0.0.3", options=b"\x01\x01\x01\x00")
    raw = bytes(layer(ip / TCP(sport=6881, dport=51413, seq=7, flags="PA") / Raw(b"\x13BitT")))
    p = decode_frame(_frame(linktype, raw))
    assert p is not None
    assert (p.transport, p.src_port, p.dst_port, p.seq, p.payload) == ("tcp", 6881, 51413, 7,
                                                                        b"\x13BitT")
    assert p.src == ("[::1]:6881" if v6 else "127.0.0.2:6881")


def test_snaplen_cut_payload_is_reported_missing():
    raw = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / TCP() / Raw(b"x" * 100))
    p = decode_frame(Frame(1, 0.0, LINKTYPE_RAW, raw[:80], len(raw), 0))
    assert len(p.payload) == 40 and p.missing == 60


def test_ethernet_padding_is_not_payload():
    raw = bytes(Ether() / IP() / UDP(sport=1, dport=2) / Raw(b"ab")) + b"\x00" * 16
    p = decode_frame(_frame(LINKTYPE_ETHERNET, raw))
    assert p.payload == b"ab" and p.missing == 0


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
                        LINKTYPE_NULL, 12345]), st.binary(max_size=120))
def test_random_frames_never_raise(linktype, data):
    p = decode_frame(_frame(linktype, data))
    assert p is None or p.transport in ("tcp", "udp")
