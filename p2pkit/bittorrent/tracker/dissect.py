"""Tracker dissection: the UDP tracker protocol (BEP 15) and HTTP trackers (BEP 3, 23, 48).

Reached through the ``bt-tracker`` and ``bt-tracker-http`` descriptors
(:mod:`p2pkit.bittorrent.tracker.protocol`).

Later packets of the UDP tracker protocol carry no marker, so :class:`UdpTrackerDecoder`
remembers what earlier ones established, as a tracker or client would: a connect request
(recognised by the protocol id constant) makes its transaction id expected in a response; a
connect response makes its connection id expected in announce and scrape requests between the
same two endpoints. The few header fields it peeks at are read with a :class:`struct.Struct`
derived from the BEP 15 schemas in :mod:`p2pkit.bittorrent.tracker.udp`, never hand-written.

HTTP tracker directions are decoded by :class:`p2pkit.bittorrent.tracker.dissect_http.HttpTrackerStream`.
"""

from __future__ import annotations

import struct
from typing import Any

import construct

from p2pkit.bittorrent.tracker.detect import detect_http_tracker
from p2pkit.bittorrent.tracker.udp import (
    ACTIONS,
    PROTOCOL,
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
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields
from p2pkit.capture.spans import struct_spans
from p2pkit.deviations import deviations_of
from p2pkit.errors import ParseError

__all__ = ["MAX_TRACKER_STATE", "UdpTrackerDecoder", "detect_http_tracker",
           "detect_udp_tracker", "http_tracker_stream"]

#: Remembered UDP tracker transactions and connection ids (oldest forgotten first).
MAX_TRACKER_STATE = 4096

#: BEP 15 message schemas by action, for the field spans of ``dissect -V``.
_REQUESTS = {"connect": UdpConnectRequest, "announce": UdpAnnounceRequest,
             "scrape": UdpScrapeRequest}
_RESPONSES = {"connect": UdpConnectResponse, "announce": UdpAnnounceResponse,
              "scrape": UdpScrapeResponse, "error": UdpErrorResponse}


def _head(schema: Any, count: int) -> struct.Struct:
    """The first ``count`` fields of a BEP 15 schema as one :class:`struct.Struct`.

    >>> _head(UdpConnectRequest, 3).format, _head(UdpConnectResponse, 2).format
    ('>QLL', '>LL')
    """
    fmt = ">"
    for sub in schema.subcon.subcons[:count]:
        field = sub
        while not isinstance(field, construct.FormatField):
            field = field.subcon  # Renamed, Const, Mapping: down to the integer
        if field.fmtstr[0] != ">":
            raise TypeError(f"{schema.name}.{sub.name} is not big-endian")
        fmt += field.fmtstr[1:]
    return struct.Struct(fmt)


#: Requests: connection_id (``protocol_id`` in a connect request), action, transaction_id.
_REQUEST_HEAD = _head(UdpConnectRequest, 3)
#: Responses: action, transaction_id.
_RESPONSE_HEAD = _head(UdpConnectResponse, 2)
_CONNECT = ACTIONS["connect"]
_WITH_CONNECTION_ID = (ACTIONS["announce"], ACTIONS["scrape"])
_ACTION_CODES = frozenset(ACTIONS.values())
#: Whether a connect request (the protocol id) and every response (its action) start with
#: a zero byte, so a datagram that does not is no BEP 15 packet until a connection id is known.
_FIRST_BYTE_ZERO = PROTOCOL_ID >> 56 == 0 and max(_ACTION_CODES) < 1 << 24


def detect_udp_tracker(payload: bytes) -> bool:
    """Long enough for a BEP 15 response header (the decoder decides with its state)."""
    return len(payload) >= _RESPONSE_HEAD.size


class UdpTrackerDecoder:
    """The ``bt-tracker`` descriptor's datagram decoder (one per dissection)."""

    def __init__(self) -> None:
        self._transactions: dict[tuple[str, str, int], str] = {}
        self._connections: dict[tuple[str, str, int], bool] = {}

    def finish(self) -> list[Record]:
        return []

    @staticmethod
    def _remember(table: dict, key: Any, value: Any) -> None:
        table[key] = value
        if len(table) > MAX_TRACKER_STATE:
            del table[next(iter(table))]

    def detect(self, payload: bytes) -> bool:
        """:func:`detect_udp_tracker`, False also for a datagram :meth:`datagram` refuses at
        once (a first byte not zero while no connection id is known: the DHT's ``d``): the
        dissector asks this instead, so a KRPC datagram costs this one call (BEP 15)."""
        return len(payload) >= _RESPONSE_HEAD.size and (
            not payload[0] or not _FIRST_BYTE_ZERO or bool(self._connections))

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        """The record of one BEP 15 packet, or None when it is not one."""
        data = pkt.payload
        if not forced and data[0] and _FIRST_BYTE_ZERO and not self._connections:
            # BEP 15: a connect request starts with the protocol id 0x41727101980, a response
            # with its action (0-3) as a 32-bit integer: both with a zero byte; any other
            # request carries a connection id a connect response gave (none seen yet)
            return None
        src, dst = pkt.src, pkt.dst
        kind = None
        if len(data) >= _REQUEST_HEAD.size:
            connection_id, action, tid = _REQUEST_HEAD.unpack_from(data)
            if connection_id == PROTOCOL_ID and action == _CONNECT:
                kind = "request"
            elif action in _WITH_CONNECTION_ID and (
                    self._connections.get((src, dst, connection_id))
                    # a client that shares one connection-id cache between its sessions
                    # (libtorrent) sends an id the tracker gave another of its addresses
                    or self._connections.get(("", dst, connection_id))):
                kind = "request"
        if kind is None and len(data) >= _RESPONSE_HEAD.size:
            action, tid = _RESPONSE_HEAD.unpack_from(data)
            if action in _ACTION_CODES and (dst, src, tid) in self._transactions:
                kind = "response"
        if kind is None and not forced:
            return None
        try:
            if kind == "response" or (kind is None and len(data) < _REQUEST_HEAD.size):
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
            self._remember(self._transactions, (src, dst, value.transaction_id), action)
        else:
            self._transactions.pop((dst, src, value.transaction_id), None)
            if action == "connect":
                self._remember(self._connections, (dst, src, value.connection_id), True)
                self._remember(self._connections, ("", src, value.connection_id), True)
        fields = json_fields(value, drop=("action",))
        fields["direction"] = kind
        schema = (_REQUESTS if kind == "request" else _RESPONSES).get(action)
        return [Record(frame=pkt.frame, time=pkt.time, transport="udp", src=src, dst=dst,
                       protocol=PROTOCOL, message=action, fields=fields,
                       length=len(data), value=value, deviations=deviations_of(value),
                       spans=struct_spans(schema, 0, len(data)) if schema is not None else {})]


# -- HTTP trackers --------------------------------------------------------------------------

HTTP_PROTOCOL = "bt-tracker-http"


def http_tracker_stream(*, src: str, dst: str, transport: str = "tcp",
                        peer: Any = None) -> Any:
    """The ``bt-tracker-http`` stream decoder factory: one direction, linked to the other (a
    response is decoded as the kind of request it answers)."""
    from p2pkit.bittorrent.tracker.dissect_http import HttpTrackerStream

    stream = HttpTrackerStream(transport=transport, src=src, dst=dst)
    if peer is not None:
        stream.peer, peer.peer = peer, stream
    return stream
