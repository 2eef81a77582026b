"""The boundary between construct and p2pkit: top-level schemas and their fast paths.

Schemas are construct objects (DESIGN.md: the single source of truth for every byte layout).
Wrapping a top-level schema in :class:`Schema` keeps it a construct object (``parse``,
``build``, ``sizeof``, nesting all work as construct users expect) while making sure that no
construct, struct, ``KeyError``/``IndexError`` or ``UnicodeError`` escapes: parse failures
become :class:`~p2pkit.errors.ParseError` with protocol, field path and byte offset, build
failures :class:`~p2pkit.errors.BuildError`.

:class:`FixedLayout` derives a precompiled :class:`struct.Struct` from a construct ``Struct``
made only of fixed-size fields. It is the fast path for fixed-size messages: the format string
comes from the schema object itself, so there is still one definition of the layout.

:class:`MessageTable` is the one shape of "a type id selects the body": BitTorrent peer
messages (id byte), Gnutella descriptors (payload descriptor) and UDP tracker packets (action)
declare a table ``{id: (name, body)}`` and get the id/name maps, the strict switch (an unknown
id is a :class:`ParseError`) and the lenient one (an unknown id parses as ``type="unknown"``
with the raw payload and a :class:`~p2pkit.deviations.Deviation`) from it.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import construct

from p2pkit.deviations import DEVIATIONS, Deviation, Level
from p2pkit.errors import BuildError, P2PKitError, ParseError

__all__ = ["FixedLayout", "MessageSwitch", "MessageTable", "NamedBits", "Schema", "clean_path",
           "consecutive_layout",
           "failure_offset"]

_TRANSLATED = (
    construct.ConstructError,
    struct.error,
    UnicodeError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    OverflowError,
    AttributeError,
)


def clean_path(path: str | None) -> str:
    """construct's ``(parsing) -> a -> b`` as ``a -> b``."""
    if not path:
        return ""
    parts = [p.strip() for p in path.split("->")]
    kept: list[str] = []
    for p in parts:
        # a documented field (``"name" / Type * "doc"``) is two Renamed wrappers that both
        # append the name: keep it once
        if p and not p.startswith("(") and p != "None" and (not kept or kept[-1] != p):
            kept.append(p)
    return " -> ".join(kept)


def failure_offset(exc: BaseException, default: int | None = None) -> int | None:
    """The stream position where parsing stopped, read off the innermost construct frame.

    construct hands sub-parsers ``BytesIOWithOffsets`` streams whose ``tell()`` is absolute, so
    the innermost frame that has a ``stream`` local knows the offset in the caller's input.
    """
    tb = exc.__traceback__
    offset = default
    while tb is not None:
        stream = tb.tb_frame.f_locals.get("stream")
        if isinstance(stream, io.IOBase) and not stream.closed:
            try:
                offset = stream.tell()
            except (OSError, ValueError):
                pass
            else:
                partial = tb.tb_frame.f_locals.get("data")
                if tb.tb_frame.f_code.co_name == "stream_read" and isinstance(partial, bytes):
                    offset -= len(partial)  # a short read: point at the field, not past it
        tb = tb.tb_next
    return offset


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, construct.StreamError):
        return "truncated: " + (text[-1] if text else "not enough bytes")
    if isinstance(exc, (KeyError, IndexError)) or not text:
        return f"{type(exc).__name__}: {exc!r}"
    return text[-1]


