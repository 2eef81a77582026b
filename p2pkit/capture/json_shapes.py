"""Decoded mappings turned into JSON by converters compiled once per shape.

``p2pkit.capture.record.json_value`` turns a decoded message (construct Containers,
bytes, enums, addresses) into the JSON value of a record's fields, one call per value and a
chain of type tests per item. The mappings a decoder gives come in few shapes (every pong's
GGEP block, every compact node: the same keys holding values of the same types), so
:class:`ShapeJsonConverter` converts a mapping with a function generated for its shape (its
type, its keys, the exact type of every value), compiled the second time the shape is met: the
keys are constants (hidden ``_`` keys left out, byte keys decoded once), the values unpacked in
one step, and the dictionary built by one display, each value converted inline as
``json_value`` converts its type (text as is when ASCII, bytes as hex or length + SHA-1, IPv4
addresses by ``inet_ntoa``). A nested mapping, or the mappings in a list, go to the function
of the shape they had when their parent was compiled; it checks the keys and types it was made
for and, when they differ, hands the mapping to the function of its own shape. Other values
(enums, construct's enum strings, dataclasses) go to ``json_value`` itself, and so does a
mapping the compiler does not take (a key that is neither text nor bytes, more than
:data:`MAX_COMPILED_KEYS` keys, a mapping type it does not know). At most :data:`MAX_SHAPES`
shapes are compiled.

Tests compare this converter with the generic conversion on every decoded message of every
committed capture and on hypothesis-generated values.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from typing import Any

from construct import Container, ListContainer

__all__ = ["MAX_COMPILED_KEYS", "MAX_SHAPES", "ShapeJsonConverter"]

#: Shapes compiled at most; past that, the generic conversion.
MAX_SHAPES = 2048
#: A mapping with more keys than this is converted by the generic conversion.
MAX_COMPILED_KEYS = 64
#: Nesting deeper than this is compiled no further (the generic conversion goes on).
MAX_COMPILED_DEPTH = 24
#: Shapes met once, remembered at most (to compile the ones met twice); cleared when full.
MAX_PENDING = 4096

#: Values ``json_value`` keeps as they are.
_KEPT = frozenset((int, bool, float, type(None)))
#: The mapping and sequence types converted here (exact types, as ``json_value``'s table).
_MAPPINGS = (dict, Container)
_SEQUENCES = (list, tuple, ListContainer)

#: A converter: (the mapping, ``summarised``) -> its JSON dictionary.
Converter = Callable[[Any, Collection[str]], dict[str, Any]]


class ShapeJsonConverter:
    """JSON dictionaries of decoded mappings, by functions compiled per shape.

    ``generic(value, summarised)`` is the conversion of a mapping it must agree with;
    ``json_value``, ``text_value``, ``binary``, ``key`` and ``limit`` are the record module's
    (the conversion of any value, of text, of bytes, of a key, and the longest binary
    written inline), given here so that both use one definition.

    >>> from p2pkit.capture import record
    >>> c = ShapeJsonConverter(record.json_mapping, json_value=record.json_value,
    ...                        text_value=record.text_value, binary=record._binary,
    ...                        key=record._key, limit=record.BINARY_INLINE_LIMIT)
    >>> [c.convert({"id": bytes([n]), "port": 6881, "_io": None}, ()) for n in (1, 2, 3)]
    [{'id': '01', 'port': 6881}, {'id': '02', 'port': 6881}, {'id': '03', 'port': 6881}]
    >>> c.shapes  # compiled the second time the shape was met
    1
    """

    def __init__(self, generic: Callable[[Any, Collection[str]], dict[str, Any]], *,
                 json_value: Callable[..., Any], text_value: Callable[[str], str],
                 binary: Callable[[str, bytes, Collection[str]], Any],
                 key: Callable[[Any], str], limit: int) -> None:
        self._generic = generic
        self._env = {"jv": json_value, "tv": text_value, "BIN": binary, "LIMIT": limit,
                     "P": _KEPT, "convert": self.convert}
        self._key = key
        self._converters: dict[tuple[Any, ...], Converter] = {}
        self._guarded: dict[tuple[Any, ...], Converter] = {}
        self._pending: dict[tuple[Any, ...], int] = {}

    @property
    def shapes(self) -> int:
        """How many shapes are compiled."""
        return len(self._converters)

    def convert(self, value: Any, summarised: Collection[str]) -> dict[str, Any]:
        """The JSON dictionary of the mapping ``value`` (a dict or a Container)."""
        shape = (type(value), tuple(value))
        draw = self._converters.get(shape)
        if draw is None:
            draw = self._converter_for(shape, value)
            if draw is None:
                return self._generic(value, summarised)
        return draw(value, summarised)

    def _converter_for(self, shape: tuple[Any, ...], sample: Any) -> Converter | None:
        if len(self._converters) >= MAX_SHAPES or not _compilable(shape[1]):
            return None
        pending = self._pending
        if shape not in pending:
            if len(pending) >= MAX_PENDING:
                pending.clear()
            pending[shape] = 1
            return None
        del pending[shape]
        return self._compile(shape, sample, 0)[0]

    def _child(self, sample: Any, depth: int) -> Converter | None:
        """The guarded converter of a nested mapping's shape (compiled now if it is not)."""
        shape = (type(sample), tuple(sample))
        found = self._guarded.get(shape)
        if found is not None or shape in self._converters:
            return found  # (None: being compiled, a mapping holding its own shape)
        if depth >= MAX_COMPILED_DEPTH or len(self._converters) >= MAX_SHAPES \
                or not _compilable(shape[1]):
            return None
        return self._compile(shape, sample, depth)[1]

    def _compile(self, shape: tuple[Any, ...], sample: Any, depth: int
                 ) -> tuple[Converter, Converter]:
        """The converter of ``shape`` (for mappings known to have it) and its guarded twin
        (for any value: a mapping of another shape goes to :meth:`convert`)."""
        kind, keys = shape
        env = dict(self._env, C=kind, K=keys)
        names: list[str] = []
        items: list[str] = []
        self._converters[shape] = self._generic  # while compiling (a shape inside itself)
        for i, (key, v) in enumerate(zip(keys, sample.values())):
            if type(key) is str and key[:1] == "_":  # hidden (construct's _io …)
                names.append("_")
                continue
            name = key if type(key) is str else self._key(key)
            x = f"v{i}"
            names.append(x)
            k = repr(name)
            vtype = type(v)
            env[f"T{i}"] = vtype
            other = f"jv({x}, {k}, s)"  # any other type: json_value's own conversion
            # each value converted as its type in the sample is, any other by json_value
            if vtype is str:
                expr = f"({x} if type({x}) is str and {x}.isascii() else {other})"
            elif vtype in _KEPT:
                expr = f"({x} if type({x}) in P else {other})"
            elif vtype is bytes:
                expr = (f"({x}.hex() if type({x}) is bytes and len({x}) <= LIMIT "
                        f"and {k} not in s else {other})")
            elif vtype is ipaddress.IPv4Address:
                env["ntoa"] = socket.inet_ntoa
                expr = f"(ntoa({x}.packed) if type({x}) is T{i} else {other})"
            elif vtype in _MAPPINGS:
                child = self._child(v, depth + 1)
                if child is not None:
                    env[f"N{i}"] = child
                    expr = f"(N{i}({x}, s) if type({x}) is T{i} else {other})"
                else:
                    expr = other
            elif vtype in _SEQUENCES:
                first = next((y for y in v if type(y) in _MAPPINGS), None)
                child = self._child(first, depth + 1) if first is not None else None
                if child is not None:
                    env[f"I{i}"], env[f"IT{i}"] = child, type(first)
                    expr = (f"([I{i}(y, s) if type(y) is IT{i} else jv(y, {k}, s) "
                            f"for y in {x}] if type({x}) is T{i} else {other})")
                else:
                    expr = other
            else:  # enums, construct's enum strings, dataclasses …
                expr = other
            items.append(f"{k}: {expr}")
        unpack = f"    {', '.join(names)}, = d.values()\n" if names else ""
        display = "{" + ", ".join(items) + "}"
        source = ("def convert_shape(d, s):\n"
                  f"{unpack}"
                  f"    return {display}\n"
                  "def convert_guarded(d, s):\n"
                  "    if type(d) is C and tuple(d) == K:\n"
                  f"    {unpack}"
                  f"        return {display}\n"
                  "    return convert(d, s)\n")
        exec(compile(source, f"<json shape {keys!r:.60}>", "exec"), env)
        draw: Converter = env["convert_shape"]
        self._converters[shape] = draw
        self._guarded[shape] = env["convert_guarded"]
        return draw, env["convert_guarded"]


def _compilable(keys: tuple[Any, ...]) -> bool:
    # str and bytes keys only: 1, 1.0 and True are equal keys of a tuple but named apart
    return len(keys) <= MAX_COMPILED_KEYS and all(type(k) is str or type(k) is bytes
                                                  for k in keys)

