"""Field trees (``dissect -V``) drawn by renderers compiled once per shape of the fields.

A record's fields are JSON values, and the dictionaries in them come in few shapes: every
pong, every compact node, every GGEP extension has the same keys, holding values of the same
types. :class:`ShapeTreeRenderer` draws the text that
:func:`~p2pkit.capture.render.tree_text` draws (the generic renderer: one call, a chain of type
tests and one f-string per line) with a function generated for each shape it meets. A shape is
the indent, the keys and the exact type of every value; its function has the indentation and
the labels as constants, unpacks the values in one step, and writes the whole dictionary as
one f-string (several lines; joined with ``"\\n"`` the output is the generic one, line for
line). A nested dictionary is drawn by the function compiled for the shape it had when its
parent was compiled, which checks the keys and types it was made for and, when they differ,
hands the dictionary to the function of its own shape (compiled the second time that shape is
met). A value whose type has no compiled form (an enum, a tuple, a dict subclass) is drawn by
the generic renderer at its place, and so is a dictionary the compiler does not take (a key
that is not text or is empty, more than :data:`MAX_COMPILED_KEYS` keys, nesting deeper than
:data:`MAX_COMPILED_INDENT`). At most :data:`MAX_SHAPES` shapes are compiled; past that the
generic renderer draws the shapes not compiled.

The top level of a record (:meth:`ShapeTreeRenderer.fields`) is compiled the same way, with
the byte spans of its fields (``[start:end]``, ``tshark -V`` style) written before the first
line of the fields that have one. Tests compare this renderer with the generic one on every
record of every committed capture and on hypothesis-generated values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

__all__ = ["MAX_COMPILED_INDENT", "MAX_COMPILED_KEYS", "MAX_SHAPES", "ShapeTreeRenderer",
           "json_text"]

#: Shapes compiled at most (dictionaries and record tops); past that, generic rendering.
MAX_SHAPES = 2048
#: A dictionary with more keys than this is drawn by the generic renderer (no such shape
#: repeats; its function would be as long as the dictionary).
MAX_COMPILED_KEYS = 64
#: Dictionaries nested deeper than this are drawn by the generic renderer.
MAX_COMPILED_INDENT = 24
#: Shapes met once, remembered at most (to compile the ones met twice); cleared when full.
MAX_PENDING = 4096

#: Types whose line is ``label: value`` as ``format`` writes it (as the generic renderer's
#: f-string does).
_FORMATTED = (int, bool, float, type(None))
#: Scalars a short list holds that ``json_text`` writes as ``json.dumps`` does.
_SCALARS = frozenset((str, *_FORMATTED))
#: List item labels, made once.
_LABELS = tuple(f"[{i}]" for i in range(256))

if c_make_encoder is not None:  # CPython: json.dumps(value, ensure_ascii=False), one call
    _dumps_chunks = c_make_encoder(None, JSONEncoder().default, encode_basestring, None, ": ",
                                   ", ", False, False, True)

    def json_text(value: list[Any]) -> str:
        """``json.dumps(value, ensure_ascii=False)`` of a list of scalars of the exact types
        ``str``, ``int``, ``bool``, ``float`` and ``None`` (nothing that could hold a cycle),
        by the encoder ``json.dumps`` uses.

        >>> json_text([1, "é", None, 1.5])
        '[1, "é", null, 1.5]'
        """
        return "".join(_dumps_chunks(value, 0))
else:  # pragma: no cover - Python builds without the C accelerator
    import json

    def json_text(value: list[Any]) -> str:
        return json.dumps(value, ensure_ascii=False)


def _pad(indent: int) -> str:
    return "    " * indent


#: A dictionary's renderer: (the dictionary, its label) -> its lines, joined.
Node = Callable[[Any, str], str]
#: A record top's renderer: (the fields, the spans, the base offset, the output list).
Top = Callable[[Mapping[str, Any], Mapping[str, tuple[int, int]], int, list[str]], None]


class ShapeTreeRenderer:
    """Field-tree text, drawn by functions compiled per dictionary shape; ``generic`` is the
    renderer it must agree with (``tree_text(value, indent, name, out)``), which draws what
    has no compiled form.

    >>> from p2pkit.capture.render import tree_text
    >>> r = ShapeTreeRenderer(tree_text)
    >>> for port in (1, 2):
    ...     print(r.value({"ip": "10.0.0.1", "port": port, "n": [1, 2]}, 1, "peer"))
        peer:
            ip: "10.0.0.1"
            port: 1
            n: [1, 2]
        peer:
            ip: "10.0.0.1"
            port: 2
            n: [1, 2]
    """

    def __init__(self, generic: Callable[[Any, int, str, list[str]], None]) -> None:
        self._generic = generic
        self._nodes: dict[tuple[Any, ...], Node] = {}
        self._tops: dict[tuple[Any, ...], Top] = {}
        self._pending: dict[tuple[Any, ...], int] = {}
        self._compiled = 0

    @property
    def shapes(self) -> int:
        """How many shapes are compiled (dictionaries and record tops)."""
        return self._compiled

    # -- drawing ---------------------------------------------------------------------------

    def generic_text(self, value: Any, indent: int, name: str) -> str:
        """The generic renderer's lines of ``value`` labelled ``name`` at ``indent``, joined."""
        out: list[str] = []
        self._generic(value, indent, name, out)
        return "\n".join(out)

    def value(self, value: Any, indent: int, name: str) -> str:
        """The lines of ``value`` labelled ``name`` (not empty) at ``indent``, joined."""
        kind = type(value)
        if kind is dict:
            return self.node(value, indent, name)
        if kind is list:
            return self.items(value, indent, name, None)
        return self.generic_text(value, indent, name)

    def node(self, value: dict[Any, Any], indent: int, name: str) -> str:
        """The lines of the dictionary ``value`` labelled ``name`` at ``indent``, by the
        function of its shape."""
        shape = (indent, tuple(value), tuple(map(type, value.values())))
        draw = self._nodes.get(shape)
        if draw is None:
            draw = self._node_for(shape, value)
            if draw is None:
                return self.generic_text(value, indent, name)
        return draw(value, name)

    def items(self, value: list[Any], indent: int, name: str, item: Node | None) -> str:
        """A list labelled ``name``: on one line (at most 8 scalars), or counted, then item
        by item labelled ``[i]``, dictionaries by ``item`` (the function of the shape the
        items are expected to have) when given."""
        n = len(value)
        if n <= 8:
            if _SCALARS.issuperset(map(type, value)):
                return f"{_pad(indent)}{name}: {json_text(value)}"
            for v in value:
                if isinstance(v, (dict, list)):
                    break
            else:  # scalars json.dumps writes its own way (enums, tuples, …)
                return self.generic_text(value, indent, name)
        parts = [f"{_pad(indent)}{name}: ({n} items)"]
        labels = _LABELS if n <= len(_LABELS) else [f"[{i}]" for i in range(n)]
        inner = indent + 1
        draw = self.value
        if item is None:
            parts += [draw(v, inner, label) for v, label in zip(value, labels)]
        else:
            parts += [item(v, label) if type(v) is dict else draw(v, inner, label)
                      for v, label in zip(value, labels)]
        return "\n".join(parts)

    def fields(self, fields: dict[Any, Any], spans: Mapping[str, tuple[int, int]], base: int,
               out: list[str]) -> None:
        """Append the lines of a record's ``fields`` (indent 1), each field's first line with
        its span (``[base + start:base + end]``) when ``spans`` has one."""
        if type(fields) is dict and fields:
            shape = (tuple(fields), tuple(map(type, fields.values())), tuple(spans))
            draw = self._tops.get(shape)
            if draw is None:
                draw = self._top_for(shape, fields)
            if draw is not None:
                draw(fields, spans, base, out)
                return
        get = spans.get
        generic = self._generic
        for key, value in fields.items():
            key = str(key)
            span = get(key)
            first = len(out)
            generic(value, 1, key, out)
            if span is not None:
                out[first] = f"    [{base + span[0]}:{base + span[1]}] " + out[first].lstrip()

    # -- compilation -------------------------------------------------------------------------

    def _due(self, shape: tuple[Any, ...]) -> bool:
        """Whether ``shape`` is met the second time (compile it) with room left."""
        if self._compiled >= MAX_SHAPES:
            return False
        pending = self._pending
        if shape in pending:
            del pending[shape]
            return True
        if len(pending) >= MAX_PENDING:
            pending.clear()
        pending[shape] = 1
        return False

    def _node_for(self, shape: tuple[Any, ...], sample: dict[Any, Any]) -> Node | None:
        """The function of a dictionary's shape, compiled the second time it is met."""
        if not _compilable(shape[1]) or shape[0] > MAX_COMPILED_INDENT or not self._due(shape):
            return None
        return self._compile_node(shape, sample)

    def _compile_node(self, shape: tuple[Any, ...], sample: dict[Any, Any]) -> Node:
        indent, keys, types = shape
        self._compiled += 1
        pad = _pad(indent)
        env: dict[str, Any] = {"K": keys, "node": self.node, "S": _SCALARS}
        if len(keys) == 2 and "sha1" in keys and "length" in keys:  # a large binary's digest
            source = ("def draw(d, name):\n"
                      "    if type(d) is dict and tuple(d) == K:\n"
                      f"        return f'{pad}{{name}}: <{{d[\"length\"]}} bytes, sha1 "
                      "{d[\"sha1\"]}>'\n"
                      f"    return node(d, {indent}, name)\n")
        else:
            pieces = [f"f'{pad}{{name}}:'"]
            pieces += self._body(env, keys, types, list(sample.values()), indent + 1, None)
            unpack = ("        " + ", ".join(f"v{i}" for i in range(len(keys)))
                      + ", = d.values()\n") if keys else ""
            guards = " and ".join(f"type(v{i}) in S" if types[i] in _SCALARS
                                  else f"type(v{i}) is T{i}" for i in range(len(keys))) or "True"
            prepare = "".join(f"            {line}\n" for line in env.pop("_prepare"))
            source = ("def draw(d, name):\n"
                      "    if type(d) is dict and tuple(d) == K:\n"
                      f"{unpack}"
                      f"        if {guards}:\n"
                      f"{prepare}"
                      f"            return {' '.join(pieces)}\n"
                      f"    return node(d, {indent}, name)\n")
        exec(compile(source, f"<tree shape {keys!r:.60} at {indent}>", "exec"), env)
        draw: Node = env["draw"]
        self._nodes[shape] = draw
        return draw

    def _top_for(self, shape: tuple[Any, ...], sample: dict[Any, Any]) -> Top | None:
        keys, types, spanned = shape
        # the generic top strips a field's first line before its span: a key starting with
        # white space would lose it
        if not _compilable(keys) or any(k[0].isspace() for k in keys if k in spanned) \
                or not self._due(shape):
            return None
        self._compiled += 1
        env: dict[str, Any] = {}
        pieces = self._body(env, keys, types, list(sample.values()), 1, set(spanned))
        prepare = "".join(f"    {line}\n" for line in env.pop("_prepare"))
        source = ("def draw(d, spans, base, out):\n"
                  "    " + ", ".join(f"v{i}" for i in range(len(keys))) + ", = d.values()\n"
                  f"{prepare}"
                  f"    out.append({' '.join(pieces)})\n")
        exec(compile(source, f"<tree top {keys!r:.60}>", "exec"), env)
        draw: Top = env["draw"]
        self._tops[shape] = draw
        return draw

    def _body(self, env: dict[str, Any], keys: tuple[str, ...], types: tuple[type, ...],
              samples: list[Any], indent: int, spanned: set[str] | None
              ) -> list[str]:
        """The pieces of one f-string writing the items of a dictionary at ``indent`` (a
        newline before each), and in ``env["_prepare"]`` the statements working out its
        nested values first; with ``spanned`` (a record's top), each spanned field's first
        line starts with its span."""
        pad = _pad(indent)
        env.update(q=encode_basestring, value=self.value, items=self.items,
                   generic=self.generic_text)
        prepare: list[str] = []
        pieces: list[str] = []
        for i, (key, kind, sample) in enumerate(zip(keys, types, samples)):
            env[f"T{i}"] = kind
            v = f"v{i}"
            k = repr(key)
            span = spanned is not None and key in spanned
            if span:
                prepare.append(f"s{i} = spans[{k}]")
                head = f"f'    [{{base + s{i}[0]}}:{{base + s{i}[1]}}] '"
            if pieces or spanned is None:
                pieces.append(repr("\n"))
            if kind is str or kind in _FORMATTED:
                pieces.append(head if span else repr(pad))
                pieces.append(repr(f"{key}: "))
                if spanned is not None:  # a top: its function is for these exact types
                    pieces.append(f"f'{{q({v})}}'" if kind is str else f"f'{{{v}}}'")
                else:  # any scalar (a node's function takes them all): text quoted as JSON
                    pieces.append(f"f'{{q({v}) if type({v}) is str else {v}}}'")
                continue
            if kind is dict and indent < MAX_COMPILED_INDENT:
                child = self._nodes.get((indent, tuple(sample), tuple(map(type,
                                                                          sample.values()))))
                if child is None and _compilable(tuple(sample)) and self._compiled < MAX_SHAPES:
                    child = self._compile_node(
                        (indent, tuple(sample), tuple(map(type, sample.values()))), sample)
                if child is not None:
                    env[f"N{i}"] = child
                    prepare.append(f"c{i} = N{i}({v}, {k})")
                else:
                    prepare.append(f"c{i} = value({v}, {indent}, {k})")
            elif kind is list:
                item = None
                first = next((x for x in sample if type(x) is dict), None)
                if first is not None and indent + 1 < MAX_COMPILED_INDENT:
                    shape = (indent + 1, tuple(first), tuple(map(type, first.values())))
                    item = self._nodes.get(shape)
                    if item is None and _compilable(shape[1]) and self._compiled < MAX_SHAPES:
                        item = self._compile_node(shape, first)
                env[f"I{i}"] = item
                prepare.append(f"c{i} = items({v}, {indent}, {k}, I{i})")
            else:
                prepare.append(f"c{i} = generic({v}, {indent}, {k})")
            if span:
                prepare.append(f"c{i} = {head} + c{i}.lstrip()")
            pieces.append(f"f'{{c{i}}}'")
        env["_prepare"] = prepare
        return pieces


def _compilable(keys: tuple[Any, ...]) -> bool:
    return len(keys) <= MAX_COMPILED_KEYS and all(type(k) is str and k for k in keys)
