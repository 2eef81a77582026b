"""Field trees (``dissect -V``) drawn by renderers compiled once per shape of the fields.

A record's fields are JSON values, and the dictionaries in them come in few shapes: every
pong, every compact node, every GGEP extension has the same keys. :class:`ShapeTreeRenderer`
draws the text that ``p2pkit.capture.render.tree_text`` draws (the generic renderer: one
call, a chain of type tests and one f-string per line) with a function generated for each
shape it meets, a shape being the indent and the keys of a dictionary. That function has the
indentation and the labels as constants, unpacks the values in one step and returns the whole
dictionary as one f-string (several lines; joined with ``"\\n"`` the output is the generic
one, line for line). Each value is drawn as the type it had when the shape was compiled is
drawn (text quoted the JSON way, numbers, booleans and ``None`` as ``format`` writes them, a
nested dictionary by the function of its own shape, a list of dictionaries counted and then
item by item), and any other type by :meth:`ShapeTreeRenderer.value`, which draws every value
whatever its type, the ones it has no compiled form for (an enum, a tuple, a dict subclass,
a dictionary with a key that is not text or is empty, more than :data:`MAX_COMPILED_KEYS`
keys, nesting deeper than :data:`MAX_COMPILED_INDENT`) by the generic renderer. A nested
dictionary's function checks the keys it was made for and hands any other dictionary to the
function of that one's shape, compiled the second time a shape is met. At most
:data:`MAX_SHAPES` shapes are compiled; past that the generic renderer draws the others.

Each function first checks that the values have the sample's types (text, a scalar, a
dictionary) and then returns the whole text from one f-string with the labels as literal text
and the values inline (no string per line built and joined again); values of other types
take the item-by-item path above. A slot whose type keeps changing (a GGEP extension's
``value``: text, a number, a dictionary) would miss that check again and again: after
:data:`MAX_MISSES` misses the function is compiled again with the slots that missed drawn the
item-by-item way inside the one f-string, and its code replaced in place (every caller holds
the same function object), at most once per slot.

The top level of a record (:meth:`ShapeTreeRenderer.fields`) is compiled the same way,
per keys of the fields and of their spans, with the byte spans (``[start:end]``, ``tshark -V``
style) written before the first line of the fields that have one (a nested dictionary's
function is given the span as what its first line starts with). Tests compare this renderer
with the generic one on every record of every committed capture and on hypothesis-generated
values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from json import JSONEncoder
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

__all__ = ["MAX_COMPILED_INDENT", "MAX_COMPILED_KEYS", "MAX_MISSES", "MAX_SHAPES", "ShapeTreeRenderer",
           "json_text"]

#: Shapes compiled at most (dictionaries and record tops); past that, generic rendering.
MAX_SHAPES = 2048
#: A dictionary with more keys than this is drawn by the generic renderer (no such shape
#: repeats; its function would be as long as the dictionary).
MAX_COMPILED_KEYS = 64
#: Dictionaries nested deeper than this are drawn by the generic renderer.
MAX_COMPILED_INDENT = 24
#: Values of other types than a compiled shape's guards expect, met before the slots that
#: had them are drawn unguarded (recompiled).
MAX_MISSES = 8
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


#: A dictionary's renderer: (the dictionary, its label[, what its first line starts with
#: instead of the indentation]) -> its lines, joined.
Node = Callable[..., str]
#: A record top's renderer: (the fields, the spans, the base offset) -> its lines, joined.
Top = Callable[[Mapping[str, Any], Mapping[str, tuple[int, int]], int], str]


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
        if kind is str:
            return f"{_pad(indent)}{name}: {encode_basestring(value)}"
        if kind in _FORMATTED:
            return f"{_pad(indent)}{name}: {value}"
        if kind is dict:
            return self.node(value, indent, name)
        if kind is list:
            return self.items(value, indent, name, None)
        return self.generic_text(value, indent, name)

    def node(self, value: dict[Any, Any], indent: int, name: str) -> str:
        """The lines of the dictionary ``value`` labelled ``name`` at ``indent``, by the
        function of its shape."""
        shape = (indent, tuple(value))
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
        its span (``[base + start:base + end]``) when ``spans`` has one (several lines may be
        one string, joined by newlines)."""
        text = self.fields_text(fields, spans, base)
        if text:
            out.append(text)

    def fields_text(self, fields: dict[Any, Any], spans: Mapping[str, tuple[int, int]],
                    base: int) -> str:
        """The lines of a record's ``fields`` (indent 1) joined by newlines, each field's first
        line with its span (``[base + start:base + end]``) when ``spans`` has one; ``""``
        when there are none."""
        if type(fields) is dict and fields:
            shape = (tuple(fields), tuple(spans))
            draw = self._tops.get(shape)
            if draw is None:
                draw = self._top_for(shape, fields)
            if draw is not None:
                return draw(fields, spans, base)
        get = spans.get
        generic = self._generic
        out: list[str] = []
        for key, value in fields.items():
            key = str(key)
            span = get(key)
            first = len(out)
            generic(value, 1, key, out)
            if span is not None:
                out[first] = f"    [{base + span[0]}:{base + span[1]}] " + out[first].lstrip()
        return "\n".join(out)

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

    def _child(self, sample: dict[Any, Any], indent: int) -> Node | None:
        """The function of a nested dictionary's shape, compiled now if it is not."""
        shape = (indent, tuple(sample))
        found = self._nodes.get(shape)
        if found is not None or indent > MAX_COMPILED_INDENT or self._compiled >= MAX_SHAPES \
                or not _compilable(shape[1]):
            return found
        return self._compile_node(shape, sample)

    def _compile_node(self, shape: tuple[Any, ...], sample: dict[Any, Any]) -> Node:
        indent, keys = shape
        self._compiled += 1
        pad = _pad(indent)
        # lead: what the first line starts with instead of the indentation (a record top's
        # span, for a field whose name starts with no white space)
        env: dict[str, Any] = {"K": keys, "node": self.node, "PAD": pad}
        other = (f"    return node(d, {indent}, name) if lead is PAD else "
                 f"lead + node(d, {indent}, name).lstrip()\n")
        if len(keys) == 2 and "sha1" in keys and "length" in keys:  # a large binary's digest
            source = ("def draw(d, name, lead=PAD):\n"
                      "    if type(d) is dict and tuple(d) == K:\n"
                      "        return f'{lead}{name}: <{d[\"length\"]} bytes, sha1 "
                      "{d[\"sha1\"]}>'\n" + other)
            exec(compile(source, f"<tree shape {keys!r:.60} at {indent}>", "exec"), env)
            draw: Node = env["draw"]
        else:
            unpack = ("        " + ", ".join(f"v{i}" for i in range(len(keys)))
                      + ", = d.values()\n") if keys else ""

            def source(body: _Body) -> str:
                return ("def draw(d, name, lead=PAD):\n"
                        "    if type(d) is dict and tuple(d) == K:\n"
                        f"{unpack}"
                        + body.source("        ", ["f'{lead}'", "f'{name}'", repr(":")])
                        + other)

            draw = self._install(env, keys, list(sample.values()), indent + 1, None, source,
                                 f"<tree shape {keys!r:.60} at {indent}>")
        self._nodes[shape] = draw
        return draw

    def _top_for(self, shape: tuple[Any, ...], sample: dict[Any, Any]) -> Top | None:
        keys, spanned = shape
        # the generic top strips a field's first line before its span: a key starting with
        # white space would lose it
        if not _compilable(keys) or any(k[0].isspace() for k in keys if k in spanned) \
                or not self._due(shape):
            return None
        self._compiled += 1
        unpack = "    " + ", ".join(f"v{i}" for i in range(len(keys))) + ", = d.values()\n"

        def source(body: _Body) -> str:
            return "def draw(d, spans, base):\n" + unpack + body.source("    ", [])

        draw: Top = self._install({}, keys, list(sample.values()), 1, set(spanned), source,
                                  f"<tree top {keys!r:.60}>")
        self._tops[shape] = draw
        return draw

    def _install(self, env: dict[str, Any], keys: tuple[str, ...], samples: list[Any],
                 indent: int, spanned: set[str] | None, source: Callable[[_Body], str],
                 filename: str) -> Any:
        """The function drawing a dictionary of ``keys`` (``source`` gives its text from the
        items' code), compiled; its guarded path for the sample's types is loosened when
        values of other types keep coming (the function's code replaced, so that every
        caller holding it runs the new one)."""
        loose: set[int] = set()
        body = self._body(env, keys, samples, indent, spanned, loose)
        exec(compile(source(body), filename, "exec"), env)
        draw = env["draw"]

        def loosen(d: dict[Any, Any]) -> None:
            """The slots whose values are not of the sample's types, drawn by the path for
            any type from now on (at most once per slot: the function's guards are bounded
            by its keys)."""
            nonlocal body
            types = [type(v) for v in d.values()]
            loose.update(i for i, expected in body.guarded if not expected(types[i]))
            body = self._body(env, keys, samples, indent, spanned, loose)
            env["MISSES"][0] = 0
            exec(compile(source(body), filename, "exec"), env)
            draw.__code__ = env["draw"].__code__

        env.update(MISSES=[0], loosen=loosen)
        return draw

    def _body(self, env: dict[str, Any], keys: tuple[str, ...], samples: list[Any],
              indent: int, spanned: set[str] | None, loose: set[int]) -> _Body:
        """The code drawing the lines of a dictionary's items at ``indent`` (a newline
        before each item's lines but the top's first); with ``spanned`` (a record's top),
        each spanned field's first line starts with its span. Every value is drawn whatever
        its type: when the values have the types the sample's have (a guard), by one f-string
        with scalars inline and nested dictionaries by their shapes' functions; otherwise
        item by item, as the sample's type is when the value has it, by :meth:`value` when
        it does not. The slots in ``loose`` (values of several types met) are drawn on the
        guarded path as on the other, unguarded."""
        pad = _pad(indent)
        env.update(q=encode_basestring, value=self.value, items=self.items, F=_FORMATTED,
                   LABELS=_LABELS)
        body = _Body()
        for i, (key, sample) in enumerate(zip(keys, samples)):
            kind = type(sample)
            v = f"v{i}"
            k = repr(key)
            other = f"value({v}, {indent}, {k})"
            span = spanned is not None and key in spanned
            slow: list[str] = []  # the statements working out c{i}, the item's lines
            if span:
                slow.append(f"s{i} = spans[{k}]")
                slow.append(f"h{i} = f'    [{{base + s{i}[0]}}:{{base + s{i}[1]}}] '")
                label = f"h{i} + {repr(key + ': ')}"
                other = f"h{i} + {other}.lstrip()"
                fast_label = [repr("    ["), f"f'{{base + s{i}[0]}}'", repr(":"),
                              f"f'{{base + s{i}[1]}}'", repr(f"] {key}: ")]
            else:
                label = repr(f"{pad}{key}: ")
                fast_label = [repr(f"{pad}{key}: ")]
            newline = [repr("\n")] if body.pieces or spanned is None else []
            fast: list[str] | None = None  # the f-string pieces of the item, guarded
            guarded = i not in loose
            if kind is str or kind in _FORMATTED:
                if kind is str:
                    line = (f"{label} + q({v}) if type({v}) is str else "
                            f"{label} + f'{{{v}}}' if type({v}) in F else {other}")
                    if guarded:
                        body.guard(i, f"type({v}) is str", _is_str)
                        fast = fast_label + [f"f'{{q({v})}}'"]
                else:
                    line = (f"{label} + f'{{{v}}}' if type({v}) in F else "
                            f"{label} + q({v}) if type({v}) is str else {other}")
                    if guarded:
                        body.guard(i, f"type({v}) in F", _FORMATTED.__contains__)
                        fast = fast_label + [f"f'{{{v}}}'"]
                slow.append(f"c{i} = {line}")
                if span and guarded:
                    body.fast_prepare.append(f"s{i} = spans[{k}]")
            elif kind is dict:
                child = self._child(sample, indent)
                if child is not None:
                    env[f"N{i}"] = child
                    drawn = f"N{i}({v}, {k})"
                    slow.append(f"c{i} = {f'h{i} + {drawn}.lstrip()' if span else drawn} "
                                f"if type({v}) is dict else {other}")
                    if guarded:  # (the key by name: no quotes in f-strings)
                        env[f"KEY{i}"] = key
                        body.guard(i, f"type({v}) is dict", _is_dict)
                        if span:  # the span leads the first line
                            body.fast_prepare += slow[:2]
                            fast = [f"f'{{N{i}({v}, KEY{i}, h{i})}}'"]
                        else:
                            fast = [f"f'{{N{i}({v}, KEY{i})}}'"]
                else:
                    slow.append(f"c{i} = {other}")
            elif kind is list:
                first = next((x for x in sample if type(x) is dict), None)
                item = self._child(first, indent + 1) if first is not None else None
                env[f"I{i}"] = item
                env[f"LH{i}"] = f"{pad}{key}: ("
                whole = (f"LH{i} + f'{{len({v})}} items)\\n' + '\\n'.join(["
                         f"I{i}(x, label) if type(x) is dict else value(x, {indent + 1}, label)"
                         f" for x, label in zip({v}, LABELS)])")
                if span:
                    whole = f"h{i} + ({whole}).lstrip()"
                    listed = f"h{i} + items({v}, {indent}, {k}, I{i}).lstrip()"
                else:
                    listed = f"items({v}, {indent}, {k}, I{i})"
                if item is not None:  # lists of dictionaries: counted, then item by item
                    slow.append(f"c{i} = ({whole} if type({v}) is list and 0 < len({v}) <= "
                                f"{len(_LABELS)} and type({v}[0]) is dict else {listed} if "
                                f"type({v}) is list else {other})")
                else:
                    slow.append(f"c{i} = {listed} if type({v}) is list else {other}")
            else:
                slow.append(f"c{i} = {other}")
            body.prepare += slow
            body.pieces += newline + [f"f'{{c{i}}}'"]
            if fast is None:  # drawn as on the slow path, whatever the type
                body.fast_prepare += slow
                fast = [f"f'{{c{i}}}'"]
            body.fast_pieces += newline + fast
        return body