class Schema(construct.Subconstruct):
    """A top-level schema of ``protocol``: a construct object that raises p2pkit's errors.

    >>> import construct
    >>> Have = Schema(construct.Struct("index" / construct.Int32ub), protocol="bittorrent")
    >>> Have.parse(b"\\x00\\x00\\x00\\x07").index
    7
    >>> Have.parse(b"\\x00\\x00")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: bittorrent, field index, offset 0: truncated: ...
    """

    def __init__(self, subcon: construct.Construct, *, protocol: str, name: str | None = None):
        super().__init__(subcon)
        self.protocol = protocol
        if name:
            self.name = name
        #: Optional fast paths (see :class:`FixedLayout`) tried before the generic parser.
        self.fast_parse: Callable[[bytes], Any] | None = None
        self.fast_build: Callable[[Any], bytes | None] | None = None

    def parse(self, data: bytes, **contextkw: Any) -> Any:
        if self.fast_parse is not None and not contextkw:
            result = self.fast_parse(data)
            if result is not None:
                return result
        try:
            stream = io.BytesIO(data)
        except TypeError:
            raise ParseError(f"expected bytes, got {type(data).__name__}",
                             protocol=self.protocol) from None
        return self.parse_stream(stream, **contextkw)

    def parse_stream(self, stream: Any, **contextkw: Any) -> Any:
        start = _tell(stream)
        try:
            return super().parse_stream(stream, **contextkw)
        except ParseError as e:
            if not e.protocol:
                raise e.relocated(protocol=self.protocol) from None
            raise
        except P2PKitError:
            raise
        except _TRANSLATED as e:
            path = clean_path(getattr(e, "path", None))
            offset = failure_offset(e, start)
            raise ParseError(_reason(e), protocol=self.protocol, path=path,
                             offset=offset) from e

    def build(self, obj: Any, **contextkw: Any) -> bytes:
        if self.fast_build is not None and not contextkw:
            result = self.fast_build(obj)
            if result is not None:
                return result
        stream = io.BytesIO()
        self.build_stream(obj, stream, **contextkw)
        return stream.getvalue()

    def build_stream(self, obj: Any, stream: Any, **contextkw: Any) -> Any:
        try:
            return super().build_stream(obj, stream, **contextkw)
        except P2PKitError:
            raise
        except _TRANSLATED as e:
            path = clean_path(getattr(e, "path", None))
            raise BuildError(_reason(e), protocol=self.protocol, path=path) from None

    def sizeof(self, **contextkw: Any) -> int:
        try:
            return super().sizeof(**contextkw)
        except construct.SizeofError as e:
            raise BuildError(f"{self.protocol} schema has no fixed size",
                             protocol=self.protocol) from e

    def _emitdecompiled(self) -> str:  # pragma: no cover - repr helper for construct
        return f"Schema({self.subcon._emitdecompiled()}, protocol={self.protocol!r})"


def _tell(stream: Any) -> int | None:
    try:
        return stream.tell()
    except (OSError, AttributeError, ValueError):
        return None


_FORMAT_OF = {
    # construct's FormatField keeps its struct format; these are the byte orders it uses.
    ">": ">",
    "<": "<",
    "=": "=",
}


def _unwrap(con: construct.Construct) -> construct.Construct:
    while isinstance(con, (construct.Renamed, construct.Transformed)) and hasattr(con, "subcon"):
        if isinstance(con, construct.Transformed):
            break
        con = con.subcon
    return con


