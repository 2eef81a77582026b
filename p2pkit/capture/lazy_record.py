"""Records that decode on demand: the summary line needs the message's name and a few header
fields, the field tree and JSON need everything.

A :class:`LazyRecord` is a :class:`~p2pkit.capture.record.Record` whose ``fields``, ``value``
and ``deviations`` are worked out by its decoder the first time any of them is read (and then
kept), so a summary line costs the header, not the payload's decoding and JSON conversion. A
decoder that knows which fields its header alone gives passes ``summary``: the summary line
reads those without decoding the rest (:meth:`LazyRecord.summary_fields`).

Only what cannot change the output may be deferred: a decoder defers a message whose decoding
cannot fail in a way that changes the records after it (the stream decoders decide, see
:mod:`p2pkit.gnutella.dissect`); tests compare every deferred record with the eager one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from p2pkit.capture.record import Record
from p2pkit.deviations import Deviation

__all__ = ["Decoded", "DecodedRecord", "DeferredValue", "LazyRecord", "ValueLater",
           "decoded_record", "deferred_record", "scalar_summary"]

#: What a decoder's callable returns: (fields, value, deviations).
Decoded = tuple[dict[str, Any], Any, list[Deviation]]


class ValueLater:
    """A record's value made when it is first read: a decoder that gives the fields and
    deviations without the decoded value (``-V`` and JSON read only those) returns, as the
    value, an object of a subclass whose :meth:`make` makes it (the decoder's own object that
    holds what it needs: no object more per record)."""

    __slots__ = ()

    def make(self) -> Any:
        """The record's value."""
        raise NotImplementedError


class DeferredValue(ValueLater):
    """A :class:`ValueLater` that holds the callable making the value (for a decoder with no
    object of its own to subclass :class:`ValueLater`): ``make()`` gives the value the first
    time ``value`` is read.

    >>> r = LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
    ...                protocol="p", message="m",
    ...                decode=lambda: ({"n": 1}, DeferredValue(lambda: {"n": 1}), []))
    >>> r.fields, r.value
    ({'n': 1}, {'n': 1})
    """

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


_FIELDS = Record.__dict__["fields"]
_VALUE = Record.__dict__["value"]
_DEVIATIONS = Record.__dict__["deviations"]
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Record))


def _made_value(record: Record) -> Any:
    """A lazy or decoded record's ``value`` once its fields are there: a :class:`ValueLater`
    the decoder gave with the fields alone is made now, and kept."""
    value = _VALUE.__get__(record)
    if isinstance(value, ValueLater):
        value = value.make()
        _VALUE.__set__(record, value)
    return value


def _same_fields(record: Record, other: object) -> bool:
    """A lazy or decoded record's ``==``: every field of :class:`Record` equal, read through
    the record's own properties (which decode or make the value first)."""
    if not isinstance(other, Record):
        return NotImplemented
    return all(getattr(record, name) == getattr(other, name) for name in _FIELD_NAMES)


