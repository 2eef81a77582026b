"""scapy integration: p2pkit's schemas as scapy layers, and dissection of scapy packets.

The layers are thin, as DESIGN.md asks: each holds one :class:`SchemaField` that parses and
builds with p2pkit's construct schema (the wire format is never defined twice), a
``mysummary()`` and a field listing in ``show()``. One dispatcher layer, :class:`BtDatagram`,
is bound to the usual BitTorrent UDP ports and picks uTP, KRPC or the UDP tracker protocol by
content (they share ports in practice)::

    >>> from scapy.layers.inet import IP, UDP
    >>> from p2pkit.capture.scapy_layers import UtpLayer, register
    >>> register()
    >>> pkt = IP(bytes(IP() / UDP(sport=6881, dport=6881) / bytes.fromhex(
    ...     "21015302070760ecf61114480000f00049c9e7f7000401000000")))
    >>> pkt[UtpLayer].mysummary()
    'uTP st_state connection_id=21250 seq_nr=18889 ack_nr=59383'

:func:`dissect_packets` runs the full dissector (TCP reassembly included) over packets from
``rdpcap`` or ``sniff``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from scapy.fields import Field
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether, Loopback
from scapy.packet import NoPayload, Packet, Raw, bind_layers

from p2pkit.bittorrent.tracker.udp import PROTOCOL_ID, UdpTrackerRequest, UdpTrackerResponse
from p2pkit.bittorrent.wire.messages import PeerMessageLenient
from p2pkit.bittorrent.wire.utp import UtpPacket, looks_like_utp
from p2pkit.capture.readers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
)
from p2pkit.capture.record import Record, json_value
from p2pkit.dht.krpc import KrpcMessageLenient
from p2pkit.errors import BuildError, ParseError
from p2pkit.gnutella.descriptors import DescriptorLenient

__all__ = ["BtDatagram", "GnutellaDescriptorLayer", "KrpcLayer", "PeerMessageLayer",
           "SchemaField", "UdpTrackerLayer", "UtpLayer", "dissect_packets", "register"]

#: Ports the dispatcher layer is bound to by :func:`register` (BitTorrent's customary ones).
DEFAULT_UDP_PORTS = (*range(6881, 6890), 6969, 1337, 2710)


class SchemaField(Field):
    """A scapy field whose value is a p2pkit construct schema's parse of the remaining bytes."""

    __slots__ = ["schema"]

    def __init__(self, name: str, schema: Any) -> None:
        self.schema = schema
        super().__init__(name, None)

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, Any]:
        return b"", self.schema.parse(s)

    def addfield(self, pkt: Packet, s: bytes, val: Any) -> bytes:
        if val is None:
            return s
        return s + self.schema.build(val)

    def i2len(self, pkt: Packet, x: Any) -> int:
        return 0 if x is None else len(self.schema.build(x))

    def i2repr(self, pkt: Packet, x: Any) -> str:
        if x is None:
            return "None"
        doc = json_value(x)
        if isinstance(doc, dict):
            return " ".join(f"{k}={v}" for k, v in doc.items())
        return str(doc)


class _SchemaLayer(Packet):
    """Shared behaviour: show() lists the parsed fields one per line."""

    def _show_or_dump(self, dump: bool = False, indent: int = 3, lvl: str = "",
                      label_lvl: str = "", first_call: bool = True) -> str | None:
        lines = [f"{label_lvl}###[ {self.name} ]###"]
        value = json_value(self.message) if self.message is not None else {}
        for key, val in (value.items() if isinstance(value, dict) else []):
            lines.append(f"{label_lvl}{lvl}  {key:<16}= {val}")
        text = "\n".join(lines)
        rest = None
        if not isinstance(self.payload, NoPayload):
            rest = self.payload._show_or_dump(dump, indent, lvl, label_lvl, first_call=False)
        text = text + ("\n" + rest if rest else "")
        if dump:
            return text
        if first_call:
            print(text)
            return None
        return text