class FixedLayout:
    """A :class:`struct.Struct` derived from a construct ``Struct`` of fixed-size fields.

    Supported fields: ``FormatField`` integers (``Int8ub``, ``Int32ub``, ``Int16ul``, …),
    ``Bytes(n)`` with a constant ``n``, ``Const`` over either, and an ``Adapter`` over either
    (its ``_decode``/``_encode`` are called without a context). All fields must share one byte
    order. Anything else raises :class:`TypeError` at import time, so a fast path
    can never silently disagree with its schema; tests compare both paths on random inputs.

    >>> import construct
    >>> body = construct.Struct("index" / construct.Int32ub, "begin" / construct.Int32ub)
    >>> layout = FixedLayout(body)
    >>> layout.format, layout.names
    ('>LL', ('index', 'begin'))
    """

    def __init__(self, con: construct.Construct, prefix: Iterable[construct.Construct] = ()):
        con = _unwrap(con)
        if not isinstance(con, construct.Struct):
            raise TypeError(f"FixedLayout needs a Struct, got {type(con).__name__}")
        order = None
        codes: list[str] = []
        names: list[str] = []
        consts: list[tuple[int, Any]] = []
        adapters: list[tuple[int, construct.Adapter]] = []
        for sub in list(prefix) + list(con.subcons):
            name = getattr(sub, "name", None)
            field = _unwrap(sub)
            const = None
            adapter = None
            if isinstance(field, construct.Const):
                const = field.value
                field = _unwrap(field.subcon)
            elif isinstance(field, construct.Adapter):
                adapter = field
                field = _unwrap(field.subcon)
            if isinstance(field, construct.FormatField):
                fmt = field.fmtstr
                fo, code = fmt[0], fmt[1:]
                if code not in ("B", "b") and order not in (None, fo):
                    raise TypeError("FixedLayout fields must share one byte order")
                if code not in ("B", "b"):
                    order = fo
            elif isinstance(field, construct.Bytes) and isinstance(field.length, int):
                code = f"{field.length}s"
            elif isinstance(field, construct.Padded) or type(field).__name__ == "Padding":
                raise TypeError("Padding is not supported by FixedLayout")
            else:
                raise TypeError(f"FixedLayout cannot derive a format for {field!r}")
            if const is not None:
                consts.append((len(codes), const))
            if adapter is not None:
                adapters.append((len(codes), adapter))
            codes.append(code)
            names.append(name if const is None else None)
        self.format = (order or ">") + "".join(codes)
        #: Byte order of the multi-byte fields (``None``: single bytes only, either fits).
        self.byte_order = order
        #: One struct code per field, in field order (``"H"``, ``"4s"`` …).
        self.codes = tuple(codes)
        self.struct = struct.Struct(self.format)
        self.size = self.struct.size
        self.all_names: tuple[str | None, ...] = tuple(names)
        self.names: tuple[str, ...] = tuple(n for n in names if n)
        self.consts = tuple(consts)
        #: ``(position, adapter)`` of fields whose value an ``Adapter`` converts.
        self.adapters = tuple(adapters)

    def _record_code(self, env: dict[str, Any], indent: str,
                     head: Iterable[tuple[str, Any]] = ()) -> tuple[str, str, str]:
        """The generated code shared by :meth:`unpacker` and :meth:`many_unpacker`: the
        unpacking target (``v0, v1, …``), the ``Const`` checks returning None, and the lines
        filling a ``Container`` ``c`` (``head`` items first, adapters applied), each line
        indented by ``indent``; the names they use go into ``env``."""
        values = [f"v{i}" for i in range(len(self.all_names))]
        checks = []
        for i, value in self.consts:
            env[f"c{i}"] = value
            checks.append(f"{indent}if v{i} != c{i}:\n{indent}    return None\n")
        converted = list(values)
        for i, adapter in self.adapters:
            env[f"a{i}"] = adapter
            converted[i] = f"a{i}._decode(v{i}, None, '')"
        items = []
        for j, (key, value) in enumerate(head):
            env[f"h{j}"] = value
            items.append((key, f"h{j}"))
        items += [(n, converted[i]) for i, n in enumerate(self.all_names) if n]
        # item assignment into an empty Container is the cheapest way to fill one
        made = "".join(f"{indent}c[{k!r}] = {v}\n" for k, v in items)
        target = ", ".join(values) + ("," if len(values) == 1 else "")
        env["errors"] = (TypeError, struct.error)
        return target, "".join(checks), made

    def unpacker(
        self, *, offset: int = 0, head: Iterable[tuple[str, Any]] = ()
    ) -> Callable[[bytes], construct.Container | None]:
        """A function parsing this layout at ``offset`` of its input into a ``Container``.

        ``head`` items come first in the container (e.g. a message ``type``). The function
        returns ``None`` when the input is too short or a ``Const`` differs, so that the caller
        falls back to the generic parser, which raises the precise error. The function's code
        is generated from the layout (as construct's own compiler does), so a parse costs one
        ``unpack_from`` and one ``Container``.

        >>> import construct
        >>> layout = FixedLayout(construct.Struct("index" / construct.Int32ub))
        >>> parse = layout.unpacker(offset=1, head=[("type", "have")])
        >>> dict(parse(b"\\x04\\x00\\x00\\x00\\x07"))
        {'type': 'have', 'index': 7}
        >>> parse(b"\\x04\\x00") is None
        True
        """
        env: dict[str, Any] = {"Container": construct.Container, "unpack_from":
                               self.struct.unpack_from}
        target, checks, made = self._record_code(env, "    ", head)
        unpack = f"        {target} = unpack_from(data, {offset})\n" if target else ""
        source = (
            "def parse(data):\n"
            "    try:\n"
            f"        if len(data) < {offset + self.size}:\n            return None\n"
            f"{unpack}"
            "    except errors:  # not bytes: the generic parser reports it\n"
            "        return None\n"
            f"{checks}    c = Container()\n{made}    return c\n"
        )
        exec(compile(source, f"<FixedLayout {self.format} unpacker>", "exec"), env)
        return env["parse"]

    def many_unpacker(self, sequence: type[list] = list
                      ) -> Callable[[bytes], list[construct.Container] | None]:
        """A function parsing a concatenation of this layout's records into a ``sequence``
        (``list``, or ``construct.ListContainer`` where a schema's parse gives one) of the
        ``Container`` objects :meth:`unpacker` makes (one ``iter_unpack`` over the input, no
        slice per record); None when the input is not a whole number of records or a
        ``Const`` differs (then parse record by record).

        >>> import construct
        >>> layout = FixedLayout(construct.Struct("port" / construct.Int16ub))
        >>> [dict(c) for c in layout.many_unpacker()(b"\\x00\\x01\\x00\\x02")]
        [{'port': 1}, {'port': 2}]
        >>> layout.many_unpacker()(b"\\x00") is None
        True
        """
        env: dict[str, Any] = {"Container": construct.Container, "Sequence": sequence,
                               "iter_unpack": self.struct.iter_unpack}
        target, checks, made = self._record_code(env, "        ")
        source = (
            "def parse_many(data):\n"
            f"    if len(data) % {self.size}:\n        return None\n"
            "    try:\n"
            "        records = iter_unpack(data)\n"
            "    except errors:  # not bytes\n"
            "        return None\n"
            "    out = Sequence()\n"
            "    append = out.append\n"
            f"    for {target} in records:\n"
            f"{checks}        c = Container()\n{made}        append(c)\n"
            "    return out\n"
        )
        exec(compile(source, f"<FixedLayout {self.format} many-unpacker>", "exec"), env)
        return env["parse_many"]

    def packer(self, *, prefix: bytes = b"") -> Callable[[Any], bytes | None]:
        """A function building this layout from a mapping, ``prefix`` first.

        It returns ``None`` when a field is missing or a value does not fit, so that the caller
        falls back to the generic builder, which raises the precise error.

        >>> import construct
        >>> layout = FixedLayout(construct.Struct("index" / construct.Int32ub))
        >>> build = layout.packer(prefix=b"\\x04")
        >>> build({"index": 7})
        b'\\x04\\x00\\x00\\x00\\x07'
        >>> build({"index": -1}) is None
        True
        """
        env: dict[str, Any] = {"pack": self.struct.pack, "prefix": bytes(prefix),
                               "errors": _FAST_BUILD_ERRORS}
        args = []
        lines = []
        adapted = dict(self.adapters)
        consts = dict(self.consts)
        sizes = [struct.calcsize(self.format[0] + code) for code in _codes(self.format)]
        for i, name in enumerate(self.all_names):
            if name is None:
                if i not in consts:
                    raise TypeError(f"field {i} of {self.format} has no name and no value")
                env[f"c{i}"] = consts[i]
                args.append(f"c{i}")
                continue
            value = f"obj[{name!r}]"
            if i in adapted:
                env[f"a{i}"] = adapted[i]
                value = f"a{i}._encode({value}, None, '')"
            lines.append(f"        v{i} = {value}\n")
            if _codes(self.format)[i].endswith("s"):  # struct pads or cuts; construct refuses
                lines.append(f"        if len(v{i}) != {sizes[i]}:\n            return None\n")
            args.append(f"v{i}")
        source = (
            "def build(obj):\n"
            "    try:\n"
            f"{''.join(lines)}"
            f"        return prefix + pack({', '.join(args)})\n"
            "    except errors:\n"
            "        return None\n"
        )
        exec(compile(source, f"<FixedLayout {self.format} packer>", "exec"), env)
        return env["build"]