class LazyRecord(Record):
    """A record whose fields, value and deviations come from ``decode()`` when first read.

    ``summary`` (optional): the fields the header alone gives, by name, and ``payload_keys``
    the names the rest of the message may add at the top level; a summary line that asks
    for none of those is drawn from ``summary`` without decoding.

    >>> r = LazyRecord(frame=1, time=0.0, transport="tcp", src="a:1", dst="b:2",
    ...                protocol="p", message="m",
    ...                decode=lambda: ({"ttl": 1, "body": "x"}, None, []),
    ...                summary={"ttl": 1}, payload_keys=frozenset({"body"}))
    >>> r.summary_fields(("ttl", "port")), r.decoded
    ([('ttl', 1)], False)
    >>> r.fields, r.decoded
    ({'ttl': 1, 'body': 'x'}, True)
    """

    __slots__ = ("_decode", "_summary", "_payload_keys")

    def __init__(self, frame: int, time: float, transport: str, src: str, dst: str,
                 protocol: str, message: str, fields: dict[str, Any] | None = None,
                 offset: int | None = None, length: int = 0,
                 deviations: list[Deviation] | None = None, value: Any = None,
                 spans: Mapping[str, tuple[int, int]] | None = None, *,
                 decode: Callable[[], Decoded] | None = None,
                 summary: dict[str, Any] | None = None,
                 payload_keys: frozenset[str] = frozenset()) -> None:
        # Record's fields in its order (dataclasses.replace passes them all), set directly:
        # a large capture makes millions of records
        self.frame, self.time, self.transport, self.src, self.dst = (
            frame, time, transport, src, dst)
        self.protocol, self.message, self.offset, self.length = protocol, message, offset, length
        if decode is None or fields is not None or deviations is not None or value is not None:
            _FIELDS.__set__(self, {} if fields is None else fields)
            _DEVIATIONS.__set__(self, [] if deviations is None else deviations)
            _VALUE.__set__(self, value)
        # (else Record's three slots stay empty until _run fills them: every read of fields,
        # value or deviations goes through _run first, and a setter runs it before setting)
        self.spans = {} if spans is None else spans
        self._decode = decode
        self._summary = summary
        self._payload_keys = payload_keys

    @property
    def decoded(self) -> bool:
        """Whether the message was decoded (a field, the value or the deviations were read)."""
        return self._decode is None

    def _run(self) -> None:
        decode, self._decode = self._decode, None
        try:
            fields, value, deviations = decode()
        except BaseException:
            try:
                _FIELDS.__get__(self)
            except AttributeError:  # the slots __init__ left empty: a record of nothing
                _FIELDS.__set__(self, {})
                _VALUE.__set__(self, None)
                _DEVIATIONS.__set__(self, [])
            raise
        _FIELDS.__set__(self, fields)
        _VALUE.__set__(self, value)
        _DEVIATIONS.__set__(self, deviations)

    @property  # type: ignore[override]
    def fields(self) -> dict[str, Any]:
        if self._decode is not None:
            self._run()
        return _FIELDS.__get__(self)

    @fields.setter
    def fields(self, fields: dict[str, Any]) -> None:
        if self._decode is not None:  # decoded first: what is set stays
            self._run()
        _FIELDS.__set__(self, fields)

    @property  # type: ignore[override]
    def value(self) -> Any:
        if self._decode is not None:
            self._run()
        return _made_value(self)

    @value.setter
    def value(self, value: Any) -> None:
        if self._decode is not None:  # decoded first: what is set stays
            self._run()
        _VALUE.__set__(self, value)

    @property  # type: ignore[override]
    def deviations(self) -> list[Deviation]:
        if self._decode is not None:
            self._run()
        return _DEVIATIONS.__get__(self)

    @deviations.setter
    def deviations(self, deviations: list[Deviation]) -> None:
        if self._decode is not None:  # decoded first: what is set stays
            self._run()
        _DEVIATIONS.__set__(self, deviations)

    def __eq__(self, other: object) -> bool:
        """Equal to any record (lazy or not) with the same fields, once decoded."""
        return _same_fields(self, other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as Record

    def summary_fields(self, keys: Iterable[str]) -> list[tuple[str, Any]]:
        """(name, value) of the fields named in ``keys`` that the record has, in the order of
        ``keys``; from the header alone when none of them may come from the rest of the
        message."""
        summary = self._summary
        if self._decode is None or summary is None:
            return Record.summary_fields(self, keys)
        keys = tuple(keys)
        if not self._payload_keys.isdisjoint(keys):
            return Record.summary_fields(self, keys)
        return [(k, summary[k]) for k in keys if k in summary]


class DecodedRecord(Record):
    """A record decoded as its message was framed, whose ``value`` alone is made when first
    read: a decoder told that every record's fields will be read (``-V``, JSON: the capture
    layer's ``fields_read`` hint) decodes the fields and deviations at once and gives the
    value as a :class:`ValueLater`. Its fields and deviations are plain attributes (a field
    tree and a JSON line read them once per record: no property to go through).

    >>> r = decoded_record(1, 0.0, "tcp", "a:1", "b:2", "p", "m", {"n": 1}, 7, 5, [],
    ...                    DeferredValue(lambda: {"n": 1}), {})
    >>> r.fields, r.value, r == Record(1, 0.0, "tcp", "a:1", "b:2", "p", "m", {"n": 1}, 7, 5,
    ...                                value={"n": 1})
    ({'n': 1}, {'n': 1}, True)
    """

    __slots__ = ()

    value = property(_made_value, _VALUE.__set__)  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        """Equal to any record (lazy or not) with the same fields, value made."""
        return _same_fields(self, other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as Record


_new = object.__new__


def decoded_record(frame: int, time: float, transport: str, src: str, dst: str,
                   protocol: str, message: str, fields: dict[str, Any], offset: int | None,
                   length: int, deviations: list[Deviation], value: Any,
                   spans: Mapping[str, tuple[int, int]]) -> DecodedRecord:
    """``DecodedRecord(frame, time, transport, src, dst, protocol, message, fields, offset,
    length, deviations, value, spans)``, its slots set without the class call (a decoder
    makes one per message)."""
    record = _new(DecodedRecord)
    record.frame, record.time, record.transport, record.src, record.dst = (
        frame, time, transport, src, dst)
    record.protocol, record.message, record.fields, record.offset, record.length = (
        protocol, message, fields, offset, length)
    record.deviations, record.spans = deviations, spans
    _VALUE.__set__(record, value)
    return record


def deferred_record(frame: int, time: float, transport: str, src: str, dst: str,
                    protocol: str, message: str, length: int,
                    spans: Mapping[str, tuple[int, int]], decode: Callable[[], Decoded],
                    summary: dict[str, Any] | None, payload_keys: frozenset[str]
                    ) -> LazyRecord:
    """``LazyRecord(frame, time, transport, src, dst, protocol, message, length=length,
    spans=spans, decode=decode, summary=summary, payload_keys=payload_keys)``: the same
    record, its slots set without the class call (a datagram decoder makes one per datagram,
    and the call with keywords costs about as much again as the stores).

    >>> r = deferred_record(1, 0.0, "udp", "a:1", "b:2", "p", "m", 5, {},
    ...                     lambda: ({"ttl": 1}, None, []), {"ttl": 1}, frozenset())
    >>> r.decoded, r.offset, r.fields, r.decoded
    (False, None, {'ttl': 1}, True)
    """
    record = _new(LazyRecord)
    record.frame, record.time, record.transport, record.src, record.dst = (
        frame, time, transport, src, dst)
    record.protocol, record.message, record.offset, record.length = (
        protocol, message, None, length)
    # (fields, value and deviations stay empty until _run fills them, as in __init__)
    record.spans = spans
    record._decode = decode
    record._summary = summary
    record._payload_keys = payload_keys
    return record


def scalar_summary(value: Any, fields: dict[str, Any], drop: tuple[str, ...] = ("type",)
                   ) -> dict[str, Any]:
    """``summary`` and ``payload_keys`` for a :class:`LazyRecord` of a decoded ``value`` (a
    mapping) whose fields are ``json_fields(value, drop=drop)`` updated with ``fields``: its
    top-level scalars as ``json_value`` leaves them (ints, ASCII
    text), every other key in ``payload_keys``.

    >>> scalar_summary({"type": "x", "port": 6346, "ext": [1], "_io": 0}, {"guid": "aa"})
    {'summary': {'guid': 'aa', 'port': 6346}, 'payload_keys': frozenset({'ext'})}
    """
    summary = dict(fields)
    other = []
    for k, v in value.items():
        if type(k) is not str:  # renamed by the JSON conversion: decode for any summary
            return {"summary": None, "payload_keys": frozenset()}
        if k in summary or k in drop or k[:1] == "_":
            continue
        t = type(v)
        if t is int or t is bool or v is None or (t is str and v.isascii()):
            summary[k] = v
        else:
            other.append(k)
    return {"summary": summary, "payload_keys": frozenset(other)}
