"""KRPC datagrams decoded in two halves: the bencoding at once, the declaration's checks
when a field is read (BEP 5 §KRPC Protocol).

A summary line shows what a datagram is (``y``), its transaction id (``t``) and its method
(``q``, or the query a response answers); the dissector must also know at once whether the
datagram is a KRPC message at all (a record) or not (an ``undecoded`` record), and pair
responses with queries in frame order. Everything else (the ``a``/``r`` dictionaries, their
compact nodes and peers, the deviations) is worked out only when ``-V``, JSON, a filter or
``--stats`` reads the fields.

That split is safe only where it cannot change the output, and both conditions are derived
from the declarations in :mod:`p2pkit.dht.krpc`, not assumed:

* once the bencoding has decoded, the lenient checks can only *report* (never fail and turn
  the record into an error): :data:`CHECKS_MAY_WAIT` is False as soon as any declared field,
  of the envelope, the arguments or the response values, may fail (``may_fail``);
* the header is read with the envelope's own value types for ``t``, ``y`` and ``q``
  (:func:`header`), which must be types that report nothing and need no context (checked on
  import).

Only datagrams in canonical bencoding (:func:`~p2pkit.bencode.compiled.decode_canonical_dict`:
what the lenient decoder takes without a deviation) are split; any other datagram is decoded
at once by :func:`~p2pkit.dht.krpc.decode_lenient`, which reports its deviations and errors.
Tests compare the deferred and the eager decoding of every KRPC datagram of the committed
captures and of hypothesis-generated messages.

>>> d = decode_deferred(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
>>> d.y, d.t, d.method
('q', b'aa', 'ping')
>>> d.message().a.id
b'abcdefghij0123456789'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from construct import Container

from p2pkit.bencode import Mismatch
from p2pkit.bencode.compiled import decode_canonical_dict, value_spans
from p2pkit.bencode.schema import String
from p2pkit.dht.krpc import (
    MAX_MESSAGE_SIZE,
    Arguments,
    Envelope,
    KrpcMessageLenient,
    ResponseValues,
)

__all__ = ["CHECKS_MAY_WAIT", "DeferredMessage", "decode_deferred", "deferred_message", "header"]

#: Whether the lenient checks of a decoded KRPC dictionary can only report, never fail:
#: derived from every declared field of the envelope and of the ``a``/``r`` bodies.
CHECKS_MAY_WAIT = not any(schema.may_fail for schema in (Envelope, Arguments, ResponseValues))

_ENVELOPE = KrpcMessageLenient.subcon
_HEADER = tuple(Envelope.by_name[name] for name in ("t", "y", "q"))
for _field in _HEADER:
    if _field.type.needs_path or _field.type.may_fail or _field.aliases:
        raise TypeError(f"the deferred KRPC header expects {_field.attr!r} to be a plain "
                        "value type (no context, no report)")
_ABSENT: Any = object()


def _declared(raw: dict, key: bytes, kind: Any) -> Any:
    """What the envelope's check makes of a top-level item: its declared type's value, or
    None when it is absent or has another type (the check moves it to ``extra``)."""
    value = raw.get(key, _ABSENT)
    if value is _ABSENT:
        return None
    try:
        return kind.decode(value, None, ())
    except Mismatch:
        return None


_T, _Y, _Q = ((f.raw_key, f.type) for f in _HEADER)
_T_KEY, _T_TYPE = _T
#: Whether ``t``'s declared type gives a byte string back unchanged (a String of any length,
#: nothing else to check: :meth:`~p2pkit.bencode.schema.String.decode`), so a header keeps
#: a ``bytes`` ``t`` as it is without the call.
_T_PLAIN = type(_T_TYPE) is String and _T_TYPE.length is None and _T_TYPE.simple
_Y_KEY, _Q_KEY = _Y[0], _Q[0]
#: Distinct values of ``y`` and ``q`` held with their declared values (a dissection sees a
#: handful: "q", "r", "e", the methods), so a header decodes each at most once; cleared when
#: full (bounded whatever the datagrams hold).
MAX_REMEMBERED = 256


class _Remembered(dict):
    """One header key's distinct string values with their declared values: ``seen[value]``
    decodes a string not seen yet with the key's declared type (:meth:`declared`) and keeps
    it, at most :data:`MAX_REMEMBERED` (cleared when full)."""

    __slots__ = ("key", "kind")

    def __init__(self, key: bytes, kind: Any) -> None:
        super().__init__()
        self.key, self.kind = key, kind

    def __missing__(self, value: bytes) -> Any:
        declared = self.declared(value)
        if len(self) >= MAX_REMEMBERED:
            self.clear()
        self[value] = declared
        return declared

    def declared(self, value: Any) -> Any:
        """:func:`_declared` of a value present under the key (any type, not remembered)."""
        return _declared({self.key: value}, self.key, self.kind)


_Y_SEEN = _Remembered(*_Y)
_Q_SEEN = _Remembered(*_Q)


def header(raw: dict) -> tuple[Any, Any, Any]:
    """``(t, y, q)`` of a decoded KRPC dictionary as the lenient envelope gives them
    (``message.t``, ``message.y``, a query's ``message.method``): each read with its declared
    value type (``y`` and ``q`` remembered by value).

    >>> header({b"t": b"aa", b"y": b"q", b"q": b"ping"})
    (b'aa', 'q', 'ping')
    >>> header({b"t": 7, b"y": b"r"})  # t is not a string: the envelope keeps it in extra
    (None, 'r', None)
    """
    # (t and y are in every KRPC message: read by subscript, absent being the exception;
    # q is in queries only. None: absent, as a bencoded value is never None.)
    try:
        t = raw[_T_KEY]
    except KeyError:
        t = None
    else:
        if type(t) is not bytes or not _T_PLAIN:
            try:
                t = _T_TYPE.decode(t, None, ())
            except Mismatch:
                t = None
    try:
        y = raw[_Y_KEY]
    except KeyError:
        y = None
    else:
        y = _Y_SEEN[y] if type(y) is bytes else _Y_SEEN.declared(y)
    q = raw.get(_Q_KEY)
    if q is not None:
        q = _Q_SEEN[q] if type(q) is bytes else _Q_SEEN.declared(q)
    return t, y, q


class DeferredMessage:
    """A KRPC datagram whose bencoding decoded canonically: its header now, its message (the
    same Container :func:`~p2pkit.dht.krpc.decode_lenient` gives) when asked. Made by
    :func:`deferred_message` (one per datagram: no class call)."""

    __slots__ = ("data", "raw", "_spans", "t", "y", "method")

    data: bytes
    raw: dict
    _spans: dict[bytes, tuple[int, int]] | None
    t: Any
    y: Any
    #: A query's method (``q``); None for responses and errors (the caller pairs them).
    method: Any

    @property
    def spans(self) -> dict[bytes, tuple[int, int]]:
        """Where each top-level value lies in the datagram (worked out from the value when
        the compiled decoder gave no spans)."""
        spans = self._spans
        if spans is None:
            spans = self._spans = value_spans(self.raw, len(self.data))
        return spans

    def message(self) -> Container:
        """The lenient message, its deviations carried (``deviations_of``)."""
        spans = self._spans
        return _ENVELOPE.parse_decoded(self.data, self.raw, [], 0, top_spans=_TopSpans(self)
                                       if spans is None else spans, canonical=True)


class _TopSpans(Mapping):
    """A deferred message's top-level spans, worked out if a deviation is located (a check
    that reports nothing never reads them)."""

    __slots__ = ("_message",)

    def __init__(self, message: DeferredMessage) -> None:
        self._message = message

    def __getitem__(self, key: bytes) -> tuple[int, int]:
        return self._message.spans[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._message.spans)

    def __len__(self) -> int:
        return len(self._message.spans)

    def items(self) -> Any:  # (the locator reads them all at once)
        return self._message.spans.items()


_new = object.__new__


def deferred_message(kind: type[DeferredMessage], data: bytes, raw: dict,
                     spans: dict[bytes, tuple[int, int]] | None = None) -> Any:
    """A ``kind`` (:class:`DeferredMessage` or a subclass) of a datagram ``data`` whose
    canonical decoding is ``raw`` (and ``spans``, if the decoder recorded them): its
    :func:`header` read now.

    >>> m = deferred_message(DeferredMessage, b"d1:q4:ping1:t2:aa1:y1:qe",
    ...                      {b"q": b"ping", b"t": b"aa", b"y": b"q"})
    >>> m.t, m.y, m.method, m.spans[b"t"]
    (b'aa', 'q', 'ping', (13, 17))
    """
    message = _new(kind)
    message.data, message.raw, message._spans = data, raw, spans
    t, y, q = header(raw)
    message.t, message.y = t, y
    message.method = q if y == "q" else None
    return message


def decode_deferred(data: bytes, kind: type[DeferredMessage] = DeferredMessage
                    ) -> DeferredMessage | None:
    """The deferred decoding of a datagram (a ``kind``: :class:`DeferredMessage` or a
    subclass), or None when it must be decoded at once (not canonical bencoding, too large,
    or checks that may fail)."""
    if not CHECKS_MAY_WAIT or len(data) > MAX_MESSAGE_SIZE:
        return None
    decoded = decode_canonical_dict(data)
    if decoded is None:
        return None
    return deferred_message(kind, data, *decoded)
