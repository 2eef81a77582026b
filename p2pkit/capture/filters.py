"""A small display-filter language for dissected records (``p2pkit dissect --filter``).

Python expression syntax, restricted to: the record's names (``frame``, ``time``, ``transport``,
``src``, ``dst``, ``protocol``, ``message``), its fields (``fields.index`` or
``fields["info_hash"]``, missing fields are ``None``), literals, comparisons (``== != < <= >
>= in not in``), ``and``/``or``/``not``, and ``contains``-style tests with ``in``. A bare word
that is not a record name is a string, so ``message == request`` works without quotes.

>>> from p2pkit.capture.record import Record
>>> r = Record(frame=3, time=0.0, transport="tcp", src="a:1", dst="b:2",
...            protocol="bittorrent", message="request", fields={"index": 7})
>>> compile_filter('protocol == bittorrent and fields.index >= 5')(r)
True
>>> compile_filter('message in ("piece", "have") or fields.begin > 0')(r)
False
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Collection
from typing import Any

from p2pkit.capture.record import Record
from p2pkit.errors import ParseError

__all__ = ["compile_filter"]

RECORD_NAMES = ("frame", "time", "transport", "src", "dst", "protocol", "message")
MAX_FILTER_LENGTH = 1000

_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: b is not None and a in b,
    ast.NotIn: lambda a, b: b is None or a not in b,
}


class _Fields:
    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values


def _evaluate(node: ast.AST, record: Record) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, record)
    if isinstance(node, ast.BoolOp):
        values = (_evaluate(v, record) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _evaluate(node.operand, record)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, record)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, record)
        for op, right_node in zip(node.ops, node.comparators):
            right = _evaluate(right_node, record)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:  # None or mismatched types never match
                return False
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return tuple(_evaluate(e, record) for e in node.elts)
    if isinstance(node, ast.Name):
        if node.id in RECORD_NAMES:
            return getattr(record, node.id)
        if node.id == "fields":
            return _Fields(record.fields)
        return node.id
    if isinstance(node, ast.Attribute):
        base = _evaluate(node.value, record)
        if isinstance(base, _Fields):
            return base.values.get(node.attr)
        if isinstance(base, dict):
            return base.get(node.attr)
        return None
    if isinstance(node, ast.Subscript):
        base = _evaluate(node.value, record)
        key = _evaluate(node.slice, record)
        values = base.values if isinstance(base, _Fields) else base
        if isinstance(values, dict):
            return values.get(key)
        if isinstance(values, (list, tuple)) and isinstance(key, int) and -len(values) <= key < len(values):
            return values[key]
        return None
    raise ParseError(f"unsupported filter syntax: {ast.dump(node)[:60]}", protocol="filter")


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
            ast.Compare, ast.Constant, ast.Tuple, ast.List, ast.Set, ast.Name, ast.Load,
            ast.Attribute, ast.Subscript, *_COMPARE)


def field_names(tree: ast.AST) -> list[tuple[str, int]]:
    """The top-level record fields an expression reads (``fields.x``, ``fields["x"]``), with
    their column.

    >>> field_names(ast.parse('fields.index > 3 or fields["info_hash"] == x', mode="eval"))
    [('index', 0), ('info_hash', 20)]
    """
    found = []
    for node in ast.walk(tree):
        base = getattr(node, "value", None)
        if not (isinstance(base, ast.Name) and base.id == "fields"):
            continue
        if isinstance(node, ast.Attribute):
            found.append((node.attr, node.col_offset))
        elif (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
              and isinstance(node.slice.value, str)):
            found.append((node.slice.value, node.col_offset))
    return sorted(found, key=lambda item: item[1])


def compile_filter(text: str, *, known_fields: Collection[str] | None = None
                   ) -> Callable[[Record], bool]:
    """Compile a filter expression; raises :class:`ParseError` (protocol ``filter``) if bad.

    ``known_fields``: the top-level field names records can carry (the CLI passes the
    registry's, :func:`p2pkit.registry.known_field_names`); a field outside them is an error,
    not a filter that silently matches nothing.

    >>> compile_filter("fields.nosuch == 1", known_fields={"index"})
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: filter, offset 0: unknown field 'nosuch'
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise ParseError("filter expression too long", protocol="filter")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ParseError(f"bad filter expression: {e.msg}", protocol="filter",
                         offset=(e.offset or 1) - 1) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ParseError(f"filter expressions cannot use {type(node).__name__}",
                             protocol="filter", offset=getattr(node, "col_offset", None))
    if known_fields is not None:
        for name, column in field_names(tree):
            if name not in known_fields:
                raise ParseError(f"unknown field {name!r}", protocol="filter", offset=column)

    def matches(record: Record) -> bool:
        return bool(_evaluate(tree, record))

    return matches