class UtpLayer(_SchemaLayer):
    """uTP (BEP 29), fields from :data:`p2pkit.bittorrent.wire.utp.UtpPacket`."""

    name = "uTP"
    fields_desc = [SchemaField("message", UtpPacket)]

    def mysummary(self) -> str:
        m = self.message
        return (f"uTP {m.type} connection_id={m.connection_id} seq_nr={m.seq_nr} "
                f"ack_nr={m.ack_nr}")

    def answers(self, other: Packet) -> bool:
        return isinstance(other, UtpLayer) and other.message.seq_nr == self.message.ack_nr


class UdpTrackerLayer(_SchemaLayer):
    """UDP tracker protocol (BEP 15) request, fields from ``UdpTrackerRequest``."""

    name = "BT UDP tracker request"
    fields_desc = [SchemaField("message", UdpTrackerRequest)]

    def mysummary(self) -> str:
        return f"UDP tracker {self.message.action} request tid={self.message.transaction_id}"


class UdpTrackerResponseLayer(_SchemaLayer):
    """UDP tracker protocol (BEP 15) response, fields from ``UdpTrackerResponse``."""

    name = "BT UDP tracker response"
    fields_desc = [SchemaField("message", UdpTrackerResponse)]

    def mysummary(self) -> str:
        return f"UDP tracker {self.message.action} response tid={self.message.transaction_id}"

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, UdpTrackerLayer)
                and other.message.transaction_id == self.message.transaction_id)


def _tracker_request(data: bytes) -> bool:
    return len(data) >= 16 and int.from_bytes(data[:8], "big") == PROTOCOL_ID or (
        len(data) >= 16 and int.from_bytes(data[8:12], "big") in (1, 2))


class BtDatagram(Packet):
    """Dispatcher bound to BitTorrent UDP ports: picks the layer by content."""

    name = "BitTorrent datagram"

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type:
        data = _pkt or b""
        candidates: list[type] = []
        if looks_like_utp(data):
            candidates.append(UtpLayer)
        if _tracker_request(data):
            candidates.append(UdpTrackerLayer)
        if len(data) >= 8 and int.from_bytes(data[:4], "big") <= 3:
            candidates.append(UdpTrackerResponseLayer)
        for layer in DATAGRAM_LAYERS:
            if layer.matches(data):
                candidates.insert(0, layer)
        for layer in candidates:
            schema = layer.fields_desc[0].schema
            try:
                schema.parse(data)
            except (ParseError, BuildError):
                continue
            return layer
        return Raw


class KrpcLayer(_SchemaLayer):
    """KRPC (BEP 5), fields from :data:`p2pkit.dht.krpc.KrpcMessageLenient`."""

    name = "BT DHT (KRPC)"
    fields_desc = [SchemaField("message", KrpcMessageLenient)]

    @classmethod
    def matches(cls, data: bytes) -> bool:
        return data[:1] == b"d" and b"1:y1:" in data

    def mysummary(self) -> str:
        m = self.message
        kind = {"q": "query", "r": "response", "e": "error"}.get(m.y, m.y)
        method = f" {m.method}" if m.method else ""
        return f"KRPC {kind}{method} t={m.t.hex()}"

    def answers(self, other: Packet) -> bool:
        return (isinstance(other, KrpcLayer) and other.message.y == "q"
                and self.message.y in ("r", "e") and other.message.t == self.message.t)


#: Datagram layers with a ``matches(data)`` classmethod, tried before the others.
DATAGRAM_LAYERS: list[Any] = [KrpcLayer]


class FramedField(SchemaField):
    """A :class:`SchemaField` for stream messages: it takes one length-delimited message (the
    length read by ``frame_length``) and leaves the rest for the next layer."""

    __slots__ = ["frame_length"]

    def __init__(self, name: str, schema: Any, frame_length: Any) -> None:
        self.frame_length = frame_length
        super().__init__(name, schema)

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, Any]:
        n = self.frame_length(s)
        if n is None or n > len(s):
            raise ParseError("incomplete message in this segment", protocol=self.schema.protocol)
        return s[n:], self.schema.parse(s[:n])


