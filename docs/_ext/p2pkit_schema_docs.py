"""Message and field tables generated from p2pkit's construct schemas, so the docs cannot drift.

:func:`describe` walks a construct object (``Schema`` -> ``Prefixed`` -> ``Struct`` ->
``Switch`` cases -> fields) and returns one :class:`Row` per field: the message it belongs to,
the message id, the field path, the wire type (``uint32 BE``, ``bytes[20]``, ``bencoded value,
BEP 3`` …), enum values or flag names, the size in bytes (or bits inside a ``BitStruct``, or
``variable``) and the field's docstring (construct's ``"name" / Type * "doc"``).
:func:`describe_messages` groups the same rows per message. Both are pure functions: they never
parse or build bytes, and an unknown construct becomes an honest ``<TypeName>`` row instead of an
error.

>>> import construct
>>> rows = describe(construct.Struct("index" / construct.Int32ub * "piece index"))
>>> [(r.field, r.type, r.size, r.doc) for r in rows]
[('index', 'uint32 BE', '4', 'piece index')]

:func:`describe_items` does the same for tables that are data rather than constructs (KRPC's
``ARGUMENTS``, an error-code ``Enum``), with the spec quote written beside each entry in the
source as its doc.

:func:`protocol_reference` gives the same rows for every schema a registered protocol lists
(:mod:`p2pkit.registry`), and :func:`protocol_rows` one row per registered protocol (name,
title, specs, transports, what ``--decode-as`` accepts), so a protocol added to the registry is
documented without touching the docs.

The Sphinx directives that render these rows as tables live in ``p2pkit_schema_sphinx`` (the
extension ``docs/conf.py`` loads).
"""

from __future__ import annotations

import ast
import enum
import functools
import importlib
import inspect
import io
import re
import sys
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import construct

__all__ = ["Message", "Reference", "Row", "describe", "describe_items", "describe_messages",
           "protocol_reference", "protocol_rows", "resolve"]

#: Deepest nesting walked; a deeper (or self-referencing) schema is cut with a ``…`` row.
MAX_DEPTH = 24

_INT_BITS = {"b": 8, "B": 8, "h": 16, "H": 16, "i": 32, "I": 32, "l": 32, "L": 32, "q": 64,
             "Q": 64, "n": 64, "N": 64}
_FLOAT_BITS = {"e": 16, "f": 32, "d": 64}
_ORDER = {">": "BE", "<": "LE", "=": "native", "!": "BE", "@": "native"}


@dataclass(frozen=True)
class Row:
    """One field of one message, as the documentation shows it."""

    #: Message name (the ``Switch`` case or message-table name); ``""`` for the frame itself.
    message: str
    #: The id that selects the message on the wire (``"6"``), ``""`` when there is none.
    message_id: str
    #: Field path inside the message: ``index``, ``reserved``, ``peers[].ip``, ``(length)``.
    field: str
    #: Wire type: ``uint32 BE``, ``bytes[20]``, ``bencoded value, BEP 3``, ``<TypeName>`` …
    type: str
    #: Size in bytes (``"4"``), in bits inside a ``BitStruct`` (``"4 bits"``), or ``variable``.
    size: str
    #: Enum values (``choke=0, unchoke=1``), flag names or the constant's value.
    values: str = ""
    #: The field's docstring (construct's ``"name" / Type * "doc"``).
    doc: str = ""
    #: Nesting level of the field inside its message (0 for top-level fields).
    depth: int = 0


@dataclass
class Message:
    """One message of a schema: its name, id, the construct of its body and its rows."""

    name: str
    id: str
    body: Any
    rows: list[Row] = field(default_factory=list)


def describe(con: Any) -> list[Row]:
    """Every field of ``con`` as rows, messages in the order the schema declares them.

    >>> import construct
    >>> frame = construct.Prefixed(construct.Int8ub, construct.Struct(
    ...     "type" / construct.Enum(construct.Int8ub, ping=1, pong=2),
    ...     "body" / construct.Switch(construct.this.type, {
    ...         "ping": construct.Struct("token" / construct.Bytes(4)),
    ...         "pong": construct.Struct()})))
    >>> for r in describe(frame):
    ...     print(r.message or "-", r.message_id or "-", r.field, "|", r.type, "|", r.size)
    - - (length) | uint8 | 1
    - - type | uint8 enum | 1
    - - body | message body, selected by type | variable
    ping 1 token | bytes[4] | 4
    pong 2 (no payload) | nothing | 0
    """
    return [row for message in describe_messages(con) for row in message.rows]


def describe_messages(con: Any) -> list[Message]:
    """The rows of ``con`` grouped per message; the frame (``name=""``) comes first if any.

    The first ``Switch`` (or message table: a construct with a ``by_id`` mapping of
    ``id -> (name, body)``) met outside any message defines the messages; a ``Switch`` inside a
    message is shown as the alternatives of that field.
    """
    walker = _Walker()
    frame = Message(name="", id="", body=con)
    walker.messages.append(frame)
    if _is_message_table(_TableView(con)):
        con = _TableView(con)
    walker.walk(con, "", _Context(message=frame, depth=0, bitwise=False, siblings={}, level=0))
    return [m for m in walker.messages if m.rows or m.name]


