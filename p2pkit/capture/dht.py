"""KRPC datagram dissection (BEP 5 and its extensions) with query/response matching.

Each datagram is decoded leniently with :mod:`p2pkit.kademlia.krpc` (deviations and unknown
keys are reported, never fatal); responses and errors are matched to the query they answer by
transaction id and endpoints, so every record knows its method.
"""

from __future__ import annotations

from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, json_fields
from p2pkit.errors import ParseError
from p2pkit.kademlia.krpc import PROTOCOL, Transactions, decode_lenient

__all__ = ["KrpcDissector"]

_KIND = {"q": "query", "r": "response", "e": "error"}


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
        return Record(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                      dst=pkt.dst, protocol=PROTOCOL, message=_KIND.get(message.y, str(message.y)),
                      fields=fields, length=len(pkt.payload), value=message,
                      deviations=list(result.deviations))
