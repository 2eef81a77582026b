"""Byte spans of a message's fields, derived from the construct schema (for ``dissect -V``).

A ``Struct``'s fields are laid out in order; every fixed-size field's span follows from
``sizeof()`` and the last field, if variable, runs to the end of the message. This reads the
same schema objects the parser uses, so the offsets shown cannot disagree with the decoding.
"""

from __future__ import annotations

import construct

__all__ = ["Spans", "struct_spans"]

#: Field name -> (start, end), relative to the start of the message.
Spans = dict[str, tuple[int, int]]


def struct_spans(con: construct.Construct, start: int, end: int) -> Spans:
    """Spans of ``con``'s named fields laid out from ``start``; the message ends at ``end``.

    >>> from construct import Struct, Int32ub, GreedyBytes
    >>> struct_spans(Struct("index" / Int32ub, "begin" / Int32ub, "piece" / GreedyBytes), 5, 30)
    {'index': (5, 9), 'begin': (9, 13), 'piece': (13, 30)}
    """
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