def describe_items(table: Any, module: Any = None) -> list[Row]:
    """Rows for a table that is data, not a construct: a mapping of bencoded items to their
    codecs (``ARGUMENTS = {"id": _ID, …}``), a mapping to tuples of names, or an ``Enum``.

    The doc of each entry is the comment written beside it in ``module``'s source (the spec
    quote), so these tables cannot drift either.

    >>> import enum
    >>> class Colour(enum.IntEnum):
    ...     RED = 1
    >>> [(r.field, r.type) for r in describe_items(Colour)]
    [('RED', '1')]
    """
    walker = _Walker()
    message = Message(name="", id="", body=table)
    walker.messages.append(message)
    ctx = _Context(message=message, depth=0, bitwise=False, siblings={}, level=0)
    if isinstance(table, type) and issubclass(table, enum.Enum):
        comments = _comments_of(table, module)
        for member in table:
            walker.emit(ctx, member.name, None, str(member.value), size="",
                        doc=comments.get(member.name, ""))
        return message.rows
    from p2pkit.bencode import BencodedDict

    if isinstance(table, BencodedDict):
        walker.declared_fields(table, "", ctx)
        return message.rows
    comments = _comments_of(table, module)
    for key, value in table.items():
        label = key if isinstance(key, str) else repr(key)
        if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
            walker.emit(ctx, label, None, ", ".join(value) or "(none)", size="",
                        doc=comments.get(label, ""))
        elif isinstance(value, construct.Construct):
            doc = comments.get(label) or _attribute_comment(value, module)
            walker.walk(value, label, ctx, doc)
        else:
            walker.codec(ctx, label, value, comments.get(label, ""))
    return message.rows


def resolve(dotted: str) -> Any:
    """The object a dotted path names: ``p2pkit.bittorrent.wire.messages.PeerMessage``.

    >>> resolve("construct.Int8ub") is construct.Int8ub
    True
    """
    module_name, _, attr = dotted.rpartition(".")
    while module_name:
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attr = f"{head}.{attr}"
            continue
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot import any module of {dotted!r}")


@dataclass
class Reference:
    """What the docs show for one schema a protocol lists: ``messages`` for a construct (or
    message table), ``rows`` for a data table (a dict of items, an ``Enum``)."""

    target: str
    messages: list[Message] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    @property
    def is_items(self) -> bool:
        return not self.messages


def protocol_reference(protocol: Any) -> list[Reference]:
    """The field tables of every schema a registered protocol lists (``schemas``).

    ``protocol`` is a name or a :class:`p2pkit.registry.ProtocolDescriptor`.

    >>> [r.target for r in protocol_reference("bt-utp")]
    ['p2pkit.bittorrent.wire.utp.UtpPacket']
    >>> [row.field for row in protocol_reference("bt-utp")[0].messages[0].rows][3:6]
    ['type', 'version', 'extension']
    """
    from p2pkit import registry

    descriptor = registry.get(protocol) if isinstance(protocol, str) else protocol
    out: list[Reference] = []
    for target, obj in registry.schema_objects(descriptor):
        if isinstance(obj, construct.Construct) or _is_message_table(_TableView(obj)):
            out.append(Reference(target=target, messages=describe_messages(obj)))
        else:
            module = importlib.import_module(target.rpartition(".")[0]) if "." in target else None
            out.append(Reference(target=target, rows=describe_items(obj, module)))
    return out


def protocol_rows() -> list[tuple[str, str, str, str, str]]:
    """One row per registered protocol: name, title, specs, transports, ``--decode-as``.

    >>> protocol_rows()[0]
    ('bittorrent', 'BitTorrent peer wire protocol', 'BEP 3, BEP 6, BEP 9, BEP 10, BEP 11, BEP 52', 'tcp', 'tcp.port==P,bittorrent')
    """
    from p2pkit import registry

    rows = []
    for d in registry.all_descriptors():
        decode_as = ", ".join(f"{t}.port==P,{d.name}" for t in d.transports)
        rows.append((d.name, d.title, ", ".join(d.specs), ", ".join(d.transports), decode_as))
    return rows


@dataclass(frozen=True)
class _Context:
    message: Message
    depth: int
    bitwise: bool
    #: Fields already seen in the enclosing Struct (resolves ``Switch(this.type, …)`` ids).
    siblings: Mapping[str, Any]
    #: Recursion level, bounded by MAX_DEPTH.
    level: int
    #: Inside a message (a Switch there documents one field's alternatives).
    inside: bool = False

    def deeper(self, **changes: Any) -> _Context:
        values = {"message": self.message, "depth": self.depth + 1, "bitwise": self.bitwise,
                  "siblings": self.siblings, "level": self.level + 1, "inside": self.inside}
        values.update(changes)
        return _Context(**values)