def _codes(fmt: str) -> list[str]:
    """The per-field codes of a struct format (``">B19sQ"`` -> ``["B", "19s", "Q"]``)."""
    return re.findall(r"[0-9]*[a-zA-Z?]", fmt[1:])


#: What a generated fast builder treats as "let the generic builder report it".
_FAST_BUILD_ERRORS = _TRANSLATED + (P2PKitError,)


class NamedBits(construct.Adapter):
    """An integer read as named flags; bits without a name are kept in ``unknown``.

    Builds from the same Container (missing flags count as unset) or from a plain integer.

    >>> Flags = NamedBits(construct.Int8ub, seed=0x02, utp=0x04)
    >>> flags = Flags.parse(b"\\x84")
    >>> flags.seed, flags.utp, hex(flags.unknown)
    (False, True, '0x80')
    >>> Flags.build(dict(seed=True, unknown=0x80))
    b'\\x82'
    """

    def __init__(self, subcon: construct.Construct, **bits: int) -> None:
        super().__init__(subcon)
        self.bits = bits
        self.mask = 0
        for bit in bits.values():
            self.mask |= bit

    def _decode(self, obj: int, context: Any, path: str) -> construct.Container:
        flags = construct.Container([(name, bool(obj & bit)) for name, bit in self.bits.items()])
        flags["unknown"] = obj & ~self.mask
        return flags

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        if isinstance(obj, int):
            return obj
        value = obj.get("unknown", 0)
        if value & self.mask:
            raise construct.ExplicitError(f"unknown bits {value:#x} overlap named flags", path=path)
        for name, flag in obj.items():
            if name == "unknown" or name.startswith("_"):
                continue
            if name not in self.bits:
                raise construct.ExplicitError(f"no flag named {name!r}", path=path)
            if flag:
                value |= self.bits[name]
        return value