def _peer_message_length(data: bytes) -> int | None:
    """BEP 3: a four-byte big-endian length prefix."""
    return 4 + int.from_bytes(data[:4], "big") if len(data) >= 4 else None


def _descriptor_length(data: bytes) -> int | None:
    """Gnutella descriptor header: 23 bytes, payload length little-endian at offset 19."""
    return 23 + int.from_bytes(data[19:23], "little") if len(data) >= 23 else None


class _StreamLayer(_SchemaLayer):
    """A stream message layer for a segment that starts at a message boundary; the bytes after
    the message are another message. Streams with handshakes, messages split across segments
    and lost segments need the full dissector: :func:`dissect_packets`."""

    def guess_payload_class(self, payload: bytes) -> type:
        return type(self) if payload else Raw


class PeerMessageLayer(_StreamLayer):
    """One BitTorrent peer-wire message (BEP 3), fields from ``PeerMessageLenient``."""

    name = "BitTorrent"
    fields_desc = [FramedField("message", PeerMessageLenient, _peer_message_length)]

    def mysummary(self) -> str:
        return f"BitTorrent {self.message.type}"


class GnutellaDescriptorLayer(_StreamLayer):
    """One Gnutella descriptor, fields from ``DescriptorLenient``."""

    name = "Gnutella"
    fields_desc = [FramedField("message", DescriptorLenient, _descriptor_length)]

    def mysummary(self) -> str:
        m = self.message
        return f"Gnutella {m.type} ttl={m.ttl} hops={m.hops}"


def register(udp_ports: Iterable[int] = DEFAULT_UDP_PORTS,
             bittorrent_tcp_ports: Iterable[int] = (),
             gnutella_tcp_ports: Iterable[int] = ()) -> None:
    """Bind :class:`BtDatagram` to ``udp_ports`` (either direction) in scapy, and the stream
    layers to the TCP ports given (messages only: handshakes are not decoded by them)."""
    for port in udp_ports:
        bind_layers(UDP, BtDatagram, dport=port)
        bind_layers(UDP, BtDatagram, sport=port)
    for layer, ports in ((PeerMessageLayer, bittorrent_tcp_ports),
                         (GnutellaDescriptorLayer, gnutella_tcp_ports)):
        for port in ports:
            bind_layers(TCP, layer, dport=port)
            bind_layers(TCP, layer, sport=port)


def _frame(number: int, pkt: Packet) -> Frame | None:
    if isinstance(pkt, Ether):
        linktype = LINKTYPE_ETHERNET
    elif isinstance(pkt, CookedLinux):
        linktype = LINKTYPE_LINUX_SLL
    elif isinstance(pkt, Loopback):
        linktype = LINKTYPE_NULL
    elif pkt.name in ("IP", "IPv6") or isinstance(pkt, IPv6):
        linktype = LINKTYPE_RAW
    else:
        return None
    data = bytes(pkt)
    when = float(getattr(pkt, "time", 0.0) or time.time())
    wirelen = getattr(pkt, "wirelen", None) or len(data)
    return Frame(number, when, linktype, data, wirelen, 0)


def dissect_packets(packets: Iterable[Packet], **options: Any) -> Iterator[Record]:
    """Dissect scapy packets (from ``rdpcap``, ``sniff`` …) with p2pkit's full pipeline.

    Packets are numbered from 1 in the order given; link layers Ethernet, Linux cooked,
    loopback and raw IP are understood.
    """
    from p2pkit.capture.dissect import Dissector
    from p2pkit.capture.packets import decode_frame

    dissector = Dissector(**options)
    for number, pkt in enumerate(packets, 1):
        frame = _frame(number, pkt)
        if frame is None:
            continue
        decoded = decode_frame(frame)
        if decoded is not None:
            yield from dissector.packet(decoded)
    yield from dissector.finish()
