"""KRPC datagram dissection (BEP 5 and its extensions) with query/response matching.

Each datagram is decoded leniently with :mod:`p2pkit.dht.krpc` (deviations and unknown
keys are reported, never fatal); responses and errors are matched to the query they answer by
transaction id and endpoints, so every record knows its method.

Keys no BEP defines (libtorrent's ``p``, ``bs`` …) are kept in ``extra`` and listed in the
record's ``unknown_keys`` field, as information at the level the spec gives them (MAY: a node
ignores what it does not know), not among the deviations. A datagram that is bencoded but not a
KRPC dictionary, or that breaks off, is an ``undecoded`` record (malformed at offset N, or
truncated).

Reached through the ``bt-dht`` descriptor (:mod:`p2pkit.dht.protocol`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from construct import Container

from p2pkit import bencode
from p2pkit.bencode.canonical import decode_canonical
from p2pkit.bencode.compiled import decode_compiled
from p2pkit.capture.lazy_record import (
    Decoded,
    LazyRecord,
    ValueLater,
    deferred_record,
    scalar_summary,
)
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import (
    BINARY_INLINE_LIMIT,
    Record,
    json_fields,
    json_value,
    undecoded,
)
from p2pkit.capture.spans import LazySpans
from p2pkit.deviations import deviations_of
from p2pkit.dht.deferred import (
    CHECKS_MAY_WAIT,
    DeferredMessage,
    deferred_message,
)
from p2pkit.dht.krpc import (
    MAX_MESSAGE_SIZE,
    PROTOCOL,
    Envelope,
    Transactions,
    decode_lenient,
)
from p2pkit.errors import ParseError

__all__ = ["KrpcDecoder", "detect_krpc"]

_KIND = {"q": "query", "r": "response", "e": "error"}


#: Rules of deviations that are information, not departures (listed in ``unknown_keys``).
INFORMATION_RULES = frozenset({"krpc/unknown-key"})


def detect_krpc(payload: bytes) -> bool:
    """BEP 5: "A KRPC message is a single dictionary" (bencoded: it starts with ``d``); a
    bencoded list (``l``) is taken too, to be reported as not a dictionary."""
    return payload[:1] in (b"d", b"l")


def _top_level_spans(payload: bytes) -> dict[str, tuple[int, int]]:
    """Where the keys of the top-level dictionary lie in the datagram (named as in fields)."""
    return _named_spans(bencode.decode_lenient(payload, spans=True).spans)


def _named_spans(spans: dict[bytes, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Spans of the top-level values by the name the record's fields give them."""
    from p2pkit.dht.krpc_spans import field_name  # (imported when a field tree is drawn)

    return {field_name(k): span for k, span in spans.items()}


#: Top-level fields of a record besides ``transaction_id`` and ``method`` (from the envelope's
#: declaration, ``extra`` and the ``unknown_keys`` list): a summary line asking for one of
#: them decodes the datagram in full.
_PAYLOAD_KEYS = frozenset(f.attr for f in Envelope.fields if f.attr not in ("t", "y")) | {
    "extra", "unknown_keys"}


class _DeferredDatagram(DeferredMessage, ValueLater):
    """A deferred KRPC datagram as its record reads it: spans by field name and the record's
    fields, with the method the pairing with queries gave (as :meth:`Transactions.seen` sets
    it on an eager message), both worked out when read."""

    __slots__ = ("paired",)

    def named_spans(self) -> dict[str, tuple[int, int]]:
        spans = self._spans
        if spans is None:  # (the compiled decoder's: measured from the value)
            return _measured_spans(self.raw, len(self.data))
        return _named_spans(spans)

    def fields(self) -> Decoded:
        fields = _record_fields(self, self.paired)
        if fields is not None:  # (the message reports nothing but unknown keys)
            return fields, self, []  # (the value: made when read, -V and JSON do not read it)
        return _fields(self.paired_message())

    def paired_message(self) -> Container:
        """The lenient message, with the method its pairing gave."""
        message = self.message()
        message.method = self.paired
        return message

    make = paired_message  # (the record's value, when read)


def _record_fields(d: _DeferredDatagram, method: Any) -> dict[str, Any] | None:
    """:func:`~p2pkit.dht.krpc_fields.record_fields`, imported with the first record whose
    fields are read (a summary run reads none)."""
    global _record_fields
    from p2pkit.dht.krpc_fields import record_fields

    _record_fields = record_fields
    return record_fields(d, method)


def _measured_spans(raw: dict, size: int) -> dict[str, tuple[int, int]]:
    """:func:`~p2pkit.dht.krpc_spans.named_spans`, imported with the first field tree."""
    global _measured_spans
    from p2pkit.dht.krpc_spans import named_spans

    _measured_spans = named_spans
    return named_spans(raw, size)


