"""Byte spans of a message's fields, derived from the construct schema (for ``dissect -V``).

A ``Struct``'s fields are laid out in order; every fixed-size field's span follows from
``sizeof()`` and the last field, if variable, runs to the end of the message. This reads the
same schema objects the parser uses, so the offsets shown cannot disagree with the decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import construct

__all__ = ["LazySpans", "Spans", "struct_spans"]

#: Field name -> (start, end), relative to the start of the message.
Spans = dict[str, tuple[int, int]]


def struct_spans(con: construct.Construct, start: int, end: int) -> Spans:
    """Spans of ``con``'s named fields laid out from ``start``; the message ends at ``end``
    (a fresh dict; the layout is worked out once per schema, start and end).

    >>> from construct import Struct, Int32ub, GreedyBytes
    >>> struct_spans(Struct("index" / Int32ub, "begin" / Int32ub, "piece" / GreedyBytes), 5, 30)
    {'index': (5, 9), 'begin': (9, 13), 'piece': (13, 30)}
    """
    return dict(_struct_spans(con, start, end))


class LazySpans(Mapping[str, tuple[int, int]]):
    """Spans worked out on first use: the field tree (``dissect -V``) reads them, summary
    lines and JSON never do, so a record of a datagram need not pay for them.

    >>> spans = LazySpans(lambda: {"t": (1, 6)})
    >>> spans.get("t"), dict(spans)
    ((1, 6), {'t': (1, 6)})
    """

    __slots__ = ("_compute", "_spans")

    def __init__(self, compute: Callable[[], Spans]) -> None:
        self._compute: Callable[[], Spans] | None = compute
        self._spans: Spans | None = None

    def _get(self) -> Spans:
        if self._spans is None:
            assert self._compute is not None
            self._spans, self._compute = self._compute(), None
        return self._spans

    def __getitem__(self, key: str) -> tuple[int, int]:
        return self._get()[key]

    def get(self, key: str, default: Any = None) -> Any:  # (one call: -V asks per field)
        return self._get().get(key, default)

    def resolved(self) -> Spans:
        """The spans, worked out now (a plain dict, for a reader that asks for many)."""
        return self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"LazySpans({self._get()!r})"


@lru_cache(maxsize=1024)
def _struct_spans(con: construct.Construct, start: int, end: int) -> Spans:
    while isinstance(con, construct.Subconstruct) and not isinstance(con, construct.Struct):
        con = con.subcon
    spans: Spans = {}
    if not isinstance(con, construct.Struct):
        return spans
    pos = start
    subcons = con.subcons
    for i, sub in enumerate(subcons):
        try:
            size = sub.sizeof()
        except (construct.SizeofError, construct.ConstructError, KeyError, AttributeError,
                TypeError):
            if i == len(subcons) - 1 and sub.name:
                spans[sub.name] = (pos, end)
            break
        if size and sub.name and not sub.name.startswith("_"):
            spans[sub.name] = (pos, pos + size)
        pos += size
    return spans