class MessageTable:
    """A protocol's messages: type id -> (name, body), declared once.

    Everything else derives from it: ``names`` (id -> name), ``ids`` (name -> id), the
    construct switch in strict and lenient form (:meth:`switch`), and the body parser and
    builder a hand-written frame calls (:meth:`parse_body`, :meth:`build_body`). A parsed
    message is one flat ``Container``: the name under ``key`` and the body's fields beside it.
    An unknown id is a :class:`ParseError` when strict; leniently it parses as
    ``Container(key="unknown", id_key=<id>, payload=<bytes>)`` whose hidden ``_deviations``
    (read with :func:`~p2pkit.deviations.deviations_of`) holds one
    :class:`~p2pkit.deviations.Deviation` (``rule``, ``spec``, ``level``). Both modes
    build ``unknown`` messages back to the same bytes.

    >>> table = MessageTable({4: ("have", construct.Struct("index" / construct.Int32ub))},
    ...                      rule="bittorrent/message/unknown-id", spec="BEP 3")
    >>> Strict, Lenient = table.switch(strict=True), table.switch(strict=False)
    >>> dict(Strict.parse(b"\\x04\\x00\\x00\\x00\\x07")), table.ids["have"]
    ({'type': 'have', 'index': 7}, 4)
    >>> Strict.parse(b"\\x63\\xff")
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: field type, offset 0: unknown message id 99
    >>> from p2pkit.deviations import deviations_of
    >>> unknown = Lenient.parse(b"\\x63\\xff")
    >>> unknown.type, unknown.id, unknown.payload, [d.rule for d in deviations_of(unknown)]
    ('unknown', 99, b'\\xff', ['bittorrent/message/unknown-id'])
    >>> Strict.build(unknown)
    b'c\\xff'
    """

    def __init__(self, messages: Mapping[int, tuple[str, construct.Construct]], *,
                 rule: str, spec: str, level: Level = "MAY", key: str = "type",
                 id_key: str = "id", what: str = "message id", noun: str = "message",
                 compiled: bool = False) -> None:
        #: id -> (name, body), as declared.
        self.messages: dict[int, tuple[str, construct.Construct]] = dict(messages)
        #: id -> name.
        self.names: dict[int, str] = {mid: name for mid, (name, _) in self.messages.items()}
        #: name -> id.
        self.ids: dict[str, int] = {name: mid for mid, (name, _) in self.messages.items()}
        self._by_name = {name: (mid, body) for mid, (name, body) in self.messages.items()}
        self.key, self.id_key, self.what, self.noun = key, id_key, what, noun
        self.rule, self.spec, self.level = rule, spec, level
        #: ``compiled=True``: bodies are parsed first by construct's compiler output for the
        #: same declaration (made on first use); on any failure the declaration itself
        #: parses again, so errors and deviations are the generic parser's. Tests compare
        #: both on random inputs.
        self.compiled: dict[int, construct.Construct | None] | None = {} if compiled else None

    def unknown(self, type_id: int, payload: bytes, offset: int | None) -> construct.Container:
        """The lenient value of a message whose id the table does not name."""
        deviation = Deviation(offset=offset or 0, rule=self.rule, spec=self.spec,
                              level=self.level, message=f"unknown {self.what} {type_id}")
        out = construct.Container()
        out[self.key] = "unknown"
        out[self.id_key] = type_id
        out["payload"] = payload
        out[DEVIATIONS] = [deviation]
        return out

    def parse_body(self, type_id: int, stream: Any, context: Any, path: str, *, strict: bool,
                   offset: int | None = None, into: construct.Container | None = None,
                   flat: bool = True, label: str | None = None) -> construct.Container:
        """Parse the body ``type_id`` names from the rest of ``stream`` (which must be used up).

        ``offset`` is where the type id was (for errors and deviations); ``into`` is a
        Container to fill (a frame's header fields first); ``flat=False`` returns the body's
        own Container (bodies that carry their type themselves, BEP 15); ``label`` names the
        body in error paths (the message name by default).
        """
        entry = self.messages.get(type_id)
        if entry is None:
            if strict:
                raise ParseError(f"unknown {self.what} {type_id}", path=self.key, offset=offset)
            unknown = self.unknown(type_id, stream.read(), offset)
            if into is None:
                return unknown
            into.update(unknown)
            return into
        name, body = entry
        fast = self._compiled_body(type_id, body) if self.compiled is not None else None
        if fast is not None:
            start = stream.tell()
            try:
                fields = fast._parsereport(stream, context, path)
            except Exception:  # noqa: BLE001 - the declaration reports it precisely
                stream.seek(start)
                fields = body._parsereport(stream, context, f"{path} -> {label or name}")
        else:
            fields = body._parsereport(stream, context, f"{path} -> {label or name}")
        rest = stream.read()
        if rest:
            raise ParseError(f"{len(rest)} bytes after the fields of a {name} {self.noun}",
                             path=clean_path(f"{path} -> {label or name}"),
                             offset=stream.tell() - len(rest))
        if not flat:
            return fields
        out = construct.Container() if into is None else into
        out[self.key] = name
        for k, value in fields.items():
            if k[:1] != "_":
                out[k] = value
        return out

    def _compiled_body(self, type_id: int, body: construct.Construct
                       ) -> construct.Construct | None:
        """construct's compiled parser of ``body`` (None when it does not compile)."""
        assert self.compiled is not None
        try:
            return self.compiled[type_id]
        except KeyError:
            try:
                fast = body.compile()
            except Exception:  # noqa: BLE001 - not compilable: the declaration parses
                fast = None
            self.compiled[type_id] = fast
            return fast

    def type_id(self, obj: Any, path: str = "") -> int:
        """The type id of message ``obj`` (``obj[id_key]`` for an ``unknown`` one)."""
        name = obj[self.key]
        if name == "unknown":
            return int(obj[self.id_key])
        entry = self._by_name.get(name)
        if entry is None:
            raise construct.ExplicitError(f"unknown {self.noun} type {name!r}", path=path)
        return entry[0]

    def build_body(self, obj: Any, stream: Any, context: Any, path: str, *,
                   label: str | None = None) -> int:
        """Write the body of ``obj`` (named by ``obj[key]``); return its type id.

        An ``unknown`` message writes its ``payload`` as it is.
        """
        entry = self._by_name.get(obj[self.key])
        if entry is None:
            if obj[self.key] != "unknown":
                raise construct.ExplicitError(f"unknown {self.noun} type {obj[self.key]!r}",
                                              path=path)
            payload = bytes(obj["payload"])
            construct.stream_write(stream, payload, len(payload), path)
            return int(obj[self.id_key])
        entry[1]._build(obj, stream, context, f"{path} -> {label}" if label else path)
        return entry[0]

    def switch(self, type_field: construct.Construct = construct.Int8ub, *, strict: bool,
               peek_at: int | None = None, empty: str | None = None,
               label: str | None = None) -> MessageSwitch:
        """The construct that reads ``type_field`` and the body it selects (see
        :class:`MessageSwitch`)."""
        return MessageSwitch(self, type_field, strict=strict, peek_at=peek_at, empty=empty,
                             label=label)