class _Walker:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    # -- rows ---------------------------------------------------------------------------------

    def emit(self, ctx: _Context, name: str, con: Any, type_: str, *, values: str = "",
             doc: str = "", size: str | None = None) -> None:
        ctx.message.rows.append(Row(
            message=ctx.message.name,
            message_id=ctx.message.id,
            field=name or ("(message)" if ctx.depth == 0 else "(unnamed)"),
            type=type_,
            size=_size(con, ctx.bitwise) if size is None else size,
            values=values,
            doc=doc,
            depth=ctx.depth,
        ))

    # -- walking ------------------------------------------------------------------------------

    def walk(self, con: Any, name: str, ctx: _Context, doc: str = "") -> None:
        """Emit the rows of field ``name`` (``""`` for the schema itself) of type ``con``."""
        if ctx.level > MAX_DEPTH:
            self.emit(ctx, name, con, "… (nested too deep to show)", size="variable")
            return
        try:
            self._walk(con, name, ctx, doc)
        except Exception as e:  # noqa: BLE001 - documentation must never crash the build
            self.emit(ctx, name, con, f"<{type(con).__name__}>", size="variable",
                      doc=f"(could not be described: {type(e).__name__})")

    def _walk(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        from p2pkit.bencode import BencodedConstruct, BencodedDict
        from p2pkit.schema import Schema

        cls = type(con)
        if isinstance(con, construct.Renamed):
            self.walk(con.subcon, name or con.name or "", ctx, con.docs or doc)
        elif isinstance(con, Schema):
            self.walk(con.subcon, name, ctx, doc)
        elif isinstance(con, BencodedDict):
            self.dictionary(con, name, ctx, doc)
        elif isinstance(con, BencodedConstruct):
            kind = "bencoded value, BEP 3" + ("" if con.strict else " (lenient)")
            self.emit(ctx, name, con, kind, doc=doc)
        elif _is_protobuf_message(con):
            self.protobuf_message(con, name, ctx, doc)
        elif _is_message_table(con):
            self.message_table(con, name, ctx, doc)
        elif isinstance(con, construct.Switch):
            self.switch(con, name, ctx, doc)
        elif isinstance(con, (construct.Struct, construct.Sequence)):
            kind = "sequence" if isinstance(con, construct.Sequence) else "struct"
            self.struct(con, name, ctx, doc, kind)
        elif isinstance(con, construct.FocusedSeq):
            self.focused(con, name, ctx, doc)
        elif isinstance(con, construct.Prefixed):
            self.prefixed(con, name, ctx, doc)
        elif isinstance(con, (construct.Array, construct.GreedyRange, construct.RepeatUntil)):
            self.array(con, name, ctx, doc)
        elif _is_bitwise(con):
            inner = _strip(con.subcon)
            if isinstance(inner, construct.Struct):
                self.struct(inner, name, ctx, doc, "bit struct", outer=con)
            else:
                self.walk(con.subcon, name, ctx.deeper(depth=ctx.depth, bitwise=True), doc)
        elif isinstance(con, construct.Const):
            self.emit(ctx, name or "(constant)", con, _leaf(con.subcon, ctx.bitwise),
                      values="= " + _const_value(con), doc=doc)
        elif isinstance(con, (construct.Enum, construct.Mapping)):
            values = ", ".join(f"{k}={_int(v)}" for k, v in con.encmapping.items())
            self.emit(ctx, name, con, f"{_leaf(con.subcon, ctx.bitwise)} enum", values=values,
                      doc=doc)
        elif isinstance(con, construct.FlagsEnum):
            values = _flag_names(con.flags, _size_int(con.subcon))
            self.emit(ctx, name, con, f"{_leaf(con.subcon, ctx.bitwise)} flags", values=values,
                      doc=doc)
        elif isinstance(con, construct.Padded):
            self.padded(con, name, ctx, doc)
        elif isinstance(con, construct.Rebuild):
            self.wrapped(con, name, ctx, doc, "{} (rebuilt from the other fields)")
        elif isinstance(con, construct.Default):
            self.wrapped(con, name, ctx, doc, f"{{}} (default {_short(con.value)})")
        elif isinstance(con, construct.IfThenElse):
            self.if_then_else(con, name, ctx, doc)
        elif isinstance(con, construct.Select):
            self.select(con, name, ctx, doc)
        elif isinstance(con, construct.Peek):
            self.wrapped(con, name, ctx, doc, "peek at {} (consumes nothing)", size="0")
        elif isinstance(con, construct.StringEncoded):
            self.wrapped(con, name, ctx, doc, f"{{}} as {con.encoding} text")
        elif isinstance(con, (construct.Hex, construct.HexDump)):
            self.walk(con.subcon, name, ctx, doc)
        elif isinstance(con, construct.NullTerminated):
            self.wrapped(con, name, ctx, doc, f"{{}}, terminated by {con.term!r}")
        elif isinstance(con, construct.NullStripped):
            self.wrapped(con, name, ctx, doc, f"{{}}, trailing {con.pad!r} stripped")
        elif isinstance(con, construct.FixedSized):
            self.wrapped(con, name, ctx, doc, f"{{}} in exactly {_expr(con.length)} bytes")
        elif _flag_bits(con) is not None:
            values = _flag_names(_flag_bits(con), _size_int(con.subcon))
            self.emit(ctx, name, con, f"{_leaf(con.subcon, ctx.bitwise)} flags "
                      f"({cls.__name__})", values=values, doc=doc or _class_doc(con))
        elif _dict_items(con) is not None:
            self.wrapped(con, name, ctx, doc or _class_doc(con), f"{{}} → {cls.__name__}")
            items = _dict_items(con)
            comments = _comments_of(items, sys.modules.get(cls.__module__))
            item_ctx = ctx.deeper()
            for key, codec in items.items():
                self.codec(item_ctx, _join(name, key), codec, comments.get(key, ""))
        elif isinstance(con, construct.Adapter):
            self.wrapped(con, name, ctx, doc or _class_doc(con), f"{{}} → {cls.__name__}")
        else:
            leaf = _leaf(con, ctx.bitwise)
            self.emit(ctx, name or _unnamed(con), con, leaf, doc=doc or _class_doc(con))

    def wrapped(self, con: Any, name: str, ctx: _Context, doc: str, template: str,
                size: str | None = None) -> None:
        """A wrapper: one row typed by ``template`` around the inner type, then its fields."""
        inner = con.subcon
        start = len(ctx.message.rows)
        self.walk(inner, name, ctx, doc)
        rows = ctx.message.rows
        if len(rows) > start:
            first = rows[start]
            rows[start] = Row(first.message, first.message_id, first.field,
                              template.format(first.type), size or _size(con, ctx.bitwise),
                              first.values, first.doc, first.depth)
        else:
            self.emit(ctx, name, con, template.format(_leaf(inner, ctx.bitwise)), doc=doc,
                      size=size)

    def struct(self, con: Any, name: str, ctx: _Context, doc: str, kind: str,
               outer: Any = None) -> None:
        inner_ctx = ctx
        if kind == "bit struct":
            inner_ctx = ctx.deeper(depth=ctx.depth, bitwise=True)
        if name:
            self.emit(ctx, name, outer if outer is not None else con, kind, doc=doc)
            inner_ctx = inner_ctx.deeper()
        self.fields(con, name, inner_ctx)

    def fields(self, con: Any, prefix: str, ctx: _Context) -> None:
        """The fields of a Struct/Sequence, named ``prefix.field``."""
        siblings: dict[str, Any] = {}
        ctx = ctx.deeper(depth=ctx.depth, siblings=siblings)
        positional = isinstance(con, construct.Sequence)
        for i, sub in enumerate(con.subcons):
            sub_name = getattr(sub, "name", None) or ""
            label = sub_name or (f"[{i}]" if positional else "")
            self.walk(sub, _join(prefix, label, sep="" if label.startswith("[") else ".")
                      if label else "", ctx)
            if sub_name:
                siblings[sub_name] = sub

    def focused(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        subs = {getattr(s, "name", None): s for s in con.subcons}
        count, items = subs.get("count"), subs.get("items")
        if (con.parsebuildfrom == "items" and len(con.subcons) == 2
                and isinstance(_strip(count), construct.Rebuild)
                and isinstance(_strip(items), construct.Array)):
            # construct's PrefixedArray(countfield, subcon)
            item = _strip(items).subcon
            counter = _leaf(_strip(count).subcon, ctx.bitwise)
            self.emit(ctx, name, con, f"array of {_leaf(item, ctx.bitwise)}, count prefixed "
                      f"as {counter}", doc=doc)
            self.children(item, _join(name, "[]", sep=""), ctx)
            return
        self.struct(con, name, ctx, doc, f"sequence (value of {con.parsebuildfrom})")

    def prefixed(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        inner = _strip(con.subcon)
        length_type = _leaf(con.lengthfield, ctx.bitwise)
        if _is_leaf(inner):
            self.emit(ctx, name, con, f"{_leaf(inner, ctx.bitwise)}, length prefixed as "
                      f"{length_type}", doc=doc)
            return
        self.emit(ctx, f"{name} (length)" if name else "(length)", con.lengthfield, length_type,
                  doc=f"byte count of {name or 'what follows'}")
        self.walk(con.subcon, name, ctx, doc)

    def array(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        item = con.subcon
        if isinstance(con, construct.Array):
            kind = f"{_leaf(item, ctx.bitwise)}[{_expr(con.count)}]"
        elif isinstance(con, construct.GreedyRange):
            kind = f"{_leaf(item, ctx.bitwise)}[] to the end"
        else:
            kind = f"{_leaf(item, ctx.bitwise)}[] until {_expr(con.predicate)}"
        self.emit(ctx, name, con, kind, doc=doc)
        self.children(item, _join(name, "[]", sep=""), ctx)

    def children(self, item: Any, name: str, ctx: _Context) -> None:
        """The fields of an array item, when the item has fields."""
        inner = _strip(item)
        if isinstance(inner, (construct.Struct, construct.Sequence)):
            self.fields(inner, name, ctx.deeper())
        elif not _is_leaf(inner):
            self.walk(item, name, ctx.deeper())

    def padded(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        if isinstance(con.subcon, type(construct.Pass)):
            self.emit(ctx, name or "(padding)", con, "padding",
                      values=f"filled with {con.pattern!r}", doc=doc)
        else:
            self.wrapped(con, name, ctx, doc, f"{{}} padded to {_expr(con.length)}")

    def if_then_else(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        cond = _expr(con.condfunc)
        if isinstance(con.elsesubcon, type(construct.Pass)):
            self.wrapped(_Shim(con.thensubcon), name, ctx, doc, f"{{}} if {cond}",
                         size=_size(con, ctx.bitwise))
            return
        self.emit(ctx, name, con, f"if {cond}: {_leaf(con.thensubcon, ctx.bitwise)} else "
                  f"{_leaf(con.elsesubcon, ctx.bitwise)}", doc=doc)
        self.walk(con.thensubcon, f"{name} (if {cond})", ctx.deeper())
        self.walk(con.elsesubcon, f"{name} (else)", ctx.deeper())

    def select(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        subs = list(con.subcons)
        if len(subs) == 2 and isinstance(subs[1], type(construct.Pass)):
            self.wrapped(_Shim(subs[0]), name, ctx, doc, "optional {}", size="variable")
            return
        kinds = " | ".join(_leaf(s, ctx.bitwise) for s in subs)
        self.emit(ctx, name, con, f"first that parses of: {kinds}", doc=doc)

    def switch(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        key = _expr(con.keyfunc)
        selector = _selector(con.keyfunc, ctx.siblings)
        cases = list(con.cases.items())
        default = con.default
        if not ctx.inside and ctx.depth == 0:
            self.emit(ctx, name or "(body)", con, f"message body, selected by {key}", doc=doc)
            for case_key, body in cases:
                self.message(str(case_key), _case_id(case_key, selector) or _const_id(
                    case_key, body), body)
            if not isinstance(default, (type(construct.Pass), type(construct.Error))):
                self.message("(default)", "", default)
            return
        self.emit(ctx, name, con, f"one of {len(cases)} alternatives, selected by {key}",
                  doc=doc)
        for case_key, body in cases:
            case_id = _case_id(case_key, selector)
            label = f"{case_key}={case_id}" if case_id and case_id != str(case_key) else case_key
            self.walk(body, f"{name} ({label})", ctx.deeper())
        if isinstance(default, type(construct.Error)):
            self.emit(ctx.deeper(), f"{name} (other)", default, "rejected (Error)", size="0")
        elif not isinstance(default, type(construct.Pass)):
            self.walk(default, f"{name} (other)", ctx.deeper())

    def message_table(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        ids = list(con.by_id.items())
        type_field = getattr(con, "type_field", None)  # p2pkit.schema.MessageSwitch
        width = type_field.sizeof() if type_field is not None else max(
            (_int_width(mid) for mid, _ in ids), default=1)
        key = getattr(con, "key", None)
        self.emit(ctx, _join(name, key) if isinstance(key, str) else "(message id)", con,
                  f"uint{8 * width}", size=str(width),
                  values=", ".join(f"{entry[0]}={_int(mid)}" for mid, entry in ids),
                  doc=doc or "selects the message body")
        if ctx.inside or ctx.depth > 0:
            for _, (message_name, body) in ids:
                self.walk(body, f"{name} ({message_name})" if name else f"({message_name})",
                          ctx.deeper())
            return
        for mid, (message_name, body) in ids:
            self.message(message_name, _int(mid), body)

    def dictionary(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        """A declared bencoded dictionary: one row, then one row per declared key."""
        kind = "bencoded value, BEP 3: dictionary" + ("" if con.strict else " (lenient)")
        unknown = {"keep": "other keys kept as they are",
                   "extra": "other keys kept in extra",
                   "reject": "other keys refused"}[con.unknown]
        self.emit(ctx, name, con, kind, values=unknown, doc=doc)
        self.declared_fields(con, name, ctx.deeper())

    def declared_fields(self, con: Any, name: str, ctx: _Context) -> None:
        from p2pkit.bencode import BencodedDict

        comments = _dict_comments(con)
        for f in con.fields:
            key = f.raw_key.decode("utf-8", "replace")
            label = _join(name, key)
            if ctx.level > MAX_DEPTH:
                return
            inner = getattr(f.type, "con", None)
            bits = _flag_bits(_strip(_records(inner))) if isinstance(
                inner, construct.Construct) else None
            values = _flag_names(bits, _size_int(_records(inner))) if bits else ""
            self.emit(ctx, label, None, _field_type(f), size="variable", values=values,
                      doc=f.doc or comments.get(key, "") or f.spec)
            if isinstance(f.type, BencodedDict):
                self.declared_fields(f.type, label, ctx.deeper())

    def protobuf_message(self, con: Any, name: str, ctx: _Context, doc: str) -> None:
        """A declared protobuf message (:class:`p2pkit.ipfs.protobuf.Message`): one row per
        field, with its number, type and wire type; nested messages below their field."""
        if name or ctx.depth:
            self.emit(ctx, name, con, f"protobuf message {con.name}", size="variable",
                      doc=doc or con.docs)
            ctx = ctx.deeper()
        self.protobuf_fields(con, name, ctx)

    def protobuf_fields(self, con: Any, name: str, ctx: _Context) -> None:
        for f in con.fields:
            label = _join(name, f.name)
            values = ", ".join(f"{m.name}={int(m)}" for m in f.enum) if f.enum else ""
            limit = f" (at most {f.max_length} bytes)" if f.max_length else ""
            self.emit(ctx, label, None, f"field {f.number}: {f.type_name}, wire type "
                      f"{int(f.wire_type)}{limit}", size="variable", values=values, doc=f.doc)
            if _is_protobuf_message(f.type) and ctx.level < MAX_DEPTH:
                self.protobuf_fields(f.type, label, ctx.deeper())

    def codec(self, ctx: _Context, name: str, codec: Any, doc: str) -> None:
        """An item of a bencoded dictionary converted by a codec object (``decode``/``encode``)."""
        inner = getattr(codec, "con", None)
        bits = _flag_bits(_strip(_records(inner))) if isinstance(inner, construct.Construct) \
            else None
        values = _flag_names(bits, _size_int(_records(inner))) if bits else ""
        self.emit(ctx, name, None, _codec_type(codec), size="variable", values=values,
                  doc=doc or _class_doc(codec))
        if isinstance(inner, construct.Construct) and not _is_leaf(inner):
            self.children(_records(inner), f"{name}[]", ctx)

    def message(self, name: str, mid: str, body: Any) -> None:
        message = Message(name=name, id=mid, body=body)
        self.messages.append(message)
        ctx = _Context(message=message, depth=0, bitwise=False, siblings={}, level=1,
                       inside=True)
        self.walk(body, "", ctx)
        if not message.rows:
            self.emit(ctx, "(no payload)", body, "nothing", size="0")


class _TableView:
    """A plain ``{id: (name, body)}`` dict (``PAYLOADS``) seen as a message table."""

    def __init__(self, table: Any) -> None:
        self.by_id = table if isinstance(table, Mapping) else None


class _Shim:
    """A stand-in wrapper so that :meth:`_Walker.wrapped` can wrap any inner construct."""

    def __init__(self, subcon: Any) -> None:
        self.subcon = subcon

    def sizeof(self) -> int:
        return self.subcon.sizeof()


# -- helpers ----------------------------------------------------------------------------------


def _is_protobuf_message(con: Any) -> bool:
    """A :class:`p2pkit.ipfs.protobuf.Message` (its fields are data, not subconstructs)."""
    from p2pkit.ipfs.protobuf import Message

    return isinstance(con, Message)


def _is_message_table(con: Any) -> bool:
    table = getattr(con, "__dict__", {}).get("by_id")
    if not isinstance(table, Mapping) or not table:
        return False
    return all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
               for v in table.values())


def _is_bitwise(con: Any) -> bool:
    if not isinstance(con, (construct.Transformed, construct.Restreamed)):
        return False
    func = getattr(con, "decodefunc", None) or getattr(con, "decoder", None)
    return getattr(func, "__name__", "") == "bytes2bits"


def _strip(con: Any) -> Any:
    """Look through names, docs and top-level Schema wrappers."""
    from p2pkit.schema import Schema

    while isinstance(con, (construct.Renamed, Schema)):
        con = con.subcon
    return con


def _is_leaf(con: Any) -> bool:
    """A construct shown on one row (no fields of its own worth listing)."""
    con = _strip(con)
    if isinstance(con, (construct.Struct, construct.Sequence, construct.FocusedSeq,
                        construct.Switch, construct.Array, construct.GreedyRange,
                        construct.RepeatUntil, construct.IfThenElse, construct.Select)):
        return False
    if _is_message_table(con) or _is_bitwise(con):
        return False
    if isinstance(con, (construct.Adapter, construct.Prefixed, construct.Rebuild,
                        construct.Default, construct.Const)) and hasattr(con, "subcon"):
        return _is_leaf(con.subcon)
    return True


def _join(parent: str, child: str, sep: str = ".") -> str:
    return f"{parent}{sep}{child}" if parent else child


def _size(con: Any, bitwise: bool) -> str:
    if con is None:
        return ""
    if type(con).__name__ in ("Terminated", "Error", "Pass", "Computed", "Check"):
        return "0"
    try:
        n = con.sizeof()
    except Exception:  # noqa: BLE001 - sizeof of a custom construct may raise anything
        return "variable"
    if not isinstance(n, int):
        return "variable"
    return f"{n} bits" if bitwise else str(n)


def _size_int(con: Any) -> int | None:
    try:
        n = con.sizeof()
    except Exception:  # noqa: BLE001
        return None
    return n if isinstance(n, int) else None


def _int_width(value: Any) -> int:
    return max(1, (int(value).bit_length() + 7) // 8) if isinstance(value, int) else 1


def _leaf(con: Any, bitwise: bool = False) -> str:
    """A one-line wire type for ``con`` (compound constructs get a short name)."""
    from p2pkit.bencode import BencodedConstruct
    from p2pkit.schema import Schema

    con_type = type(con)
    if isinstance(con, (construct.Renamed, Schema)):
        return _leaf(con.subcon, bitwise)
    if isinstance(con, BencodedConstruct):
        return "bencoded value, BEP 3" + ("" if con.strict else " (lenient)")
    if isinstance(con, construct.FormatField):
        return _format_type(con.fmtstr)
    if isinstance(con, construct.BytesInteger):
        sign = "int" if con.signed else "uint"
        if isinstance(con.length, int):
            order = "LE" if con.swapped else "BE"
            return f"{sign}{8 * con.length} {order}" if con.length > 1 else f"{sign}8"
        return f"{sign} of {_expr(con.length)} bytes"
    if isinstance(con, construct.BitsInteger):
        sign = "int" if con.signed else "uint"
        return f"{sign}{con.length} (bits)" if isinstance(con.length, int) else \
            f"{sign} of {_expr(con.length)} bits"
    if con_type.__name__ == "Flag" and con_type.__module__.startswith("construct"):
        return "bit flag" if bitwise else "flag byte"
    if isinstance(con, construct.Bytes):
        return f"bytes[{_expr(con.length)}]"
    if con_type.__name__ == "GreedyBytes" and con_type.__module__.startswith("construct"):
        return "bytes to the end"
    if isinstance(con, construct.Const):
        return f"{_leaf(con.subcon, bitwise)} = {_const_value(con)}"
    if isinstance(con, (construct.Enum, construct.Mapping)):
        return f"{_leaf(con.subcon, bitwise)} enum"
    if isinstance(con, construct.FlagsEnum) or _flag_bits(con) is not None:
        return f"{_leaf(con.subcon, bitwise)} flags"
    if isinstance(con, construct.Prefixed):
        return f"{_leaf(con.subcon, bitwise)}, length prefixed as {_leaf(con.lengthfield)}"
    if isinstance(con, construct.Array):
        return f"{_leaf(con.subcon, bitwise)}[{_expr(con.count)}]"
    if isinstance(con, construct.GreedyRange):
        return f"{_leaf(con.subcon, bitwise)}[] to the end"
    if isinstance(con, construct.StringEncoded):
        return f"{_leaf(con.subcon, bitwise)} as {con.encoding} text"
    if isinstance(con, construct.NullTerminated):
        return f"{_leaf(con.subcon, bitwise)}, terminated by {con.term!r}"
    if isinstance(con, (construct.Hex, construct.HexDump, construct.Rebuild,
                        construct.Default)):
        return _leaf(con.subcon, bitwise)
    if isinstance(con, construct.Padded) and isinstance(con.subcon, type(construct.Pass)):
        return "padding"
    if _is_bitwise(con):
        return "bit struct"
    if isinstance(con, construct.Struct):
        return "struct"
    if isinstance(con, construct.Sequence):
        return "sequence"
    if isinstance(con, construct.FocusedSeq):
        return "sequence"
    if isinstance(con, construct.Switch):
        return f"switch on {_expr(con.keyfunc)}"
    if isinstance(con, construct.Computed):
        return f"computed: {_expr(con.func)}"
    if con_type.__name__ in ("Pass", "Terminated", "Error") and \
            con_type.__module__.startswith("construct"):
        return {"Pass": "nothing", "Terminated": "end of input", "Error": "rejected (Error)"}[
            con_type.__name__]
    if isinstance(con, construct.Check):
        return f"check: {_expr(con.func)}"
    if isinstance(con, construct.Adapter):
        return f"{_leaf(con.subcon, bitwise)} → {con_type.__name__}"
    if _is_message_table(con):
        return "message id, then body"
    return f"<{con_type.__name__}>"


def _unnamed(con: Any) -> str:
    name = type(con).__name__
    return {"Terminated": "(end)", "Pass": "(nothing)", "Error": "(error)"}.get(name, "")


def _format_type(fmt: str) -> str:
    order, code = (fmt[0], fmt[1:]) if fmt[:1] in _ORDER else ("@", fmt)
    if code in _INT_BITS:
        bits = _INT_BITS[code]
        sign = "int" if code.islower() else "uint"
        return f"{sign}{bits}" if bits == 8 else f"{sign}{bits} {_ORDER[order]}"
    if code in _FLOAT_BITS:
        return f"float{_FLOAT_BITS[code]} {_ORDER[order]}"
    if code == "?":
        return "bool byte"
    return f"struct format {fmt!r}"


def _expr(value: Any) -> str:
    """A readable form of a length, count or condition (``this.length`` -> ``length``)."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, construct.expr.ExprMixin):
        text = re.sub(r"\[['\"](\w+)['\"]\]", r".\1", repr(value))
        return re.sub(r"\bthis\.", "", text)
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        return "a function" if name == "<lambda>" else f"{name}()"
    return repr(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _const_value(con: Any) -> str:
    value = con.value
    inner = _strip(con.subcon)
    if isinstance(inner, (construct.Enum, construct.Mapping)):
        return f"{value} ({_int(inner.encmapping.get(value, '?'))})"
    if isinstance(value, bytes):
        return repr(value)
    return _int(value)


def _int(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value)) if -256 < value < 256 else hex(value)
    return str(value)


def _flag_bits(con: Any) -> Mapping[str, int] | None:
    """Named bits of a flags adapter (p2pkit's ``NamedBits`` has ``bits``: name -> mask)."""
    if not isinstance(con, construct.Adapter):
        return None
    bits = getattr(con, "__dict__", {}).get("bits")
    if isinstance(bits, Mapping) and bits and all(
            isinstance(k, str) and isinstance(v, int) for k, v in bits.items()):
        return bits
    return None


def _flag_names(flags: Mapping[str, int], size: int | None) -> str:
    """``name=0x04`` per flag; for multi-byte fields also the byte (``reserved[5] & 0x10``)."""
    names = []
    for name, mask in flags.items():
        mask = int(mask)
        if size and size > 1 and mask > 0 and mask & (mask - 1) == 0:
            position = mask.bit_length() - 1
            names.append(f"{name}: byte {size - 1 - position // 8} & {1 << position % 8:#04x}")
        else:
            names.append(f"{name}={mask:#04x}")
    return ", ".join(names)


def _selector(keyfunc: Any, siblings: Mapping[str, Any]) -> Any:
    """The Enum/Mapping field a ``Switch(this.field, …)`` dispatches on, if any."""
    if not isinstance(keyfunc, construct.expr.ExprMixin):
        return None
    match = re.fullmatch(r"\w+", _expr(keyfunc))
    if not match or match.group(0) not in siblings:
        return None
    selector = _strip(siblings[match.group(0)])
    if isinstance(selector, construct.Const):
        selector = _strip(selector.subcon)
    return selector if isinstance(selector, (construct.Enum, construct.Mapping)) else None


def _case_id(key: Any, selector: Any) -> str:
    if selector is not None and key in selector.encmapping:
        return _int(selector.encmapping[key])
    if isinstance(key, int) and not isinstance(key, bool):
        return _int(key)
    return ""


def _const_id(key: Any, body: Any) -> str:
    """The id of a case whose body starts with its own ``Const(key, Mapping)`` (BEP 15 action)."""
    body = _strip(body)
    for sub in getattr(body, "subcons", ()):
        sub = _strip(sub)
        if isinstance(sub, construct.Const) and sub.value == key:
            inner = _strip(sub.subcon)
            if isinstance(inner, (construct.Enum, construct.Mapping)):
                return _int(inner.encmapping.get(key, ""))
    return ""


def _dict_items(con: Any) -> Mapping[str, Any] | None:
    """Known items of a bencoded-dictionary adapter (``items``: key -> codec with decode)."""
    if not isinstance(con, construct.Adapter):
        return None
    items = getattr(con, "__dict__", {}).get("items")
    if isinstance(items, Mapping) and items and all(
            isinstance(k, str) and hasattr(v, "decode") for k, v in items.items()):
        return items
    return None


def _records(con: Any) -> Any:
    """The record of a ``GreedyRange(record)`` (records packed in one string), else ``con``."""
    inner = _strip(con)
    return inner.subcon if isinstance(inner, construct.GreedyRange) else con


def _codec_type(codec: Any) -> str:
    """``string, length 20`` / ``integer, 0..65535`` / ``string of records: struct`` …"""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type(codec).__name__.strip("_")).lower()
    attrs = getattr(codec, "__dict__", {})
    details = []
    inner = attrs.get("con")
    if isinstance(inner, construct.Construct):
        size = _size_int(_records(inner))
        record = _leaf(_records(inner))
        details.append(f"holding {record}" + (f" ({size} bytes each)" if size else ""))
    if isinstance(attrs.get("length"), int):
        details.append(f"length {attrs['length']}")
    low, high = attrs.get("low"), attrs.get("high")
    if isinstance(low, int) or isinstance(high, int):
        details.append(f"{'' if low is None else low}..{'' if high is None else high}")
    return ", ".join([words, *details])


def _comments_of(table: Any, module: Any) -> dict[str, str]:
    """The source comments beside each entry of a module-level dict or an Enum class."""
    if isinstance(table, type):
        module = module or sys.modules.get(table.__module__)
        name = table.__name__
    else:
        name = None
        modules = [module] if module is not None else []
        modules += [sys.modules.get(type(v).__module__) for v in table.values()]
        for candidate in modules:
            name = _module_name_of(table, candidate)
            if name:
                module = candidate
                break
    if not name or module is None:
        return {}
    return _source_comments(module.__name__).get(name, {})


def _attribute_comment(value: Any, module: Any) -> str:
    """The ``#:`` comment above the module attribute that holds ``value``."""
    if module is None:
        return ""
    docs = _source_comments(module.__name__).get("", {})
    for attr, candidate in vars(module).items():
        if candidate is value and attr in docs:
            return docs[attr]
    return ""


def _module_name_of(table: Mapping[str, Any], module: Any) -> str | None:
    """The name of the module-level dict equal to ``table`` (same keys, same objects)."""
    for attr, value in vars(module).items() if module is not None else ():
        if value is table:
            return attr
        if isinstance(value, Mapping) and value.keys() == table.keys() and all(
                value[k] is table[k] for k in table):
            return attr
    return None


@functools.lru_cache(maxsize=64)
def _source_comments(module_name: str) -> dict[str, dict[str, str]]:
    """``{table name: {entry: comment}}`` for the dict literals and Enum classes of a module.

    An entry's comment is the ``#`` comment on its line plus the comment-only lines that follow
    it, up to the next entry (the layout of ``ARGUMENTS = {"id": _ID,  # BEP 5: "…"}``).
    """
    try:
        source = inspect.getsource(sys.modules[module_name])
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT}
    except Exception:  # noqa: BLE001 - no source, no comments
        return {}
    tables: dict[str, dict[str, str]] = {"": {}}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            above = []
            line = node.lineno - 1
            while line in comments and source.splitlines()[line - 1].lstrip().startswith("#:"):
                above.insert(0, comments[line].lstrip(":").strip())
                line -= 1
            if above and isinstance(target, ast.Name):
                tables[""][target.id] = " ".join(above)
        entries: list[tuple[str, int, int]] = []
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            keys = [k for k in node.value.keys if isinstance(k, ast.Constant)]
            name = getattr(target, "id", None)
            ends = [k.lineno for k in keys[1:]] + [node.end_lineno + 1]
            entries = [(str(k.value), k.lineno, end) for k, end in zip(keys, ends)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and _declared_fields(node.value):
            # BencodedDict([Field("key", Type), ...]): the comment beside each Field
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = getattr(target, "id", None)
            calls = _declared_fields(node.value)
            ends = [c.lineno for c in calls[1:]] + [node.end_lineno + 1]
            entries = [(str(c.args[0].value), c.lineno, end) for c, end in zip(calls, ends)]
        elif isinstance(node, ast.ClassDef):
            name = node.name
            assigns = [a for a in node.body if isinstance(a, ast.Assign)
                       and isinstance(a.targets[0], ast.Name)]
            ends = [a.lineno for a in assigns[1:]] + [node.end_lineno + 1]
            entries = [(a.targets[0].id, a.lineno, end) for a, end in zip(assigns, ends)]
        else:
            continue
        found = {}
        for key, first, end in entries:
            text = [comments[line] for line in range(first, end) if line in comments]
            if text:
                found[key] = " ".join(text)
        if name and found:
            tables[name] = found
    return tables


def _declared_fields(value: Any) -> list[Any]:
    """The ``Field("key", …)`` calls of a ``BencodedDict([...])`` call in the source."""
    if not isinstance(value, ast.Call) or not value.args or not isinstance(
            value.args[0], (ast.List, ast.Tuple)):
        return []
    return [c for c in value.args[0].elts if isinstance(c, ast.Call)
            and getattr(c.func, "id", "") == "Field" and c.args
            and isinstance(c.args[0], ast.Constant)]


def _dict_comments(con: Any) -> dict[str, str]:
    """The source comments beside the fields of a ``BencodedDict`` (or of its lenient twin)."""
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("p2pkit"):
            continue
        for attr, value in list(vars(module).items()):
            if value is con or getattr(value, "fields", None) is con.fields and value is not None \
                    and type(value) is type(con):
                found = _source_comments(module.__name__).get(attr)
                if found:
                    return found
    return {}


def _field_type(field: Any) -> str:
    """``integer 0..65535, required`` for a declared field."""
    words = [field.type.what]
    if field.required:
        words.append("required")
    if field.aliases:
        words.append("also spelled " + ", ".join(repr(a.decode("utf-8", "replace"))
                                                 for a in field.aliases))
    return ", ".join(words)


def _class_doc(con: Any) -> str:
    """First paragraph of a project-defined class's docstring (not construct's own)."""
    cls = con if isinstance(con, type) else type(con)
    if cls.__module__.startswith("construct"):
        return ""
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return re.sub(r":\w+:`~?([^`]*)`", r"\1", first).replace("``", "")