class _Body:
    """The generated code of a dictionary's items: the statements and f-string pieces of the
    path for any types (``prepare``, ``pieces``) and of the path for the sample's types
    (``guards``, ``fast_prepare``, ``fast_pieces``)."""

    def __init__(self) -> None:
        self.prepare: list[str] = []
        self.pieces: list[str] = []
        self.guards: list[str] = []
        #: (slot, whether a value's type is the one its guard expects)
        self.guarded: list[tuple[int, Callable[[type], bool]]] = []
        self.fast_prepare: list[str] = []
        self.fast_pieces: list[str] = []

    def guard(self, slot: int, test: str, expected: Callable[[type], bool]) -> None:
        self.guards.append(test)
        self.guarded.append((slot, expected))

    def source(self, indent: str, head: list[str]) -> str:
        """The statements returning the items' text (``head``: the pieces before them), the
        guarded path first."""
        def path(prepare: list[str], pieces: list[str], at: str) -> str:
            return ("".join(f"{at}{line}\n" for line in prepare)
                    + f"{at}return {' '.join(head + pieces) or repr('')}\n")

        slow = path(self.prepare, self.pieces, indent)
        if not self.guards:  # nothing to check: the one path
            return slow
        # values of other types: drawn item by item; when they keep coming, the slots that
        # had them are loosened (see ShapeTreeRenderer._install)
        return (f"{indent}if {' and '.join(self.guards)}:\n"
                + path(self.fast_prepare, self.fast_pieces, indent + "    ")
                + f"{indent}MISSES[0] += 1\n"
                + f"{indent}if MISSES[0] == {MAX_MISSES}:\n"
                + f"{indent}    loosen(d)\n"
                + slow)


def _is_str(kind: type) -> bool:
    return kind is str


def _is_dict(kind: type) -> bool:
    return kind is dict


def _compilable(keys: tuple[Any, ...]) -> bool:
    return len(keys) <= MAX_COMPILED_KEYS and all(type(k) is str and k for k in keys)