class MessageSwitch(construct.Construct):
    """``type_field`` selects a body of ``table``; parses the whole (delimited) stream.

    The default reads the type field and then the body, whose fields sit flat beside
    ``table.key`` (BEP 3 peer messages). ``peek_at`` reads the type field at that offset
    without consuming it, and the body, which carries the field itself, is the message (BEP 15:
    the action sits after the connection id). ``empty`` names the message an empty stream is
    (BEP 3's ``keep_alive``). Strict: an unknown id raises (construct's ``Switch`` with
    ``default=Error``); lenient: see :meth:`MessageTable.unknown`.
    """

    def __init__(self, table: MessageTable, type_field: construct.Construct, *, strict: bool,
                 peek_at: int | None = None, empty: str | None = None,
                 label: str | None = None) -> None:
        super().__init__()
        field = type_field
        while isinstance(field, construct.Renamed):
            field = field.subcon
        if not isinstance(field, construct.FormatField):
            raise TypeError(f"a message type field must be an integer, got {type_field!r}")
        self.table = table
        #: The table's ``id -> (name, body)`` and key, for introspection (the docs' references).
        self.by_id = table.messages
        self.key = table.key
        self.type_field = field
        self._type = struct.Struct(field.fmtstr)
        self.strict = strict
        self.peek_at = peek_at
        self.empty = empty
        self.label = label
        self.flagbuildnone = False

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        table = self.table
        start = stream.tell()
        if self.peek_at is None:
            raw = stream.read(self._type.size)
            offset = start
        else:
            raw = stream.read(self.peek_at + self._type.size)[self.peek_at :]
            stream.seek(start)
            offset = start + self.peek_at
        if len(raw) < self._type.size:
            if not raw and self.empty is not None and self.peek_at is None:
                out = construct.Container()
                out[table.key] = self.empty
                return out
            raise ParseError(f"truncated: no {table.key} field", path=table.key, offset=offset)
        (type_id,) = self._type.unpack(raw)
        return table.parse_body(type_id, stream, context, path, strict=self.strict,
                                offset=offset, flat=self.peek_at is None, label=self.label)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        name = obj[self.table.key]
        if name == self.empty:
            return obj
        if self.peek_at is not None:  # the body writes its own type field
            self.table.build_body(obj, stream, context, path, label=self.label)
            return obj
        head = self._type.pack(self.table.type_id(obj, path))
        construct.stream_write(stream, head, len(head), path)
        self.table.build_body(obj, stream, context, path, label=self.label)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError(f"{self.table.noun}s have no fixed size", path=path)