def _fields(message: Container) -> Decoded:
    """The record's fields, value and deviations (unknown keys listed as information)."""
    fields = json_fields(message, drop=("y",))
    fields["transaction_id"] = fields.pop("t", None)
    deviations, unknown = [], []
    for d in deviations_of(message):
        if d.rule in INFORMATION_RULES:
            unknown.append({"offset": d.offset, "message": d.message, "level": d.level,
                            "spec": d.spec})
        else:
            deviations.append(d)
    if unknown:
        fields["unknown_keys"] = unknown
    return fields, message, deviations


class KrpcDecoder:
    """The ``bt-dht`` datagram decoder; remembers open queries to name responses' methods."""

    def __init__(self) -> None:
        self.transactions = Transactions()

    def finish(self) -> list[Record]:
        return []

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        """The records of one datagram (see :meth:`decode`), as a list."""
        payload = pkt.payload
        if payload[:1] == b"d" and CHECKS_MAY_WAIT and len(payload) <= MAX_MESSAGE_SIZE:
            # (a dictionary: decode_deferred's tests inline; the compiled decoder's answer
            # taken without the tuple decode_canonical_dict makes)
            raw = decode_compiled(payload)
            if raw is not None:
                deferred = deferred_message(_DeferredDatagram, payload, raw)
            else:
                decoded = decode_canonical(payload)
                deferred = (None if decoded is None
                            else deferred_message(_DeferredDatagram, payload, *decoded))
            if deferred is not None:
                # The record of a datagram whose checks wait until its fields are read: its
                # kind, transaction id and method (paired now, in frame order) are known
                # from the header; the summary line reads nothing else.
                y, t, method = deferred.y, deferred.t, deferred.method
                src, dst = pkt.src, pkt.dst
                answered = self.transactions.pair(y, t, method, src, dst)
                if y != "q":
                    method = answered
                deferred.paired = method
                if method is None or (type(method) is str and method.isascii()):
                    # (json_value's conversion of a short string, inline)
                    tid = t.hex() if type(t) is bytes and len(t) <= BINARY_INLINE_LIMIT else (
                        None if t is None else json_value(t, "t"))
                    summary = {"transaction_id": tid, "method": method}
                    payload_keys = _PAYLOAD_KEYS
                else:  # (bytes that are not UTF-8: the JSON conversion decides how it shows)
                    summary, payload_keys = None, frozenset()
                return [deferred_record(pkt.frame, pkt.time, "udp", src, dst, PROTOCOL,
                                        _KIND.get(y) or str(y), len(payload),
                                        LazySpans(deferred.named_spans), deferred.fields,
                                        summary, payload_keys)]
        record = self._eager(pkt) if detect_krpc(payload) else None
        return None if record is None else [record]

    def decode(self, pkt: Packet) -> Record | None:
        """The record of one KRPC datagram; an ``undecoded`` record when it is bencoding that
        is not a KRPC message; None when it is not bencoding at all (not ours)."""
        records = self.datagram(pkt)
        return None if records is None else records[0]

    def _eager(self, pkt: Packet) -> Record | None:
        """The record of a datagram decoded at once (not canonical bencoding)."""
        payload = pkt.payload
        try:
            result = decode_lenient(payload)
        except ParseError as e:
            return self._undecoded(pkt, e)
        message = result.message
        self.transactions.seen(message, pkt.src, pkt.dst)
        # BEP 5 keys of the top-level dictionary, where they lie in the datagram
        # (worked out when a field tree asks: summary lines and JSON do not)
        spans = LazySpans(partial(_top_level_spans, payload))
        # the JSON fields and deviations are worked out when read (a summary line reads the
        # top-level scalars: the method, the transaction id)
        t = message.get("t")
        summary = scalar_summary(message, {"transaction_id": None if t is None
                                           else json_value(t, "t")}, drop=("y", "t"))
        summary["payload_keys"] |= {"unknown_keys"}  # added by _fields
        return LazyRecord(frame=pkt.frame, time=pkt.time, transport="udp", src=pkt.src,
                          dst=pkt.dst, protocol=PROTOCOL,
                          message=_KIND.get(message.y, str(message.y)),
                          length=len(pkt.payload), spans=spans,
                          decode=partial(_fields, message), **summary)

    @staticmethod
    def _undecoded(pkt: Packet, error: ParseError) -> Record | None:
        """Bencoding that is no KRPC message (a list, a dictionary that breaks off or holds
        garbage); None when the first bytes are not bencoding at all (another protocol)."""
        payload = pkt.payload
        at = error.offset or 0
        if payload[:1] == b"l":
            try:
                bencode.decode_lenient(payload)
            except ParseError:
                return None  # not even bencoding
        elif at <= 1:
            return None
        short = at >= len(payload) or any(w in error.reason for w in ("truncated", "past the end"))
        reason = "truncated" if short else "malformed"
        return undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                         reason=reason, length=len(payload), frames=(pkt.frame, pkt.frame, 1),
                         time=pkt.time, at=at, detail=error.reason)
