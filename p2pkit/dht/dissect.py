"""KRPC datagram dissection (BEP 5 and its extensions) with query/response matching.

Each datagram is decoded leniently with :mod:`p2pkit.dht.krpc` (deviations and unknown
keys are reported, never fatal); responses and errors are matched to the query they answer by
transaction id and endpoints, so every record knows its method.
"""

from __future__ import annotations

from p2pkit import bencode
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields
from p2pkit.dht.krpc import PROTOCOL, Transactions, decode_lenient
from p2pkit.errors import ParseError

__all__ = ["KrpcDissector"]

_KIND = {"q": "query", "r": "response", "e": "error"}
#: KRPC keys shown under another name in the record (``q`` is the method).
_FIELD_OF_KEY = {b"t": "transaction_id", b"q": "method"}


class KrpcDissector:
    """Decode KRPC datagrams; remembers open queries to name responses' methods."""

    def __init__(self) -> None:
        self.transactions = Transactions()

    def __call__(self, pkt: Packet) -> Record | None:
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
                      deviations=list(result.deviations), spans=spans)