def consecutive_layout(*parts: tuple[FixedLayout, Iterable[str]]) -> struct.Struct:
    """One :class:`struct.Struct` over several fixed layouts that follow each other in the
    bytes (Ethernet, then IPv4, then TCP), unpacking only the fields each part names: the
    others become pad bytes, so one ``unpack_from`` returns the named fields of every header
    in layout order and makes no object for the rest. Derived from the layouts, so it cannot
    disagree with their schemas; byte orders must agree (:class:`TypeError` otherwise).

    >>> import construct
    >>> a = FixedLayout(construct.Struct("x" / construct.Int16ub, "y" / construct.Bytes(2)))
    >>> b = FixedLayout(construct.Struct("z" / construct.Int8ub, "w" / construct.Int32ub))
    >>> both = consecutive_layout((a, {"x"}), (b, {"w"}))
    >>> both.format, both.unpack(bytes(range(9)))
    ('>H2x1xL', (1, 84281096))
    """
    order: str | None = None
    codes: list[str] = []
    for layout, names in parts:
        if layout.byte_order is not None:
            if order not in (None, layout.byte_order):
                raise TypeError("consecutive_layout parts must share one byte order")
            order = layout.byte_order
        wanted = set(names)
        unknown = wanted - set(layout.names)
        if unknown:
            raise TypeError(f"no field {sorted(unknown)} in {layout.names}")
        for name, code in zip(layout.all_names, layout.codes):
            codes.append(code if name in wanted else f"{struct.calcsize('>' + code)}x")
    return struct.Struct((order or ">") + "".join(codes))
