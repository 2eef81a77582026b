"""One builder of the readers of Gnutella payloads, generated from their construct declarations
(:data:`~p2pkit.gnutella.descriptors.PAYLOADS`: the Gnutella 0.4 §2.2 payloads as GGEP
§Usage restates them, bye §2, QRP, vendor_msg §2, HSEP), parameterised by what a leaf becomes.

The builder (:func:`build_reader`) walks a declaration once and puts its reader together from
the structural kinds it knows: a ``Struct`` by a function generated for it (each run of
fixed-size fields read with one ``unpack_from``, its :class:`~p2pkit.schema.FixedLayout`),
``NullTerminated`` by its terminator, a counted ``Array`` by its ``this.<field>`` count, the
payload-type switch of QRP (:class:`~p2pkit.schema.MessageSwitch`) by its table, ``Rebuild``
by its field. Everything else is a leaf, and a :class:`Leaves` says what each leaf becomes
and how a ``Struct``'s fields are kept:

- the ``Container`` that :data:`~p2pkit.gnutella.descriptors.DescriptorLenient` makes
  (:data:`p2pkit.gnutella.descriptor_fast_path.VALUE`, for ``record.value``);
- the JSON fields of the dissector's record (:data:`p2pkit.gnutella.descriptor_json.JSON`);
- nothing: a check that the payload parses, which keeps no value it need not
  (:data:`p2pkit.gnutella.descriptor_fast_path.CHECK`, for summary lines).

A reader is ``read(data, pos, ctx) -> (value, next position)``: it raises (anything, mostly
:class:`Refused`) wherever the schema would not succeed, so that the schema runs and says
why; a reader never decides an error, a deviation or a bound. A declaration of a kind neither
the builder nor the leaves know raises :class:`TypeError` when the reader is built, so a
payload type cannot silently take a path that disagrees with its schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import construct

from p2pkit.gnutella.descriptors import _Trailer, _Vendor
from p2pkit.gnutella.ggep import ExtensionBlock
from p2pkit.schema import FixedLayout, MessageSwitch

__all__ = ["ANYTHING", "Leaves", "Reader", "Refused", "build_reader", "fixed", "leaf_kind",
           "unwrap"]

#: A reader: (payload bytes, position, the fields read so far) -> (value, next position).
Reader = Callable[[bytes, int, Any], tuple[Any, int]]


class Refused(Exception):
    """A reader stops: the schema (or the path it stands in for) runs and says why."""


class Leaves(NamedTuple):
    """What the readers :func:`build_reader` makes give: one of these per output."""

    #: Its name (in the generated functions' file names).
    name: str
    #: The type of the mapping of a ``Struct``'s fields (``Container``, ``dict``), or None:
    #: fields are not kept (a check), and a ``Struct`` reads to None.
    mapping: type | None
    #: (the layout of a run of fixed-size fields, the names of its unpacked values, a prefix
    #: for the names it puts into ``env``, ``env``) -> (field name, the source of what is kept
    #: of it, or None: nothing) per field; with ``mapping`` None, a source is a statement run
    #: for what it may raise.
    fixed: Callable[[FixedLayout, list[str], str, dict[str, Any]], list[tuple[str, str | None]]]
    #: The list of an ``Array``'s items (``ListContainer``, ``list``), or None: not kept.
    items: Callable[[], list[Any]] | None
    #: The name of a switch's variant as kept (the Container's, its JSON).
    variant: Callable[[str], Any]
    #: The kind of a leaf (:func:`leaf_kind`) -> (the leaf, the builder of this output) -> its
    #: reader; a kind not here has no reader in this output (the builder raises TypeError).
    leaf: Mapping[str, Callable[[Any, Callable[[construct.Construct], Reader]], Reader]]
    #: (a leaf, ``env``) -> a statement checking the leaf's bytes ``data[pos:end]`` in place
    #: of its reader (one call fewer), the names it uses put into ``env``; None: its reader.
    #: Only where the value is not kept.
    inline: Callable[[construct.Construct, dict[str, Any]], str | None] | None = None


def leaf_kind(con: construct.Construct) -> str | None:
    """The kind of a declaration the builder has no structural reader for: ``"format"`` (an
    integer ``FormatField``), ``"bytes"`` (``Bytes(n)``), ``"greedy_bytes"``,
    ``"greedy_range"``, ``"adapter"``, and the hand-written constructs of the payloads:
    ``"extension_block"`` (GGEP §Extension Block), ``"trailer"`` (the QueryHit trailer),
    ``"vendor"`` (vendor_msg §2); None for any other.

    >>> from p2pkit.gnutella.descriptors import Pong
    >>> [leaf_kind(unwrap(sub)) for sub in Pong.subcons]
    ['format', 'adapter', 'format', 'format', 'extension_block']
    """
    if isinstance(con, construct.FormatField):
        return "format"
    if isinstance(con, construct.Bytes) and isinstance(con.length, int):
        return "bytes"
    if con is construct.GreedyBytes:
        return "greedy_bytes"
    if isinstance(con, construct.GreedyRange) and not con.discard:
        return "greedy_range"
    if isinstance(con, construct.Adapter):
        return "adapter"
    if con is ExtensionBlock.subcon:
        return "extension_block"
    if isinstance(con, _Trailer):
        return "trailer"
    if isinstance(con, _Vendor):
        return "vendor"
    return None


def unwrap(con: construct.Construct) -> construct.Construct:
    """``con`` without its ``Renamed`` wrappers."""
    while isinstance(con, construct.Renamed):
        con = con.subcon
    return con


def fixed(con: construct.Construct) -> bool:
    """A field :class:`~p2pkit.schema.FixedLayout` reads (an integer, ``Bytes(n)``, an
    adapter over either)."""
    con = unwrap(con)
    if isinstance(con, construct.Adapter):
        con = unwrap(con.subcon)
    return isinstance(con, construct.FormatField) or (
        isinstance(con, construct.Bytes) and isinstance(con.length, int))


def _run_field(sub: construct.Construct | None) -> construct.Construct | None:
    """A named field of fixed size as :class:`~p2pkit.schema.FixedLayout` reads it (a
    ``Rebuild`` parses its field: that field, named), or None."""
    if sub is None or not sub.name or sub.name.startswith("_"):
        return None
    if fixed(sub):
        return sub
    con = unwrap(sub)
    if isinstance(con, construct.Rebuild) and fixed(con.subcon):
        return sub.name / con.subcon
    return None


def _plain_names(subs: list[construct.Construct]) -> set[str]:
    """The names of the fields of fixed size read as plain values (no adapter)."""
    return {sub.name for sub in subs if (field := _run_field(sub)) is not None
            and not isinstance(unwrap(field.subcon), construct.Adapter)}


def _local_count(count: Any, plain: set[str]) -> str | None:
    """The name of the plain field a count ``this.<field>`` reads, if it is one of ``plain``."""
    for name in plain:
        if repr(count) == f"this[{name!r}]":
            return name
    return None


def _run_source(run: list[construct.Construct], r: int, leaves: Leaves, env: dict[str, Any],
                out: bool, needed: bool) -> tuple[list[str], dict[str, str]]:
    """Source lines reading the run ``r`` of fixed-size fields (one ``unpack_from``), each
    field kept as ``leaves`` says (``out``: into the mapping ``out``), and the names of the
    local variables holding the fields' unpacked values (``needed``: they are read later;
    else a run whose fields keep nothing is only bounded)."""
    layout = FixedLayout(construct.Struct(*run))
    names = [f"r{r}_{i}" for i in range(len(layout.all_names))]
    kept = leaves.fixed(layout, names, str(r), env)
    locals_ = dict(zip(layout.all_names, names))
    if not out and not needed and all(source is None for _, source in kept):
        return [f"    if len(data) - pos < {layout.size}:\n        raise Refused",
                f"    pos += {layout.size}"], {}
    env[f"U{r}"] = layout.struct.unpack_from
    lines = [f"    {', '.join(names)}, = U{r}(data, pos)",  # struct.error: short
             f"    pos += {layout.size}"]
    for name, source in kept:
        if source is None:
            continue
        lines.append(f"    out[{name!r}] = {source}" if out else f"    {source}")
    return lines, locals_


def _field_source(sub: construct.Construct, i: int, target: str, ctx: str, leaves: Leaves,
                  build: Callable[..., Reader], env: dict[str, Any], plain: dict[str, str]
                  ) -> list[str]:
    """Source lines reading the field ``sub`` (the ``i``-th) at ``pos`` into ``target`` (the
    readers given ``ctx`` as their context): a ``NullTerminated`` field and an ``Array`` are
    read in place (one call fewer a field or an item), any other by its reader."""
    con = unwrap(sub)
    inline = leaves.inline
    if isinstance(con, construct.NullTerminated):
        _null_terminated_reader(con, ANYTHING)  # (the kinds it has no reader for: TypeError)
        inner = build(con.subcon)
        env[f"T{i}"] = con.term
        lines = [f"    end = data.find(T{i}, pos)", "    if end < 0:", "        raise Refused"]
        statement = None if inline is None else inline(unwrap(con.subcon), env)
        if inner is ANYTHING:
            lines.append(f"    {target} = None")
        elif statement is not None:
            lines += [f"    {statement}", f"    {target} = None"]
        else:
            env[f"R{i}"] = inner
            lines.append(f"    {target}, _ = R{i}(data[pos:end], 0, {ctx})")
        return lines + ["    pos = end + 1"]
    if isinstance(con, construct.Array) and not con.discard:
        env[f"R{i}"], count = build(con.subcon), con.count
        local = _local_count(count, set(plain)) if callable(count) else None
        if local is not None:  # the count is a plain field read before: its value
            lines = [f"    n = {plain[local]}"]
        else:
            env[f"C{i}"] = count if callable(count) else (lambda _, n=count: n)
            lines = [f"    n = C{i}({ctx})"]
        lines += ["    if n < 0:", "        raise Refused"]
        if leaves.items is None:
            return lines + ["    for _ in range(n):", f"        _, pos = R{i}(data, pos, {ctx})",
                            f"    {target} = None"]
        env["Items"] = leaves.items
        return lines + ["    items = Items()", "    for _ in range(n):",
                        f"        value, pos = R{i}(data, pos, {ctx})",
                        "        items.append(value)", f"    {target} = items"]
    env[f"R{i}"] = build(sub)
    statement = None if inline is None else inline(con, env)
    if statement is not None:
        return ["    end = len(data)", f"    {statement}", f"    {target} = None",
                "    pos = end"]
    return [f"    {target}, pos = R{i}(data, pos, {ctx})"]


def _struct_reader(con: construct.Struct, leaves: Leaves, build: Callable[..., Reader], *,
                   into: bool = False, keep: tuple[str, ...] | None = None,
                   start: int | None = None) -> Reader:
    """A ``Struct``'s reader, generated. ``into``: the fields go into the mapping given as
    the context (a descriptor's, after its header fields), which is returned. ``keep`` (with
    fields not kept): the reader gives the tuple of these fields' unpacked values (plain
    values of its fixed-size runs; ``()``: an empty tuple) instead of None. ``start`` (with
    ``keep``): a check of a whole payload from ``start`` on instead, ``check(data)`` giving
    that tuple, or None where the reader would raise or stop before the end."""
    env: dict[str, Any] = {"Refused": Refused, "Mapping": leaves.mapping}
    out = leaves.mapping is not None
    subs = list(con.subcons)
    # without a mapping, the readers after a run see its plain values (an Array's count,
    # unless it is one of them)
    counted = _plain_names(subs)
    context = not out and any(
        isinstance(unwrap(sub), construct.Array)
        and (not callable(unwrap(sub).count) or _local_count(unwrap(sub).count, counted) is None)
        for sub in subs)
    lines = []
    if out:
        lines.append("    out = ctx" if into else
                     "    out = {}" if leaves.mapping is dict else "    out = Mapping()")
    elif context:
        lines.append("    out = {}")
    plain: dict[str, str] = {}
    run: list[construct.Construct] = []
    runs = 0
    for i, sub in enumerate(subs + [None]):
        field = _run_field(sub)
        if field is not None:
            run.append(field)
            continue
        if run:
            needed = context or any(s.name in (keep or ()) or s.name in counted for s in run)
            run_lines, names = _run_source(run, runs, leaves, env, out, needed)
            lines += run_lines
            layout = FixedLayout(construct.Struct(*run))
            adapted = {layout.all_names[j] for j, _ in layout.adapters}
            fresh = {k: v for k, v in names.items() if k not in adapted}
            plain.update(fresh)
            if context:
                lines += [f"    out[{k!r}] = {v}" for k, v in fresh.items()]
            runs += 1
            run = []
        if sub is None:
            break
        if sub is construct.Terminated:
            lines.append("    if pos != len(data):\n        raise Refused")
            continue
        if sub.name is None or sub.name.startswith("_"):
            raise TypeError(f"no fast path for an unnamed field of {con!r}")
        # (without a mapping, a field is kept only where a count may be read off it)
        target = f"out[{sub.name!r}]" if out or context else "_"
        lines += _field_source(sub, i, target, "out" if out or context else "None", leaves,
                               build, env, plain)
    if out:
        lines.append("    return out, pos")
        kept = "None"
    elif keep is not None:
        missing = [k for k in keep if k not in plain]
        if missing:
            raise TypeError(f"cannot keep {missing} of {con!r}: not plain fixed-size values")
        kept = f"({''.join(plain[k] + ', ' for k in keep)})"
        lines.append(f"    return {kept}, pos")
    else:
        lines.append("    return None, pos")
    if start is not None and keep is not None and not out:
        body = ["    " + part for line in lines[:-1] for part in line.split("\n")]
        lines = ["def read(data):", "    try:", f"        pos = {start}", *body,
                 "    except Exception:", "        return None",
                 "    return " + kept + " if pos == len(data) else None"]
    else:
        lines.insert(0, "def read(data, pos, ctx):")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<{leaves.name} reader of {con!r:.40}>", "exec"), env)
    return env["read"]


def _anything(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
    return None, len(data)


#: The reader of a leaf that accepts whatever bytes are left and keeps nothing (a check of
#: ``GreedyBytes``, of text): the generated readers leave it out.
ANYTHING: Reader = _anything


def _null_terminated_reader(con: construct.NullTerminated, inner: Reader) -> Reader:
    if con.include or not con.consume or not con.require or len(con.term) != 1:
        raise TypeError(f"no fast path for {con!r}")
    term = con.term

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        end = data.find(term, pos)
        if end < 0:
            raise Refused
        value, _ = inner(data[pos:end], 0, ctx)
        return value, end + 1

    return read


def _array_reader(con: construct.Array, item: Reader, items: Callable[[], list[Any]] | None
                  ) -> Reader:
    if con.discard:
        raise TypeError(f"no fast path for {con!r}")
    count = con.count

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        n = count(ctx) if callable(count) else count
        if not 0 <= n:
            raise Refused
        if items is None:
            for _ in range(n):
                _, pos = item(data, pos, ctx)
            return None, pos
        out = items()
        for _ in range(n):
            value, pos = item(data, pos, ctx)
            out.append(value)
        return out, pos

    return read


def _switch_reader(switch: MessageSwitch, leaves: Leaves, build: Callable[..., Reader]
                   ) -> Reader:
    if switch.peek_at is not None or switch.empty is not None:
        raise TypeError(f"no fast path for {switch!r}")
    table = switch.table
    kind = build(switch.type_field)
    bodies = {type_id: (leaves.variant(name), build(body))
              for type_id, (name, body) in table.messages.items()}
    key, make = table.key, leaves.mapping

    def read(data: bytes, pos: int, ctx: Any) -> tuple[Any, int]:
        type_id, pos = kind(data, pos, ctx)
        name, body = bodies[type_id]  # KeyError: unknown, the schema reports it
        fields, pos = body(data, pos, ctx)
        if pos != len(data):  # parse_body: the body must use the stream up
            raise Refused
        if make is None:
            return None, pos
        out = make()
        out[key] = name
        out.update(fields)
        return out, pos

    return read


def build_reader(con: construct.Construct, leaves: Leaves, *, into: bool = False,
                 keep: tuple[str, ...] | None = None, start: int | None = None) -> Reader:
    """The reader of the declaration ``con`` giving what ``leaves`` says (see the module
    docstring for the kinds); ``into``, ``keep`` and ``start``: of a ``Struct`` (see
    ``_struct_reader``). TypeError for a kind without a reader.

    >>> from p2pkit.gnutella.descriptors import PAYLOADS
    >>> from p2pkit.gnutella.descriptor_fast_path import CHECK
    >>> check = build_reader(PAYLOADS[0x01][1], CHECK, keep=("port",))  # pong
    >>> check(bytes([0xCA, 0x18]) + bytes(12) + bytes.fromhex("c3824455 4101"), 0, None)
    ((6346,), 20)
    """
    def build(sub: construct.Construct) -> Reader:
        return build_reader(sub, leaves)

    con = unwrap(con)
    if isinstance(con, construct.Rebuild):
        return build(con.subcon)  # parsing a Rebuild parses its field
    if isinstance(con, construct.Struct):
        return _struct_reader(con, leaves, build, into=into, keep=keep, start=start)
    if isinstance(con, construct.NullTerminated):
        return _null_terminated_reader(con, build(con.subcon))
    if isinstance(con, construct.Array):
        return _array_reader(con, build(con.subcon), leaves.items)
    if isinstance(con, MessageSwitch):
        return _switch_reader(con, leaves, build)
    make = leaves.leaf.get(leaf_kind(con))  # type: ignore[arg-type]
    if make is None:
        raise TypeError(f"no fast path for {con!r}")
    return make(con, build)
