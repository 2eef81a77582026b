"""Kad2 datagram dissection: plain and packed packets decoded, obfuscated ones labelled.

Each datagram starting with ``0xE4`` or ``0xE5`` is decoded with
:data:`p2pkit.kad2.messages.KadPacketLenient` (an unknown opcode is a deviation, not a failure);
one that breaks off or holds garbage is an ``undecoded`` record (truncated, or malformed at
offset N). A datagram that looks obfuscated (:func:`p2pkit.kad2.obfuscation.looks_obfuscated`)
between endpoints already seen speaking Kad, or to or from aMule's default Kad port, is read
when the receiver's Kad id was seen earlier in the capture (its hello or bootstrap packets:
the key is derived from it, :func:`p2pkit.kad2.obfuscation.deobfuscate`); the record then
carries ``encryption="Kad obfuscation"`` and the clear header in ``obfuscation``. Otherwise
it is an ``undecoded`` record with reason ``encrypted`` and ``encryption="Kad obfuscation"``:
unread, but it does not disappear.

The decoder remembers at most ``MAX_KAD_ENDPOINTS`` endpoints and their ids (the oldest
forgotten first).

Reached through the ``emule-kad`` descriptor (:mod:`p2pkit.kad2.protocol`).
"""

from __future__ import annotations

from collections import OrderedDict

from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields, undecoded
from p2pkit.deviations import deviations_of
from p2pkit.errors import ParseError
from p2pkit.kad2.messages import (
    MESSAGES,
    OP_KADEMLIAHEADER,
    OP_KADEMLIAPACKEDPROT,
    PROTOCOL,
    KadPacketLenient,
)
from p2pkit.kad2.obfuscation import deobfuscate, looks_obfuscated

__all__ = ["DEFAULT_KAD_PORTS", "MAX_KAD_ENDPOINTS", "KadDecoder", "detect_kad"]

#: Endpoints remembered as speaking Kad.
MAX_KAD_ENDPOINTS = 4096
#: aMule's and eMule's default Kad (client UDP) port (``DEFAULT_UDP_PORT`` is TCP + 10).
DEFAULT_KAD_PORTS = frozenset({4672})
_HEADERS = (OP_KADEMLIAHEADER, OP_KADEMLIAPACKEDPROT)
#: Messages whose ``client_id`` is their sender's Kad id (``SendMyDetails``, bootstrap).
_SENDER_ID = frozenset({"hello_req", "hello_res", "bootstrap_res", "hello_res_ack"})


def detect_kad(payload: bytes) -> bool:
    """A Kad header byte and an opcode, or a datagram that may be an obfuscated one."""
    if len(payload) >= 2 and payload[0] in _HEADERS:
        return True
    return looks_obfuscated(payload)


class KadDecoder:
    """The ``emule-kad`` datagram decoder."""

    def __init__(self) -> None:
        #: endpoint -> its Kad id when seen (None until then).
        self._endpoints: OrderedDict[str, bytes | None] = OrderedDict()

    def finish(self) -> list[Record]:
        return []

    def _seen(self, *endpoints: str, sender_id: bytes | None = None) -> None:
        for endpoint in endpoints:
            self._endpoints.setdefault(endpoint, None)
            self._endpoints.move_to_end(endpoint)
        if sender_id is not None:
            self._endpoints[endpoints[0]] = sender_id
        while len(self._endpoints) > MAX_KAD_ENDPOINTS:
            self._endpoints.popitem(last=False)

    def _known(self, pkt: Packet) -> bool:
        return (pkt.src in self._endpoints or pkt.dst in self._endpoints
                or pkt.src_port in DEFAULT_KAD_PORTS or pkt.dst_port in DEFAULT_KAD_PORTS)

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        payload = pkt.payload
        if len(payload) >= 2 and payload[0] in _HEADERS:
            if not (forced or payload[1] in MESSAGES.names or self._known(pkt)):
                return None  # a first byte of 0xE4 alone is too little to claim a datagram
            return [self._decode(pkt)]
        if looks_obfuscated(payload) and (forced or self._known(pkt)):
            receiver_id = self._endpoints.get(pkt.dst)
            if receiver_id is not None:
                record = self._deobfuscated(pkt, receiver_id)
                if record is not None:
                    return [record]
            return [undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                              reason="encrypted", length=len(payload),
                              frames=(pkt.frame, pkt.frame, 1), time=pkt.time,
                              encryption="Kad obfuscation",
                              detail="eMule UDP obfuscation (RC4): the receiver's key is needed")]
        if forced and payload:
            return [undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                              reason="malformed", length=len(payload), at=0,
                              frames=(pkt.frame, pkt.frame, 1), time=pkt.time,
                              detail=f"first byte 0x{payload[0]:02x} is no Kad header")]
        return None

    def _deobfuscated(self, pkt: Packet, receiver_id: bytes) -> Record | None:
        try:
            opened = deobfuscate(pkt.payload, receiver_id)
        except ParseError as e:
            return self._broken(pkt, e)
        if opened is None:
            return None
        header = {"marker": pkt.payload[0], "random_key_part": pkt.payload[1:3].hex(),
                  "padding": len(opened.padding),
                  "receiver_verify_key": opened.receiver_verify_key,
                  "sender_verify_key": opened.sender_verify_key}
        return self._record(pkt, opened.packet, obfuscation=header)

    def _broken(self, pkt: Packet, e: ParseError) -> Record:
        short = any(w in e.reason for w in ("truncated", "past the end", "stream read"))
        return undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                         reason="truncated" if short else "malformed",
                         length=len(pkt.payload), frames=(pkt.frame, pkt.frame, 1),
                         time=pkt.time, at=e.offset or 0, detail=e.reason)

    def _decode(self, pkt: Packet) -> Record:
        payload = pkt.payload
        try:
            packet = KadPacketLenient.parse(payload)
        except ParseError as e:
            return self._broken(pkt, e)
        return self._record(pkt, packet)

    def _record(self, pkt: Packet, packet, obfuscation: dict | None = None) -> Record:
        message = packet.message
        sender_id = message.get("client_id") if message.opcode in _SENDER_ID else None
        self._seen(pkt.src, pkt.dst, sender_id=sender_id)
        fields = json_fields(message, drop=("opcode",))
        if packet.protocol == "kad_packed":
            fields["packed"] = True
        if obfuscation is not None:
            fields["encryption"] = "Kad obfuscation"
            fields["obfuscation"] = obfuscation
        return Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                      dst=pkt.dst, protocol=PROTOCOL, message=str(message.opcode),
                      fields=fields, length=len(pkt.payload), value=message,
                      deviations=list(deviations_of(message)))
