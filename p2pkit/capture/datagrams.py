"""Datagram dissection: uTP (BEP 29, with stream reassembly), the UDP tracker protocol (BEP 15)
and KRPC (BEP 5), recognised by content.

Later packets of the UDP tracker protocol carry no marker, so the dissector remembers what
earlier ones established, as a tracker or client would: a connect request (recognised by the
protocol id constant) makes its transaction id expected in a response; a connect response makes
its connection id expected in announce and scrape requests between the same two endpoints.

uTP data packets are put back in ``seq_nr`` order per direction and their payloads fed to a
:class:`~p2pkit.capture.bittorrent.PeerWireStream` (transport ``utp``). A lost packet is a gap
of unknown length: the peer-wire dissector resynchronises after it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

from p2pkit.bittorrent.tracker.udp import (
    PROTOCOL_ID,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    UdpTrackerRequest,
    UdpTrackerResponse,
    UdpTrackerResponse6,
)
from p2pkit.bittorrent.wire.utp import UtpPacket, looks_like_utp
from p2pkit.capture.bittorrent import PeerWireStream
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields
from p2pkit.capture.spans import struct_spans
from p2pkit.errors import ParseError

__all__ = ["DatagramDissector", "MAX_UTP_REORDER", "UtpDirection"]

#: uTP packets held per direction while waiting for a missing ``seq_nr``.
MAX_UTP_REORDER = 1024
#: uTP-looking packets held per direction while waiting for evidence that it is uTP.
MAX_UTP_HELD = 64
#: Remembered UDP tracker transactions and connection ids (oldest forgotten first).
MAX_TRACKER_STATE = 4096

#: BEP 15 message schemas by action, for the field spans of ``dissect -V``.
_TRACKER_REQUESTS = {"connect": UdpConnectRequest, "announce": UdpAnnounceRequest,
                     "scrape": UdpScrapeRequest}
_TRACKER_RESPONSES = {"connect": UdpConnectResponse, "announce": UdpAnnounceResponse,
                      "scrape": UdpScrapeResponse, "error": UdpErrorResponse}
_CONNECT_HEAD = struct.Struct(">QII")  # BEP 15 connect request: protocol_id, action, tid
_RESPONSE_HEAD = struct.Struct(">II")  # BEP 15 responses: action, transaction_id
_REQUEST_HEAD = struct.Struct(">QII")  # connection_id, action, transaction_id


def _circular_first(numbers: list[int]) -> int:
    """The earliest of 16-bit sequence numbers that lie within half the space of each other."""
    return min(numbers, key=lambda n: sum(((n - m) & 0xFFFF) < 0x8000 for m in numbers if m != n))


class UtpDirection:
    """Reorders one direction's uTP data packets and feeds a peer-wire stream.

    The first ``seq_nr`` comes from the SYN (its ``seq_nr`` + 1, BEP 29 §connection setup) or,
    when the capture missed it, from the earliest of the first :data:`START_WINDOW` data and
    ST_STATE packets seen (a state packet carries the next ``seq_nr`` to be sent).
    """

    #: Packets held before deciding where a direction without a SYN starts.
    START_WINDOW = 32

    def __init__(self, stream: PeerWireStream) -> None:
        self.stream = stream
        self.next_seq: int | None = None
        self.offset = 0
        self.pending: dict[int, tuple[bytes, int, float]] = {}
        self._state_seqs: list[int] = []

    def syn(self, seq_nr: int) -> Iterator[Record]:
        if self.next_seq is None:
            self.next_seq = (seq_nr + 1) & 0xFFFF
            yield from self._drain()

    def state(self, seq_nr: int) -> None:
        if self.next_seq is None and len(self._state_seqs) < self.START_WINDOW:
            self._state_seqs.append(seq_nr)

    def data(self, seq_nr: int, payload: bytes, frame: int, time: float) -> Iterator[Record]:
        if self.next_seq is not None:
            behind = (self.next_seq - seq_nr) & 0xFFFF
            if 0 < behind < 0x8000:
                return  # a retransmission of a packet already delivered
        if seq_nr not in self.pending and payload:
            self.pending[seq_nr] = (payload, frame, time)
        if self.next_seq is None:
            if len(self.pending) < self.START_WINDOW:
                return
            self._choose_start()
        yield from self._drain()
        if len(self.pending) > MAX_UTP_REORDER:
            yield from self._skip()

    def _choose_start(self) -> None:
        self.next_seq = _circular_first(list(self.pending) + self._state_seqs)

    def _drain(self) -> Iterator[Record]:
        while self.next_seq in self.pending:
            payload, frame, time = self.pending.pop(self.next_seq)
            yield from self.stream.data(self.offset, payload, frame, time)
            self.offset += len(payload)
            self.next_seq = (self.next_seq + 1) & 0xFFFF

    def _skip(self) -> Iterator[Record]:
        """Give up on the missing packet: jump to the nearest held one (a gap)."""
        assert self.next_seq is not None
        nearest = min(self.pending, key=lambda s: (s - self.next_seq) & 0xFFFF)
        self.stream.gap(self.offset, 0)
        self.next_seq = nearest
        yield from self._drain()

    def finish(self) -> Iterator[Record]:
        if self.next_seq is None and self.pending:
            self._choose_start()
            yield from self._drain()
        while self.pending:
            yield from self._skip()
        yield from self.stream.end()


class DatagramDissector:
    """Sans-I/O: feed UDP :class:`Packet` objects, get :class:`Record` objects."""

    def __init__(self, *, krpc: Callable[[Packet], Record | None] | None = None) -> None:
        self.krpc = krpc
        self._tracker_transactions: dict[tuple[str, str, int], str] = {}
        self._tracker_connections: dict[tuple[str, str, int], bool] = {}
        self._utp: dict[tuple[str, str, int], UtpDirection] = {}
        self._utp_held: dict[tuple[str, str, int], list[tuple[Packet, Any]]] = {}

    def datagram(self, pkt: Packet, protocol: str | None = None) -> Iterator[Record]:
        """Dissect one UDP packet; ``protocol`` forces a decoder (``--decode-as``)."""
        payload = pkt.payload
        if protocol in (None, "bt-tracker"):
            record = self._tracker(pkt, forced=protocol is not None)
            if record is not None:
                yield record
                return
        if protocol in (None, "bt-dht") and self.krpc is not None and payload[:1] == b"d":
            record = self.krpc(pkt)
            if record is not None:
                yield record
                return
        if protocol in (None, "bt-utp") and looks_like_utp(payload):
            yield from self._utp_packet(pkt)

    def finish(self) -> Iterator[Record]:
        for direction in self._utp.values():
            yield from direction.finish()

    # -- BEP 15 -----------------------------------------------------------------------------

    def _remember(self, table: dict, key: Any, value: Any) -> None:
        table[key] = value
        if len(table) > MAX_TRACKER_STATE:
            del table[next(iter(table))]

    def _tracker(self, pkt: Packet, *, forced: bool) -> Record | None:
        data = pkt.payload
        src, dst = pkt.src, pkt.dst
        kind = None
        if len(data) >= 16:
            connection_id, action, tid = _REQUEST_HEAD.unpack_from(data)
            if connection_id == PROTOCOL_ID and action == 0:
                kind = "request"
            elif action in (1, 2) and self._tracker_connections.get((src, dst, connection_id)):
                kind = "request"
        if kind is None and len(data) >= 8:
            action, tid = _RESPONSE_HEAD.unpack_from(data)
            if action <= 3 and (dst, src, tid) in self._tracker_transactions:
                kind = "response"
        if kind is None and not forced:
            return None
        try:
            if kind == "response" or (kind is None and len(data) < 16):
                schema = UdpTrackerResponse6 if ":" in pkt.src_ip else UdpTrackerResponse
                value = schema.parse(data)
                kind = "response"
            else:
                value = UdpTrackerRequest.parse(data)
                kind = "request"
        except ParseError:
            return None
        action = str(value.action)
        if kind == "request":
            self._remember(self._tracker_transactions, (src, dst, value.transaction_id), action)
        else:
            self._tracker_transactions.pop((dst, src, value.transaction_id), None)
            if action == "connect":
                self._remember(self._tracker_connections, (dst, src, value.connection_id), True)
        fields = json_fields(value, drop=("action",))
        fields["direction"] = kind
        schema = (_TRACKER_REQUESTS if kind == "request" else _TRACKER_RESPONSES).get(action)
        return Record(frame=pkt.frame, time=pkt.time, transport="udp", src=src, dst=dst,
                      protocol="bt-tracker", message=action, fields=fields,
                      length=len(data), value=value,
                      spans=struct_spans(schema, 0, len(data)) if schema is not None else {})

    # -- BEP 29 -----------------------------------------------------------------------------

    def _utp_packet(self, pkt: Packet) -> Iterator[Record]:
        """A datagram that parses as uTP is taken for uTP only with evidence (BEP 29 has no
        magic number, and other protocols' first bytes can look like a uTP header): a SYN, a
        connection already known, or a packet of the opposite direction of the same
        connection (ids differ by one). Until then it is held, up to :data:`MAX_UTP_HELD`."""
        try:
            value = UtpPacket.parse(pkt.payload)
        except ParseError:
            return
        kind = str(value.type)
        # BEP 29 §connection setup: the initiator's SYN carries the id it receives on; it sends
        # everything else with id + 1, and the other side sends with the SYN's id.
        cid = (value.connection_id + 1 if kind == "st_syn" else value.connection_id) & 0xFFFF
        key = (pkt.src, pkt.dst, cid)
        if key not in self._utp and kind != "st_syn":
            reverse = [k for k in ((pkt.dst, pkt.src, (cid + 1) & 0xFFFF),
                                   (pkt.dst, pkt.src, (cid - 1) & 0xFFFF))
                       if k in self._utp or k in self._utp_held]
            if not reverse:
                held = self._utp_held.setdefault(key, [])
                if len(held) < MAX_UTP_HELD:
                    held.append((pkt, value))
                if len(self._utp_held) > MAX_TRACKER_STATE:
                    del self._utp_held[next(iter(self._utp_held))]
                return
            for k in reverse:  # both directions are now evidence for each other
                for held_pkt, held_value in self._utp_held.pop(k, []):
                    yield from self._utp_accept(held_pkt, held_value, k)
            for held_pkt, held_value in self._utp_held.pop(key, []):
                yield from self._utp_accept(held_pkt, held_value, key)
        yield from self._utp_accept(pkt, value, key)

    def _utp_accept(self, pkt: Packet, value: Any, key: tuple[str, str, int]
                    ) -> Iterator[Record]:
        kind = str(value.type)
        fields = json_fields(value, drop=("type", "type_version", "payload"))
        fields["payload_length"] = len(value.payload)
        yield Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                     dst=pkt.dst, protocol="bt-utp", message=kind, fields=fields,
                     length=len(pkt.payload), value=value,
                     spans=struct_spans(UtpPacket, 0, len(pkt.payload)))
        direction = self._utp.get(key)
        if direction is None:
            stream = PeerWireStream(transport="utp", src=pkt.src, dst=pkt.dst)
            direction = self._utp[key] = UtpDirection(stream)
        if kind == "st_syn":
            yield from direction.syn(value.seq_nr)
        elif kind == "st_state":
            direction.state(value.seq_nr)
        elif kind == "st_data":
            yield from direction.data(value.seq_nr, value.payload, pkt.frame, pkt.time)
