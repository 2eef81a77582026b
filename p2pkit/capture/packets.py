"""Link, network and transport headers of captured frames, down to TCP/UDP payloads.

Layouts, each a construct schema with a struct fast path derived from it
(:class:`~p2pkit.schema.FixedLayout`):

* Ethernet II (IEEE 802.3) with 802.1Q/802.1ad VLAN tags;
* Linux cooked capture v1 (SLL, 16 bytes) and v2 (SLL2, 20 bytes) (tcpdump.org linktypes);
* BSD/OpenBSD loopback (4-byte address family); raw IP;
* IPv4 (RFC 791 §3.1) with options, IPv6 (RFC 8200 §3) with extension headers (§4);
* TCP (RFC 9293 §3.1) and UDP (RFC 768).

:func:`decode_frame` turns a :class:`~p2pkit.capture.readers.Frame` into a :class:`Packet`
(addresses, ports, TCP sequence state, payload), or ``None`` for anything that is not TCP/UDP
over IP. Fragments are not reassembled (BitTorrent, KRPC and Gnutella datagrams fit one packet).

>>> from p2pkit.capture.readers import Frame, LINKTYPE_RAW
>>> ip = bytes.fromhex("4500001f00004000401100007f0000017f000002")
>>> udp = bytes.fromhex("1ae11ae2000bfe00") + b"abc"
>>> p = decode_frame(Frame(1, 0.0, LINKTYPE_RAW, ip + udp, 31, 0))
>>> (p.transport, p.src, p.dst, p.payload)
('udp', '127.0.0.1:6881', '127.0.0.2:6882', b'abc')
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from construct import Bytes, Int8ub, Int16ub, Int32ub, Int32ul, Struct

from p2pkit.capture.readers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
)
from p2pkit.schema import FixedLayout, consecutive_layout

__all__ = ["EndpointPacket", "Packet", "decode_frame", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK"]

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)
IPPROTO_TCP = 6
IPPROTO_UDP = 17
#: IPv6 extension headers that are skipped to reach the transport (RFC 8200 §4).
IPV6_EXTENSIONS = {0, 43, 60, 135, 139, 140}
IPV6_FRAGMENT = 44

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

# fmt: off
#: IEEE 802.3 Ethernet II header.
EthernetHeader = Struct("destination" / Bytes(6), "source" / Bytes(6), "ethertype" / Int16ub)
#: IEEE 802.1Q tag after the TPID: priority/DEI/VLAN id, then the inner ethertype.
VlanTag = Struct("tci" / Int16ub, "ethertype" / Int16ub)
#: Linux cooked capture v1 (LINKTYPE_LINUX_SLL).
SllHeader = Struct(
    "packet_type" / Int16ub, "arphrd_type" / Int16ub, "address_length" / Int16ub,
    "address" / Bytes(8), "protocol" / Int16ub,
)
#: Linux cooked capture v2 (LINKTYPE_LINUX_SLL2).
Sll2Header = Struct(
    "protocol" / Int16ub, "reserved" / Int16ub, "interface_index" / Int32ub,
    "arphrd_type" / Int16ub, "packet_type" / Int8ub, "address_length" / Int8ub,
    "address" / Bytes(8),
)
#: BSD loopback: the address family in the capturing host's byte order (little-endian here).
NullHeaderLE = Struct("family" / Int32ul)
NullHeaderBE = Struct("family" / Int32ub)
#: RFC 791 §3.1, byte-aligned: version and IHL share the first byte (4 bits each); flags and
#: fragment offset share a 16-bit word (3 + 13 bits).
Ipv4Header = Struct(
    "version_ihl" / Int8ub, "type_of_service" / Int8ub, "total_length" / Int16ub,
    "identification" / Int16ub, "flags_fragment_offset" / Int16ub, "time_to_live" / Int8ub,
    "protocol" / Int8ub, "header_checksum" / Int16ub, "source" / Bytes(4),
    "destination" / Bytes(4),
)
#: RFC 8200 §3: version (4 bits), traffic class (8), flow label (20) in the first word.
Ipv6Header = Struct(
    "version_class_flow" / Int32ub, "payload_length" / Int16ub, "next_header" / Int8ub,
    "hop_limit" / Int8ub, "source" / Bytes(16), "destination" / Bytes(16),
)
#: RFC 8200 §4: every extension header starts with Next Header and Hdr Ext Len (8-octet units).
Ipv6ExtensionHeader = Struct("next_header" / Int8ub, "length" / Int8ub)
#: RFC 9293 §3.1: data offset (4 bits), reserved (4), control bits (8) share one 16-bit word.
TcpHeader = Struct(
    "source_port" / Int16ub, "destination_port" / Int16ub, "sequence_number" / Int32ub,
    "acknowledgment_number" / Int32ub, "offset_flags" / Int16ub, "window" / Int16ub,
    "checksum" / Int16ub, "urgent_pointer" / Int16ub,
)
#: RFC 768.
UdpHeader = Struct(
    "source_port" / Int16ub, "destination_port" / Int16ub, "length" / Int16ub,
    "checksum" / Int16ub,
)
# fmt: on

_ETH = FixedLayout(EthernetHeader).struct
_VLAN = FixedLayout(VlanTag).struct
_SLL = FixedLayout(SllHeader).struct
_SLL2 = FixedLayout(Sll2Header).struct
_NULL_LE = FixedLayout(NullHeaderLE).struct
_NULL_BE = FixedLayout(NullHeaderBE).struct
_IPV4 = FixedLayout(Ipv4Header).struct
_IPV6 = FixedLayout(Ipv6Header).struct
_IPV6_EXT = FixedLayout(Ipv6ExtensionHeader).struct
_TCP = FixedLayout(TcpHeader).struct
_UDP = FixedLayout(UdpHeader).struct

#: Ethernet II, IPv4 without options and TCP in one unpack (the dissector's common frame):
#: ethertype; version_ihl, total_length, flags_fragment_offset, protocol, source, destination;
#: source_port, destination_port, sequence_number, acknowledgment_number, offset_flags.
ETHERNET_IPV4_TCP = consecutive_layout(
    (FixedLayout(EthernetHeader), ("ethertype",)),
    (FixedLayout(Ipv4Header), ("version_ihl", "total_length", "flags_fragment_offset",
                               "protocol", "source", "destination")),
    (FixedLayout(TcpHeader), ("source_port", "destination_port", "sequence_number",
                              "acknowledgment_number", "offset_flags")),
)
#: UDP's source_port, destination_port and length, unpacked where the UDP header starts.
UDP_PORTS_LENGTH = consecutive_layout((FixedLayout(UdpHeader), ("source_port",
                                                                "destination_port", "length")))

# BSD AF_INET6 differs by OS (24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin); AF_INET is 2.
_NULL_FAMILIES = {2: ETHERTYPE_IPV4, 24: ETHERTYPE_IPV6, 28: ETHERTYPE_IPV6, 30: ETHERTYPE_IPV6}


@dataclass(slots=True)
class Packet:
    """A TCP or UDP packet out of a frame: the part the dissector needs."""

    frame: int
    time: float
    transport: str  # "tcp" or "udp"
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes
    #: TCP only: sequence number, acknowledgment number and control bits (FIN/SYN/RST/…).
    seq: int = 0
    ack: int = 0
    flags: int = 0
    #: Bytes the transport carried but the capture's snaplen cut off (a known gap).
    missing: int = 0

    @property
    def src(self) -> str:
        return _endpoint(self.src_ip, self.src_port)

    @property
    def dst(self) -> str:
        return _endpoint(self.dst_ip, self.dst_port)


@dataclass(slots=True)
class EndpointPacket(Packet):
    """A :class:`Packet` whose ``src`` and ``dst`` texts were made once (the dissector's UDP
    path keeps one text per endpoint, so a datagram formats none): the same values the
    properties give, held in slots."""

    src: str = ""  # type: ignore[assignment]
    dst: str = ""  # type: ignore[assignment]


_ntop = socket.inet_ntop


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _network(linktype: int, data: bytes) -> tuple[int, int] | None:
    """(ethertype, offset of the network header), or None for other link contents."""
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        ethertype = _ETH.unpack_from(data)[2]
        offset = 14
        while ethertype in ETHERTYPE_VLAN and len(data) >= offset + 4:
            ethertype = _VLAN.unpack_from(data, offset)[1]
            offset += 4
        return ethertype, offset
    if linktype == LINKTYPE_LINUX_SLL:
        return (_SLL.unpack_from(data)[4], 16) if len(data) >= 16 else None
    if linktype == LINKTYPE_LINUX_SLL2:
        return (_SLL2.unpack_from(data)[0], 20) if len(data) >= 20 else None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return None
        family = (_NULL_BE if linktype == LINKTYPE_LOOP else _NULL_LE).unpack_from(data)[0]
        if family not in _NULL_FAMILIES:  # a big-endian capture host
            family = _NULL_BE.unpack_from(data)[0]
        ethertype = _NULL_FAMILIES.get(family)
        return (ethertype, 4) if ethertype else None
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return None
        version = data[0] >> 4
        return (ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else 0), 0
    return None


def decode_frame(frame: Frame) -> Packet | None:
    """The TCP or UDP packet in ``frame``, or ``None`` (other protocols, fragments, junk).

    Never raises on malformed frames: what cannot be decoded is simply not a packet.
    """
    data = frame.data
    found = _network(frame.linktype, data)
    if found is None:
        return None
    ethertype, off = found
    missing = max(0, frame.original_length - len(data))
    if ethertype == ETHERTYPE_IPV4:
        if len(data) < off + 20:
            return None
        (vihl, _, total, _, frag, _, proto, _, src, dst) = _IPV4.unpack_from(data, off)
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or frag & 0x3FFF:  # not v4, bad IHL, or a fragment
            return None
        end = off + total if total >= ihl else len(data)
        if end > len(data):
            missing = end - len(data)
            end = len(data)
        else:
            missing = 0  # Ethernet padding after the IP datagram is not payload
        start = off + ihl
        src_ip = _ntop(socket.AF_INET, src)
        dst_ip = _ntop(socket.AF_INET, dst)
    elif ethertype == ETHERTYPE_IPV6:
        if len(data) < off + 40:
            return None
        (vcf, plen, proto, _, src, dst) = _IPV6.unpack_from(data, off)
        if vcf >> 28 != 6:
            return None
        start = off + 40
        end = start + plen
        if end > len(data):
            missing = end - len(data)
            end = len(data)
        else:
            missing = 0
        while proto in IPV6_EXTENSIONS or proto == IPV6_FRAGMENT:
            if proto == IPV6_FRAGMENT or start + 2 > end:
                return None
            proto, length = _IPV6_EXT.unpack_from(data, start)
            start += (length + 1) * 8
        src_ip = _ntop(socket.AF_INET6, src)
        dst_ip = _ntop(socket.AF_INET6, dst)
    else:
        return None
    if proto == IPPROTO_TCP:
        if end - start < 20:
            return None
        sport, dport, seq, ack, offset_flags, _, _, _ = _TCP.unpack_from(data, start)
        header = (offset_flags >> 12) * 4
        if header < 20 or start + header > end:
            return None
        return Packet(frame.number, frame.time, "tcp", src_ip, sport, dst_ip, dport,
                      data[start + header:end], seq, ack, offset_flags & 0x1FF, missing)
    if proto == IPPROTO_UDP:
        if end - start < 8:
            return None
        sport, dport, length, _ = _UDP.unpack_from(data, start)
        stop = start + length if 8 <= length <= end - start + missing else end
        return Packet(frame.number, frame.time, "udp", src_ip, sport, dst_ip, dport,
                      data[start + 8:min(stop, end)], missing=max(0, stop - end))
    return None



