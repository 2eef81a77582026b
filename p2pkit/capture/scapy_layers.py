"""scapy integration: p2pkit's schemas as scapy layers, and dissection of scapy packets.

The layers are thin, as DESIGN.md asks: each holds one ``SchemaField`` that parses and
builds with p2pkit's construct schema (the wire format is never defined twice), a
``mysummary()`` and a field listing in ``show()``. This module is protocol-blind: it holds the
shared pieces (``SchemaField``, ``FramedField``, ``SchemaLayer``,
``StreamLayer``) and :func:`register`, which binds every layer the registry's protocols
list (their ``scapy`` entries). One dispatcher layer, ``P2PDatagram``, is bound to the
usual BitTorrent UDP ports and picks a registered datagram layer by content (uTP, KRPC and the
UDP tracker protocol share ports in practice). Peers on other ports are found by content too, as
the dissector and tshark's heuristics find them: :func:`register` hooks scapy's
``guess_payload_class`` of UDP and TCP so that a payload scapy would leave as ``Raw`` is offered
to the registered layers' ``matches`` (datagrams) and ``StreamLayer.matches_segment``
(TCP segments made of whole messages); :func:`unregister` puts scapy back as it was::

    >>> from scapy.layers.inet import IP, UDP
    >>> from p2pkit.bittorrent.scapy_layers import UtpLayer
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
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from scapy.fields import Field
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether, Loopback
from scapy.packet import NoPayload, Packet, Raw, bind_layers, split_layers

from p2pkit import registry
from p2pkit.capture.readers import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    Frame,
)
from p2pkit.capture.record import Record, json_value
from p2pkit.errors import BuildError, ParseError

__all__ = ["FramedField", "P2PDatagram", "SchemaField", "SchemaLayer", "StreamLayer",
           "datagram_layers", "dissect_packets", "register", "unregister"]

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
        doc = json_value(x, "", getattr(pkt, "summarised", frozenset()))
        if isinstance(doc, dict):
            return " ".join(f"{k}={v}" for k, v in doc.items())
        return str(doc)


class SchemaLayer(Packet):
    """A layer whose one field is a schema's parse: ``show()`` lists the parsed fields.

    A datagram layer defines ``matches(data) -> bool`` (a cheap test the dispatcher runs
    before parsing); a stream layer derives from ``StreamLayer``. ``summarised``: binary
    fields shown as length + SHA-1 whatever their size (as in the dissector's records).
    """

    summarised: frozenset[str] = frozenset()
    #: The registry protocol whose datagram decoder makes this layer's :meth:`record`, so that
    #: ``show()`` and ``summary()`` read as the dissector's tree and summary line; "" for
    #: layers that list their schema's fields.
    protocol: str = ""

    def record(self) -> Record | None:
        """The dissector's record of this datagram (its decoder run on these bytes alone, so
        what needs earlier packets, such as a response's method, is not known), or None."""
        if not self.protocol:
            return None
        from p2pkit.capture.packets import Packet as CapturedPacket

        udp = self.underlayer
        ip = udp.underlayer if udp is not None else None
        pkt = CapturedPacket(frame=0, time=float(getattr(self, "time", 0) or 0),
                             transport="udp", src_ip=str(getattr(ip, "src", "0.0.0.0")),
                             src_port=int(getattr(udp, "sport", 0) or 0),
                             dst_ip=str(getattr(ip, "dst", "0.0.0.0")),
                             dst_port=int(getattr(udp, "dport", 0) or 0),
                             payload=self.original or bytes(self))
        decoder = registry.load(registry.get(self.protocol).datagram_decoder)()
        records = decoder.datagram(pkt, forced=True) or []
        return records[0] if records else None

    def mysummary(self) -> str:
        from p2pkit.capture.render import message_line

        record = self.record()
        return message_line(record) if record is not None else self.name

    def _show_or_dump(self, dump: bool = False, indent: int = 3, lvl: str = "",
                      label_lvl: str = "", first_call: bool = True) -> str | None:
        from p2pkit.capture.render import render_tree

        lines = [f"{label_lvl}###[ {self.name} ]###"]
        record = self.record()
        if record is not None:  # the dissector's tree, without its frame line
            lines += [f"{label_lvl}{lvl}{line}" for line in render_tree(record).splitlines()[1:]]
        value = (json_value(self.message, "", self.summarised)
                 if self.message is not None and record is None else {})
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


def datagram_layers() -> list[type]:
    """Every registered protocol's datagram layers (those with ``matches``), in the
    registry's datagram order."""
    found: list[type] = []
    for descriptor in registry.all_descriptors():
        for layer in registry.load(descriptor.scapy) or ():
            if hasattr(layer, "matches") and not issubclass(layer, StreamLayer):
                found.append(layer)
    return found


class P2PDatagram(Packet):
    """Dispatcher bound to the UDP ports :func:`register` is given: the first registered
    datagram layer whose ``matches`` accepts the bytes and whose schema parses them."""

    name = "P2P datagram"

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type:
        data = _pkt or b""
        for layer in _DATAGRAM_LAYERS:
            if not layer.matches(data):
                continue
            schema = layer.fields_desc[0].schema
            try:
                schema.parse(data)
            except (ParseError, BuildError):
                continue
            return layer
        return Raw


#: Filled by :func:`register`.
_DATAGRAM_LAYERS: list[type] = []


class FramedField(SchemaField):
    """A ``SchemaField`` for stream messages: it takes one length-delimited message (the
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


class StreamLayer(SchemaLayer):
    """A stream message layer for a segment that starts at a message boundary; the bytes after
    the message are another message. Streams with handshakes, messages split across segments
    and lost segments need the full dissector: :func:`dissect_packets`."""

    #: Most messages a segment is walked for by :meth:`matches_segment`.
    MAX_SEGMENT_MESSAGES = 256

    def guess_payload_class(self, payload: bytes) -> type:
        return type(self) if payload else Raw

    @classmethod
    def matches_segment(cls, data: bytes) -> bool:
        """Whether ``data`` is whole messages of this layer, end to end (the content test for
        a TCP segment on a port nobody bound): every length prefix lands exactly on the next
        message, every message parses to a known type, and not all are empty."""
        field = cls.fields_desc[0]
        if not isinstance(field, FramedField) or not data:
            return False
        substantial = False
        for _ in range(cls.MAX_SEGMENT_MESSAGES):
            n = field.frame_length(data)
            if n is None or n > len(data) or n <= 0:
                return False
            try:
                message = field.schema.parse(data[:n])
            except (ParseError, BuildError):
                return False
            kind = str(message.get("type", ""))
            if kind == "unknown":
                return False
            substantial = substantial or kind not in ("keep_alive", "")
            data = data[n:]
            if not data:
                return substantial
        return False


#: Filled by :func:`register`: stream layers offered TCP segments by content.
_STREAM_LAYERS: list[type] = []
#: What :func:`register` replaced (class -> its own ``guess_payload_class`` or None), and the
#: bindings it made, so that :func:`unregister` restores scapy.
_SAVED_GUESS: dict[type, Any] = {}
_BINDINGS: list[tuple[type, type, dict[str, int]]] = []


def _by_content(transport: type, original: Any) -> Any:
    def guess_payload_class(self: Packet, payload: bytes) -> type:
        chosen = original(self, payload)
        if chosen is not Raw or not payload:
            return chosen  # scapy knows this payload (or it is empty): leave it
        if transport is UDP:
            return P2PDatagram.dispatch_hook(payload)
        for layer in _STREAM_LAYERS:
            if layer.matches_segment(payload):
                return layer
        return chosen

    guess_payload_class.__doc__ = (f"scapy's {transport.__name__}.guess_payload_class, then "
                                   "p2pkit's content detectors for what it leaves as Raw.")
    return guess_payload_class


def _bind(lower: type, upper: type, **fields: int) -> None:
    bind_layers(lower, upper, **fields)
    _BINDINGS.append((lower, upper, fields))


def register(udp_ports: Iterable[int] = DEFAULT_UDP_PORTS,
             tcp_ports: Mapping[str, Iterable[int]] | None = None, *, by_content: bool = True,
             **protocol_tcp_ports: Iterable[int]) -> None:
    """Bind ``P2PDatagram`` to ``udp_ports`` (either direction) in scapy, and each
    protocol's stream layers to the TCP ports given for it (messages only: handshakes are not
    decoded by them): ``tcp_ports={"bittorrent": [6881]}``, or as keywords
    ``bittorrent_tcp_ports=[6881]`` (a protocol name with ``-`` written ``_``).

    ``by_content`` (the default): payloads on any other port that scapy leaves as ``Raw`` are
    offered to every registered layer's content test, UDP datagrams whole and TCP segments
    made of whole messages (a segment that starts mid-message stays ``Raw``: the full
    dissector, :func:`dissect_packets`, reassembles streams). Payloads scapy decodes itself
    (DNS, …) are never touched. :func:`unregister` undoes all of it.
    """
    ports = {name: list(p) for name, p in (tcp_ports or {}).items()}
    for key, value in protocol_tcp_ports.items():
        if not key.endswith("_tcp_ports"):
            raise TypeError(f"register() got an unexpected keyword argument {key!r}")
        ports[key[: -len("_tcp_ports")].replace("_", "-")] = list(value)
    _DATAGRAM_LAYERS[:] = datagram_layers()
    _STREAM_LAYERS[:] = [layer for d in registry.all_descriptors()
                         for layer in registry.load(d.scapy) or ()
                         if issubclass(layer, StreamLayer)]
    for port in udp_ports:
        _bind(UDP, P2PDatagram, dport=port)
        _bind(UDP, P2PDatagram, sport=port)
    for name, numbers in ports.items():
        descriptor = registry.get(name)
        for layer in registry.load(descriptor.scapy) or ():
            if not issubclass(layer, StreamLayer):
                continue
            for port in numbers:
                _bind(TCP, layer, dport=port)
                _bind(TCP, layer, sport=port)
    if by_content:
        for transport in (UDP, TCP):
            if transport not in _SAVED_GUESS:
                _SAVED_GUESS[transport] = transport.__dict__.get("guess_payload_class")
                transport.guess_payload_class = _by_content(transport,
                                                            transport.guess_payload_class)


def unregister() -> None:
    """Undo :func:`register`: scapy's own ``guess_payload_class`` back on UDP and TCP, and the
    port bindings removed, so scapy decodes as it did before."""
    for transport, own in _SAVED_GUESS.items():
        if own is None:
            del transport.guess_payload_class
        else:
            transport.guess_payload_class = own
    _SAVED_GUESS.clear()
    for lower, upper, fields in reversed(_BINDINGS):
        split_layers(lower, upper, **fields)
    _BINDINGS.clear()


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
