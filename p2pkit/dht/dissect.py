"""KRPC datagram dissection (BEP 5 and its extensions) with query/response matching.

Each datagram is decoded leniently with :mod:`p2pkit.dht.krpc` (deviations and unknown
keys are reported, never fatal); responses and errors are matched to the query they answer by
transaction id and endpoints, so every record knows its method.

Reached through the ``bt-dht`` descriptor (:mod:`p2pkit.dht.protocol`).
"""

from __future__ import annotations

from p2pkit import bencode
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields
from p2pkit.deviations import deviations_of
from p2pkit.dht.krpc import PROTOCOL, Transactions, decode_lenient
from p2pkit.errors import ParseError

__all__ = ["KrpcDecoder", "detect_krpc"]

_KIND = {"q": "query", "r": "response", "e": "error"}
#: KRPC keys shown under another name in the record (``q`` is the method).
_FIELD_OF_KEY = {b"t": "transaction_id", b"q": "method"}


def detect_krpc(payload: bytes) -> bool:
    """BEP 5: "A KRPC message is a single dictionary" (bencoded: it starts with ``d``)."""
    return payload[:1] == b"d"


class KrpcDecoder:
    """The ``bt-dht`` datagram decoder; remembers open queries to name responses' methods."""

    def __init__(self) -> None:
        self.transactions = Transactions()

    def finish(self) -> list[Record]:
        return []

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        record = self.decode(pkt)
        return None if record is None else [record]

    def decode(self, pkt: Packet) -> Record | None:
        """The record of one KRPC datagram, or None when it does not decode as one."""
        if not pkt.payload.startswith(b"d"):
            return None
        try:
            result = decode_lenient(pkt.payload)
        except ParseError:
            return None
        message = result.message
        self.transactions.seen(message, pkt.src, pkt.dst)
        fields = json_fields(message, drop=("y",))
        fields["transaction_id"] = fields.pop("t", None)
        # BEP 5 keys of the top-level dictionary, where they lie in the datagram
        spans = {_FIELD_OF_KEY.get(k, k.decode("latin-1")): span
                 for k, span in bencode.decode_lenient(pkt.payload, spans=True).spans.items()}
        return Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                      dst=pkt.dst, protocol=PROTOCOL, message=_KIND.get(message.y, str(message.y)),
                      fields=fields, length=len(pkt.payload), value=message,
                      deviations=deviations_of(message), spans=spans)
