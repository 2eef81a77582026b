"""The one schema type for bencoded dictionaries (BEP 3 §bencoding; used for BEP 3 metainfo
and tracker responses, BEP 5 KRPC, BEP 9/10/11 extension payloads).

:class:`BencodedDict` declares each key (:class:`Field`) with its value type (:class:`Integer`,
:class:`String`, :class:`Text`, :class:`ListOf`, :class:`MapOf`, a nested ``BencodedDict``,
:class:`Value` for any value, …); the same declaration parses strictly (``ParseError`` with the
field path and byte offset), leniently (a :class:`~p2pkit.deviations.Deviation` per departure)
and builds canonical bytes. ``Bencoded`` is the value codec of
:mod:`p2pkit.bencode.codec` as a construct ``Construct``, so bencoded payloads nest inside
schemas.

It stays one module: the value types, the locator that turns field paths into byte offsets,
and the dictionary declaration are one mechanism whose parts call each other on every key.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import construct
from construct import Container

from p2pkit.bencode.codec import PROTOCOL, SPEC, _Decoder, encode
from p2pkit.deviations import Deviation, with_deviations
from p2pkit.errors import BuildError, LimitExceeded, P2PKitError, ParseError
from p2pkit.schema import clean_path

__all__ = [
    "ENCODE_ERRORS",
    "LENGTH_PREFIX",
    "AnyValue",
    "Bencoded",
    "BencodedConstruct",
    "BencodedDict",
    "BencodedLenient",
    "Choice",
    "Context",
    "Field",
    "Integer",
    "ListOf",
    "MapOf",
    "Mismatch",
    "Packed",
    "PathStep",
    "Records",
    "Rules",
    "String",
    "Text",
    "Value",
    "bencoded_leaf",
    "locate",
    "path_label",
    "type_name",
]

# ---------------------------------------------------------------------------------------------
# Locating values: field paths and byte offsets for errors and deviations


#: A path to a value: dictionary keys (``bytes``) and list indexes (``int``) from the root.
PathStep: TypeAlias = "bytes | int | str"


def path_label(path: tuple[PathStep, ...] | list[PathStep]) -> str:
    """``(b"info", b"files", 3, b"path")`` as ``info -> files[3] -> path``.

    >>> path_label((b"info", b"piece length"))
    'info -> piece length'
    """
    out: list[str] = []
    for step in path:
        if isinstance(step, int):
            if out:
                out[-1] += f"[{step}]"
            else:
                out.append(f"[{step}]")
        elif isinstance(step, str):
            out.append(step)
        else:
            out.append(_step_text(step))
    return " -> ".join(out)


def _step_text(key: bytes) -> str:
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + key.hex()
    return text if text.isprintable() else "0x" + key.hex()


def locate(data: bytes, path: tuple[PathStep, ...] | list[PathStep]) -> int:
    """Byte offset of the value at ``path`` (or of the deepest container found on the way).

    >>> locate(b"d4:infod5:filesld6:lengthi1eeeee", [b"info", b"files", 0, b"length"])
    25
    """
    return Locator(data).locate(path)


class Locator:
    """Offsets of values inside one input, found with the decoder itself; each container is
    scanned once and remembered, so locating many deviations in a large input stays linear."""

    def __init__(self, data: bytes,
                 top: Mapping[bytes, tuple[int, int]] | None = None,
                 values: Mapping[bytes, Any] | None = None) -> None:
        self.data = data
        self.children: dict[int, dict[bytes, int] | list[int]] = {}
        #: The decoded lists and dictionaries by offset, when ``data`` is known to be the
        #: canonical encoding of the top-level dictionary ``values``: their children are
        #: then measured from the values (:meth:`_measured`), not scanned.
        self.values: dict[int, Any] | None = None
        if top is not None:  # the top-level spans a decode recorded: no scan of the top
            children = self.children[0] = {}
            known = self.values = {} if values is not None else None
            for key, (start, _) in top.items():
                children[key] = start
                if known is not None:
                    value = values[key]  # type: ignore[index]
                    if type(value) is dict or type(value) is list:
                        known[start] = value

    def locate(self, path: tuple[PathStep, ...] | list[PathStep]) -> int:
        pos = 0
        for step in path:
            children = self.children.get(pos)
            if children is None:
                children = self.children[pos] = self._scan(pos)
            if isinstance(step, int):
                if not isinstance(children, list) or step >= len(children):
                    break
            elif not isinstance(children, dict) or step not in children:
                break
            pos = children[step]  # type: ignore[index]
        return pos

    def _scan(self, pos: int) -> dict[bytes, int] | list[int]:
        if self.values is not None:
            value = self.values.get(pos)
            if value is not None:
                return self._measured(pos, value)
        data = self.data
        dec = _Decoder(data, strict=False)
        try:
            if data[pos:pos + 1] == b"d":
                spans: dict[bytes, int] = {}
                p = pos + 1
                while data[p:p + 1] not in (b"e", b""):
                    key, p = dec.value(p, 1, None)
                    if isinstance(key, bytes):
                        spans[key] = p
                    _, p = dec.value(p, 1, None)
                return spans
            if data[pos:pos + 1] == b"l":
                starts = []
                p = pos + 1
                while data[p:p + 1] not in (b"e", b""):
                    starts.append(p)
                    _, p = dec.value(p, 1, None)
                return starts
        except ParseError:
            pass
        return []


    def _measured(self, pos: int, value: Any) -> dict[bytes, int] | list[int]:
        """The children's offsets of the list or dictionary ``value`` whose canonical
        encoding starts at ``pos``: each string and integer measured, a list or dictionary
        encoded to be measured unless it is the last item (BEP 3: canonical bencoding is
        the encoding of its value, items one after another)."""
        known = self.values
        assert known is not None
        p = pos + 1
        last = len(value) - 1
        if type(value) is dict:
            keys: dict[bytes, int] = {}
            for i, (key, item) in enumerate(value.items()):
                p += len(key) + len(str(len(key))) + 1
                keys[key] = p
                p += _measured_size(item, known, p, i == last)
            return keys
        starts = []
        for i, item in enumerate(value):
            starts.append(p)
            p += _measured_size(item, known, p, i == last)
        return starts


def _measured_size(item: Any, known: dict[int, Any], at: int, last: bool) -> int:
    """Bytes of ``item``'s canonical encoding (0 for the last item of a container: nothing
    after it is located); a list or dictionary is remembered at its offset ``at``."""
    kind = type(item)
    if kind is bytes:
        return len(item) + len(str(len(item))) + 1
    if kind is int:
        return len(str(item)) + 2
    known[at] = item
    return 0 if last else len(encode(item))


# ---------------------------------------------------------------------------------------------
# Declared value types
#
# A bencoded dictionary schema (:class:`BencodedDict`) declares its keys, each with one of the
# value types below. A type turns a decoded bencoded value into the Python value a caller sees
# (``decode``), back (``encode``), and knows the bencoding of a value directly when that is
# cheap (``bencoded``: the fast build paths are made of these).


class Mismatch(ValueError):
    """A value that does not have its declared type; the enclosing dictionary reports it (a
    ``ParseError`` with the field path when strict, a ``Deviation`` when lenient).
    ``steps`` lead from the dictionary's key to the bad item (a list index, a nested key)."""

    def __init__(self, reason: str, steps: tuple[PathStep, ...] = (), *,
                 fatal: bool = False) -> None:
        super().__init__(reason)
        self.steps = steps
        #: An error even when lenient: the value cannot be understood at all.
        self.fatal = fatal


class Context:
    """One conformance check of decoded values against a declaration: the input (for offsets),
    the mode, and the deviations found so far.

    Strict (``deviations is None``): a MUST-level problem raises :class:`ParseError` with the
    field path and byte offset; SHOULD/MAY problems are let through. Lenient: every problem is
    a ``Deviation``, and at most ``max_deviations`` are listed (the rest are counted in
    ``untold``: locating each of a million bad values would cost quadratic time).
    """

    __slots__ = ("data", "base", "deviations", "protocol", "locator", "max_deviations",
                 "untold", "label_messages", "top_spans", "top_values")

    def __init__(self, data: bytes, *, protocol: str, deviations: list[Deviation] | None,
                 base: int = 0, max_deviations: int | None = None,
                 label_messages: bool = False,
                 top_spans: Mapping[bytes, tuple[int, int]] | None = None,
                 top_values: Mapping[bytes, Any] | None = None) -> None:
        #: The spans of the top-level dictionary's values, when the decode recorded them
        #: (``data`` is then that dictionary): the locator starts from them.
        self.top_spans = top_spans
        #: That dictionary's decoded value, when ``data`` is its canonical encoding (the
        #: locator then measures instead of scanning).
        self.top_values = top_values
        #: Deviation messages start with the field path (``info -> name: …``).
        self.label_messages = label_messages
        self.data = data
        self.base = base
        self.deviations = deviations
        self.protocol = protocol
        self.locator: Locator | None = None
        self.max_deviations = max_deviations
        self.untold = 0

    @property
    def strict(self) -> bool:
        return self.deviations is None

    def offset(self, path: tuple[PathStep, ...]) -> int:
        if self.locator is None:
            self.locator = Locator(self.data, self.top_spans, self.top_values)
        return self.base + self.locator.locate(path)

    def fail(self, reason: str, path: tuple[PathStep, ...], *, limit: bool = False
             ) -> ParseError:
        cls = LimitExceeded if limit else ParseError
        return cls(reason, protocol=self.protocol, path=path_label(path),
                   offset=self.offset(path))

    def report(self, rule: str, message: str, path: tuple[PathStep, ...], spec: str,
               level: str = "MUST") -> None:
        """One departure from the declaration (or from a cross-field rule)."""
        deviations = self.deviations
        if deviations is None:
            if level == "MUST":
                raise self.fail(message, path)
            return
        if self.max_deviations is not None and len(deviations) >= self.max_deviations:
            self.untold += 1
            return
        if self.label_messages:
            message = f"{path_label(path)}: {message}"
        deviations.append(Deviation(offset=self.offset(path), rule=rule, message=message,
                                    spec=spec, level=level))  # type: ignore[arg-type]


#: ``b"0:"`` … ``b"4096:"``: the length prefixes of short strings, made once (fast builds).
LENGTH_PREFIX = tuple(b"%d:" % n for n in range(4097))


def type_name(value: Any) -> str:
    """``"a string"``, ``"an integer"``, ``"a list"``, ``"a dictionary"`` for error messages."""
    return {bytes: "a string", int: "an integer", list: "a list", dict: "a dictionary"}.get(
        type(value), type(value).__name__)


def bencoded_leaf(value: Any) -> bytes | None:
    """The bencoding of a string, an integer or a flat list of them; None for anything else."""
    kind = type(value)
    if kind is bytes:
        n = len(value)
        return (LENGTH_PREFIX[n] if n <= 4096 else b"%d:" % n) + value
    if kind is int:
        return b"i%de" % value
    if kind is list:
        parts = []
        for item in value:
            if type(item) is bytes:
                parts.append(b"%d:%s" % (len(item), item))
            elif type(item) is int:
                parts.append(b"i%de" % item)
            else:
                return None
        return b"l" + b"".join(parts) + b"e"
    return None


#: What an ``encode`` may raise on a value it refuses (the caller turns it into BuildError).
ENCODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, construct.ConstructError,
                 P2PKitError)


class Value:
    """A declared type of a bencoded value (the base: any value, kept as decoded).

    BEP 44 ``v``: "It is allowed to be any bencoded type (list, dict, string or integer)".
    """

    #: A short description for the reference pages (``integer 0..65535``).
    what = "any bencoded value"
    #: True when ``decode`` uses its ``path`` argument (nested containers, reported text).
    needs_path = False
    #: True when a lenient decode may raise (a ``ParseError`` through ``cx.fail``, or a fatal
    #: ``Mismatch``) rather than report: a type whose ``decode`` raises only plain
    #: ``Mismatch`` keeps False. Containers derive it from their items
    #: (:attr:`BencodedDict.may_fail`); a dissector may put off the conversion of a value
    #: whose declaration cannot fail (the record cannot turn into an error later).
    may_fail = False

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> Any:
        """The Python value of ``raw``; raises ``Mismatch`` when it has another type."""
        return raw

    def encode(self, value: Any) -> Any:
        """The bencodable value of ``value`` (the reverse of :meth:`decode`)."""
        return value

    def bencoded(self, value: Any) -> bytes | None:
        """``encode`` then bencode, when that is a leaf; None leaves it to the generic build."""
        try:
            return bencoded_leaf(self.encode(value))
        except ENCODE_ERRORS:
            return None


#: Any bencoded value, kept as decoded.
AnyValue = Value


class Integer(Value):
    """An integer, optionally within ``[low, high]``."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low = low
        self.high = high
        bounds = "" if low is None and high is None else \
            f" {'' if low is None else low}..{'' if high is None else high}"
        self.what = "integer" + bounds

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> int:
        if type(raw) is not int:
            raise Mismatch(f"must be an integer, not {type_name(raw)}")
        if (self.low is not None and raw < self.low) or (self.high is not None
                                                          and raw > self.high):
            if self.low == 0 and raw < 0:
                raise Mismatch(f"{raw} is negative")
            if self.low == 1 and raw < 1:
                raise Mismatch(f"{raw} is not positive")
            raise Mismatch(f"{raw} is outside [{self.low}, {self.high}]")
        return raw

    def encode(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type_name(value)}")
        return int(value)

    def bencoded(self, value: Any) -> bytes | None:
        return b"i%de" % value if type(value) is int else super().bencoded(value)


class String(Value):
    """A byte string: of exactly ``length`` bytes, or of ``min_length`` to ``max_length``."""

    def __init__(self, length: int | None = None, *, min_length: int = 0,
                 max_length: int | None = None, multiple_of: int | None = None) -> None:
        self.length = length
        self.min_length = min_length
        self.max_length = max_length
        self.multiple_of = multiple_of
        #: Only an exact length (or none) to check: the common case, checked inline.
        self.simple = not min_length and max_length is None and multiple_of is None
        if multiple_of is not None:
            self.what = f"string of a multiple of {multiple_of} bytes"
        elif length is not None:
            self.what = f"string of {length} bytes"
        elif min_length or max_length is not None:
            self.what = f"string of {min_length}..{'' if max_length is None else max_length} bytes"
        else:
            self.what = "string"

    def check(self, n: int) -> str | None:
        if self.length is not None and n != self.length:
            return f"is {n} bytes, not {self.length}"
        if n < self.min_length or (self.max_length is not None and n > self.max_length):
            return f"is {n} bytes, outside [{self.min_length}, {self.max_length}]"
        if self.multiple_of is not None and n % self.multiple_of:
            return f"is {n} bytes, not a multiple of {self.multiple_of}"
        return None

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> bytes:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}")
        if (self.length is not None and len(raw) != self.length) or not self.simple:
            problem = self.check(len(raw))
            if problem:
                raise Mismatch(problem)
        return raw

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes, got {type_name(value)}")
        if type(value) is not bytes:
            value = bytes(value)
        if (self.length is not None and len(value) != self.length) or not self.simple:
            problem = self.check(len(value))
            if problem:
                raise ValueError(problem)
        return value

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is not bytes:
            return super().bencoded(value)
        n = len(value)
        if (self.length is not None and n != self.length) or n > 4096 or (
                not self.simple and self.check(n)):
            return None
        return LENGTH_PREFIX[n] + value


class Text(Value):
    """A string holding UTF-8 text (BEP 3: "All strings in a .torrent file that contains text
    must be UTF-8 encoded").

    What happens to bytes that are not UTF-8 is declared: ``invalid="bytes"`` keeps them as
    ``bytes`` (a KRPC method name, a client name), ``"surrogateescape"`` keeps them in the
    ``str`` so they build back unchanged, ``"replace"`` replaces them and reports ``rule``.
    """

    what = "UTF-8 text"

    def __init__(self, invalid: str = "bytes", *, rule: str = "", spec: str = "",
                 level: str = "MUST") -> None:
        self.invalid = invalid
        self.rule = rule
        self.spec = spec
        self.level = level
        self.needs_path = invalid == "replace"

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> str | bytes:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.invalid == "bytes":
                return raw
            if self.invalid == "surrogateescape":
                return raw.decode("utf-8", "surrogateescape")
            cx.report(self.rule, "text is not valid UTF-8", path, self.spec, self.level)
            return raw.decode("utf-8", "replace")

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        raise TypeError(f"expected text, got {type_name(value)}")

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is str and value.isascii() and len(value) <= 4096:
            return LENGTH_PREFIX[len(value)] + value.encode("ascii")
        return super().bencoded(value)


class ListOf(Value):
    """A list whose items all have one declared type."""

    needs_path = True

    def __init__(self, item: Value, *, max_items: int | None = None,
                 fatal: bool = False) -> None:
        self.item = item
        self.max_items = max_items
        #: A bad item is an error even when lenient (else the whole list is reported).
        self.fatal = fatal
        self.what = f"list of {item.what}"

    @property
    def may_fail(self) -> bool:  # type: ignore[override]
        return self.fatal or self.max_items is not None or self.item.may_fail

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> list:
        if type(raw) is not list:
            raise Mismatch(f"must be a list, not {type_name(raw)}")
        if self.max_items is not None and len(raw) > self.max_items:
            raise cx.fail(f"{len(raw)} items is more than {self.max_items}", path, limit=True)
        item = self.item
        decode = item.decode
        out = []
        for i, value in enumerate(raw):
            try:
                out.append(decode(value, cx, (*path, i) if item.needs_path else path))
            except Mismatch as e:
                raise Mismatch(f"[{i}] {e}", (i, *e.steps), fatal=self.fatal or e.fatal
                               ) from None
        return out

    def encode(self, value: Any) -> list:
        if isinstance(value, (str, bytes, Mapping)):
            raise TypeError(f"expected a list, got {type_name(value)}")
        return [self.item.encode(v) for v in value]


class Choice(Value):
    """An integer that names one of a few values (BEP 9 ``msg_type``: 0 request, 1 data, …)."""

    def __init__(self, names: Mapping[int, str]) -> None:
        self.names = dict(names)
        self.numbers = {name: n for n, name in self.names.items()}
        self.what = "integer: " + ", ".join(f"{n} {name}" for n, name in self.names.items())

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> str:
        if type(raw) is not int or raw not in self.names:
            raise Mismatch(f"has the unknown value {raw!r}")
        return self.names[raw]

    def encode(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        return self.numbers[value]


class Packed(Value):
    """A string holding a binary layout, parsed whole by a construct (an address, records)."""

    def __init__(self, con: construct.Construct, what: str = "") -> None:
        self.con = con
        self.what = what or f"string holding {type(con).__name__}"

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> Any:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string, not {type_name(raw)}")
        stream = io.BytesIO(raw)
        try:
            obj = self.con.parse_stream(stream)
        except (construct.ConstructError, ParseError, ValueError) as e:
            detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise Mismatch(f"is not a {self.what}: {detail}") from None
        if stream.tell() != len(raw):
            raise Mismatch(f"has {len(raw) - stream.tell()} bytes left over after the records")
        return obj

    def encode(self, value: Any) -> bytes:
        return self.con.build(value)


class Records(Value):
    """A string that is a concatenation of fixed-size records of one construct ``Struct``.

    The struct format is derived from the construct (:class:`~p2pkit.schema.FixedLayout`), so
    the record has a single definition. Items may be given built (``bytes`` of the record
    size) when building.
    """

    def __init__(self, con: construct.Construct, what: str) -> None:
        from p2pkit.schema import FixedLayout

        layout = FixedLayout(con)
        self.size = layout.size
        self.what = f"string of {layout.size}-byte {what}"
        self.records = what
        self._unpack = layout.unpacker()
        self._unpack_many = layout.many_unpacker()
        self._pack = layout.packer()
        self.con = con

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> list:
        if type(raw) is not bytes:
            raise Mismatch(f"must be a string of {self.records}, not {type_name(raw)}")
        size = self.size
        if len(raw) % size:
            raise Mismatch(f"is {len(raw)} bytes, not a whole number of {size}-byte "
                           f"{self.records}")
        records = self._unpack_many(raw)
        if records is not None:
            return records
        unpack = self._unpack  # (a Const that differs: None where the record is)
        return [unpack(raw[i:i + size]) for i in range(0, len(raw), size)]

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        out = []
        size = self.size
        for item in value:
            if type(item) is bytes and len(item) == size:
                out.append(item)
                continue
            packed = self._pack(item)
            out.append(self.con.build(item) if packed is None else packed)
        return b"".join(out)

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is list:
            size = self.size
            for item in value:
                if type(item) is not bytes or len(item) != size:
                    return super().bencoded(value)
            raw = b"".join(value)
        elif type(value) is bytes:
            raw = value
        else:
            return super().bencoded(value)
        return LENGTH_PREFIX[len(raw)] + raw if len(raw) <= 4096 else None


class MapOf(Value):
    """A dictionary whose keys are free (names, info-hashes) and whose values have one type.

    ``keys="text"`` turns UTF-8 keys into ``str`` (others stay ``bytes``); ``keys="bytes"``
    keeps them raw.
    """

    needs_path = True

    def __init__(self, value: Value, *, keys: str = "bytes", fatal: bool = False) -> None:
        self.value = value
        self.keys = keys
        #: A bad value is an error even when lenient (else the whole dictionary is reported).
        self.fatal = fatal
        self.what = f"dictionary of {value.what}"

    @property
    def may_fail(self) -> bool:  # type: ignore[override]
        return self.fatal or self.value.may_fail

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> Container:
        if type(raw) is not dict:
            raise Mismatch(f"must be a dictionary, not {type_name(raw)}")
        value_type = self.value
        decode = value_type.decode
        text = self.keys == "text"
        out = Container() if text else {}
        for key, value in raw.items():
            try:
                value = decode(value, cx, (*path, key) if value_type.needs_path else path)
            except Mismatch as e:
                label = _step_text(key) if type(key) is bytes else key
                raise Mismatch(f"{label} {e}", (key, *e.steps), fatal=self.fatal or e.fatal
                               ) from None
            out[_text_key(key) if text else key] = value
        return out

    def encode(self, value: Any) -> dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a mapping, got {type_name(value)}")
        return {k: self.value.encode(v) for k, v in value.items()
                if not (isinstance(k, str) and k.startswith("_"))}


def _text_key(key: Any) -> Any:
    if type(key) is not bytes:
        return key
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key


# ---------------------------------------------------------------------------------------------
# Declared dictionaries


_ABSENT: Any = object()


@dataclass(frozen=True)
class Field:
    """One declared key of a bencoded dictionary.

    ``key`` is the key on the wire (BEP 3 spells ``piece length``), ``name`` the attribute in
    the parsed Container (``piece_length``; the key itself when omitted). ``default`` is put in
    the Container when the key is absent (leave it out to keep absent keys absent).
    ``aliases`` are other spellings accepted on parse (the declared key is the one built).
    """

    key: str | bytes
    type: Value
    name: str = ""
    required: bool = False
    default: Any = _ABSENT
    aliases: tuple[bytes, ...] = ()
    spec: str = ""
    doc: str = ""
    #: A value of the wrong type is an error even when lenient.
    fatal: bool = False

    @property
    def raw_key(self) -> bytes:
        return self.key.encode() if isinstance(self.key, str) else self.key

    @property
    def attr(self) -> str:
        if self.name:
            return self.name
        return self.key if isinstance(self.key, str) else self.key.decode("utf-8", "replace")


@dataclass(frozen=True)
class Rules:
    """The rule ids (and their levels) a dictionary reports its departures with."""

    spec: str = SPEC
    malformed: str = "bencode/dict/wrong-type"
    missing: str = "bencode/dict/missing-key"
    unknown: str | None = None
    unknown_level: str = "MAY"
    #: Where a missing key is reported: at the key itself (``r -> id``) or at the dictionary
    #: that lacks it (``info``).
    missing_at: str = "key"
    #: A missing or malformed required key is an error even when lenient.
    fatal_required: bool = False


#: Unknown-key policies: keep the key in place (``str`` when UTF-8); keep unknown keys raw in
#: an ``extra`` mapping; report them (lenient) or refuse them (strict).
UNKNOWN_POLICIES = ("keep", "extra", "reject")


def _carrying(value: Any, deviations: list[Deviation] | None, first: int) -> Any:
    """A lenient parse's value carrying the deviations it found (from ``first`` on) in its
    hidden ``_deviations``, where :func:`~p2pkit.deviations.deviations_of` reads them."""
    if deviations is not None and isinstance(value, Container):
        with_deviations(value, deviations[first:])
    return value


def _bencodable(value: Any) -> bool:
    """Whether ``value`` is a decoded bencoded value (``bytes``, ``int``, ``list``, ``dict``
    with ``bytes`` keys), as a lenient parse keeps an item of the wrong type."""
    kind = type(value)
    if kind is bytes or kind is int:
        return True
    if kind is list:
        return all(_bencodable(v) for v in value)
    if kind is dict:
        return all(type(k) is bytes and _bencodable(v) for k, v in value.items())
    return False


def _where(path: str, name: Any) -> str:
    return f"{path} -> {name}" if path else str(name)


class BencodedConstruct(construct.Construct):
    """One bencoded value inside a construct schema (BEP 3 §bencoding).

    Parsing consumes exactly the value's bytes and leaves the stream just after it, so fields
    may follow (BEP 9 ``data``); with ``whole=True`` the value must end the input (trailing
    bytes are an error when strict, a ``bencode/trailing-data`` deviation when lenient).
    ``strict=False`` accepts non-canonical encodings; pass ``deviations=[]`` to ``parse`` to
    collect what was accepted.

    >>> import construct
    >>> s = construct.Struct("dict" / Bencoded, "rest" / construct.GreedyBytes)
    >>> s.parse(b"d1:ai1ee..").dict
    {b'a': 1}
    """

    #: Largest input accepted (``LimitExceeded`` before decoding); None = no bound.
    max_size: int | None = None

    def __init__(self, strict: bool = True, *, whole: bool = False,
                 protocol: str = PROTOCOL, syntax_protocol: str = PROTOCOL) -> None:
        super().__init__()
        self.strict = strict
        self.whole = whole
        self.protocol = protocol
        #: The protocol named by errors in the bencoding itself (``"bencode"`` unless the
        #: schema owns its bytes entirely, as a KRPC datagram does).
        self.syntax_protocol = syntax_protocol
        self.flagbuildnone = False

    def _decode_bytes(self, stream: Any, context: Any, path: str
                      ) -> tuple[Any, bytes, int, list[Deviation] | None, int]:
        """Read and decode one value: ``(value, data, start, deviations or None if strict,
        how many deviations the list held before)``."""
        start = construct.stream_tell(stream, path)
        data = construct.stream_read_entire(stream, path)
        deviations = None
        if not self.strict:
            params = context.get("_params", context) if context is not None else None
            deviations = params.get("deviations") if params is not None else None
            if deviations is None:
                deviations = []
        first = len(deviations) if deviations is not None else 0
        value, end = self._decode_data(data, start, path, deviations)
        construct.stream_seek(stream, start + end, 0, path)
        return value, data, start, deviations, first

    def _decode_data(self, data: bytes, start: int, path: str,
                     deviations: list[Deviation] | None) -> tuple[Any, int]:
        """Decode the value at the start of ``data`` (found at ``start`` of the input)."""
        if self.max_size is not None and len(data) > self.max_size:
            raise LimitExceeded(f"{len(data)} bytes is more than {self.max_size}",
                                protocol=self.protocol, offset=start + self.max_size)
        dec = _Decoder(data, self.strict)
        try:
            value, end = dec.value(0, 0, None)
        except ParseError as e:
            raise e.relocated(base=start, path_prefix=clean_path(path),
                              protocol=self.syntax_protocol) from None
        if deviations is not None and dec.deviations:
            deviations.extend(d if not start else dataclasses.replace(d, offset=d.offset + start)
                              for d in dec.deviations)
        if self.whole and end != len(data):
            if deviations is None:
                raise ParseError(f"{len(data) - end} bytes after the value",
                                 protocol=self.syntax_protocol, offset=start + end)
            deviations.append(Deviation(offset=start + end, rule="bencode/trailing-data",
                                        spec=SPEC,
                                        message=f"{len(data) - end} bytes after the value"))
            end = len(data)
        return value, end

    def _parse(self, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        return self._decode_bytes(stream, context, path)[0]

    def _build(self, obj: Any, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        data = encode(obj)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("a bencoded value has no fixed size", path=path)

    def _emitdecompiled(self) -> str:
        return "Bencoded" if self.strict else "BencodedLenient"


#: A strict bencoded value, as a construct field.
Bencoded = BencodedConstruct(strict=True)
#: A bencoded value that may be non-canonical (for dissection).
BencodedLenient = BencodedConstruct(strict=False)


class BencodedDict(BencodedConstruct, Value):
    """A bencoded dictionary declared key by key: one declaration, strict and lenient.

    Each :class:`Field` names a key, its value type (:class:`Integer`, :class:`String`,
    :class:`Text`, :class:`ListOf`, :class:`MapOf`, another ``BencodedDict``, :class:`Value`
    for any value, …), whether it is required and its default. ``unknown`` says what happens
    to other keys (see ``UNKNOWN_POLICIES``), ``rules`` which rule ids report departures,
    and ``check`` (``check(container, context, path)``) adds the cross-field rules a
    declaration cannot say. A ``BencodedDict`` is a construct (it parses bytes and nests in
    ``Struct``s) and a value type (it nests in another ``BencodedDict``).

    * strict (``strict=True``, inside a peer or node): the first departure raises
      :class:`~p2pkit.errors.ParseError` with the field path and byte offset;
    * lenient (:meth:`lenient`, dissection): the value is returned, and each departure
      (unsorted keys, leading zeros, a missing required key, a wrong type …) is a
      ``Deviation``, carried by the value (read it with
      :func:`~p2pkit.deviations.deviations_of`) and appended to the ``deviations`` list passed
      to ``parse``, if any. With ``unknown="keep"``, an item of the wrong type is kept as it
      was sent (its deviation says so) and the lenient schema builds it back as it is.

    Building gives canonical bytes (keys sorted as raw strings).

    >>> Peer = BencodedDict([Field("ip", Text()), Field("port", Integer(0, 65535),
    ...                      required=True)], unknown="extra")
    >>> dict(Peer.parse(b"d2:ip9:127.0.0.14:porti6881ee"))
    {'ip': '127.0.0.1', 'port': 6881}
    >>> Peer.build({"port": 1, "ip": "::1"})
    b'd2:ip3:::14:porti1ee'
    >>> Peer.parse(b"d2:ip1:x4:porti-1ee")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    p2pkit.errors.ParseError: bencode, field port, offset 14: port -1 is negative
    >>> found = []
    >>> Peer.lenient().parse(b"d4:porti01e2:ip1:xe", deviations=found).port
    1
    >>> [d.rule for d in found]
    ['bencode/integer/leading-zero', 'bencode/dict/unsorted-keys']
    >>> from p2pkit.deviations import deviations_of
    >>> [d.offset for d in deviations_of(Peer.lenient().parse(b"d4:porti01e2:ip1:xe"))]
    [8, 11]
    """

    def __init__(self, fields: list[Field] | tuple[Field, ...], *, unknown: str = "keep",
                 rules: Rules = Rules(), check: Any = None, strict: bool = True,
                 whole: bool = False, protocol: str = PROTOCOL, max_size: int | None = None,
                 keep_empty_extra: bool = False, name: str = "",
                 syntax_protocol: str = PROTOCOL) -> None:
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown-key policy {unknown!r} is not one of {UNKNOWN_POLICIES}")
        BencodedConstruct.__init__(self, strict, whole=whole, protocol=protocol,
                                   syntax_protocol=syntax_protocol)
        self.fields = tuple(fields)
        self.unknown = unknown
        self.rules = rules
        if check is not None:
            self.check = check  # type: ignore[method-assign]
        #: Whether there are cross-field rules to run (a ``check`` given or overridden).
        self._checked = check is not None or type(self).check is not BencodedDict.check
        self.max_size = max_size
        self.keep_empty_extra = keep_empty_extra
        self.name = name or None
        self.what = "dictionary"
        self.by_key: dict[Any, Field] = {}
        self.by_name: dict[str, Field] = {}
        for f in self.fields:
            for key in (f.raw_key, *f.aliases):
                if key in self.by_key:
                    raise ValueError(f"key {key!r} declared twice")
                self.by_key[key] = f
            self.by_name[f.attr] = f
        self.required = tuple(f for f in self.fields if f.required)
        self.defaults = tuple(f for f in self.fields if f.default is not _ABSENT)
        self.has_aliases = any(f.aliases for f in self.fields)
        # what conform needs of each key, looked up once per item
        self._entries = {key: (f.attr, f.type, f.type.needs_path, f.spec or rules.spec,
                               f.fatal or (f.required and rules.fatal_required))
                         for key, f in self.by_key.items()}
        self._required = tuple((f.attr, f.raw_key, f.spec or rules.spec) for f in self.required)
        self._defaults = tuple((f.attr, f.default) for f in self.defaults)
        self._by_name = {f.attr: (f.raw_key, f.type, isinstance(f.type, BencodedDict))
                         for f in self.fields}

    needs_path = True

    @property
    def may_fail(self) -> bool:  # type: ignore[override]
        """Whether a lenient decode of a dictionary may raise (a fatal or failing field, a
        fatal missing key) rather than report; a ``check`` is not looked into (it reports
        with ``cx.report``, which never raises when lenient)."""
        return self.rules.fatal_required or any(f.fatal or f.type.may_fail
                                                for f in self.fields)

    def lenient(self) -> BencodedDict:
        """The same declaration, lenient (for dissection)."""
        twin = type(self)(self.fields, unknown=self.unknown, rules=self.rules,
                            check=self.__dict__.get("check"), strict=False, whole=self.whole,
                            protocol=self.protocol, max_size=self.max_size,
                            keep_empty_extra=self.keep_empty_extra, name=self.name or "",
                            syntax_protocol=self.syntax_protocol)
        return twin

    # -- parsing -----------------------------------------------------------------------------

    def _parse(self, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        raw, data, start, deviations, first = self._decode_bytes(stream, context, path)
        cx = Context(data, protocol=self.protocol, deviations=deviations, base=start)
        try:
            if type(raw) is not dict:
                raise cx.fail(f"must be a dictionary, not {type_name(raw)}", ())
            value = self.conform(raw, cx, ())
        except ParseError as e:
            prefix = clean_path(path)
            if prefix:
                raise e.relocated(path_prefix=prefix) from None
            raise
        return _carrying(value, deviations, first)

    def parse_bytes(self, data: bytes, deviations: list[Deviation] | None = None) -> Any:
        """Parse a whole input without construct's stream machinery (the same decoder and the
        same checks as ``parse``, so the same value and errors); None when ``data`` is not
        ``bytes`` (the generic parser then reports it). Schemas use it as their fast path.

        >>> BencodedDict([Field("a", Integer())]).parse_bytes(b"d1:ai1ee")
        Container(a=1)
        """
        if type(data) is not bytes:
            return None
        if not self.strict and deviations is None:
            deviations = []
        first = len(deviations) if deviations is not None else 0
        raw, _ = self._decode_data(data, 0, "", None if self.strict else deviations)
        return self.parse_decoded(data, raw, deviations, first)

    def parse_decoded(self, data: bytes, raw: Any, deviations: list[Deviation] | None,
                      first: int = 0, top_spans: Mapping[bytes, tuple[int, int]] | None = None,
                      *, canonical: bool = False) -> Any:
        """The second half of :meth:`parse_bytes`: ``raw``, the bencoded value ``data``
        decodes to (with the decoder's ``deviations`` from ``first`` on), checked against
        the declaration. ``top_spans``: where the values of the top-level dictionary lie, if
        the decode recorded them (offsets of deviations are then found without a scan);
        ``canonical``: ``data`` is the canonical encoding of ``raw`` (offsets inside the
        values are then measured from ``raw``)."""
        cx = Context(data, protocol=self.protocol, deviations=deviations if not self.strict
                     else None, top_spans=top_spans,
                     top_values=raw if canonical and top_spans is not None else None)
        if type(raw) is not dict:
            raise cx.fail(f"must be a dictionary, not {type_name(raw)}", ())
        return _carrying(self.conform(raw, cx, ()), cx.deviations, first)

    def decode(self, raw: Any, cx: Context, path: tuple[PathStep, ...]) -> Container:
        if type(raw) is not dict:
            raise Mismatch(f"must be a dictionary, not {type_name(raw)}")
        return self.conform(raw, cx, path)

    def conform(self, raw: dict, cx: Context, path: tuple[PathStep, ...]) -> Container:
        """The Container of a decoded dictionary, checked against the declaration."""
        out = Container()
        extra: dict | None = None
        unconverted: list | None = None
        entries = self._entries
        unknown = self.unknown
        for key, value in raw.items():
            entry = entries.get(key)
            if entry is None:
                if unknown == "keep":
                    out[_text_key(key)] = value
                    continue
                if extra is None:
                    extra = {}
                extra[key] = value
                self.report_unknown(cx, path, key)
                continue
            name, kind, needs_path, spec, fatal = entry
            if self.has_aliases and name in out:
                cx.report("bencode/dict/duplicate-key",
                          f"{_step_text(key)!r} repeats {name!r}", (*path, key), spec)
            try:
                out[name] = kind.decode(value, cx, (*path, key) if needs_path else path)
            except Mismatch as e:
                where = (*path, key, *e.steps)
                reason = f"{_step_text(key) if type(key) is bytes else key} {e}"
                if fatal or e.fatal:
                    raise cx.fail(reason, where) from None
                cx.report(self.rules.malformed, reason, where, spec)
                if unknown == "keep":
                    out[name] = value  # kept as sent: the deviation says it has the wrong type
                    if unconverted is None:
                        unconverted = []
                    unconverted.append(name)
                else:
                    if extra is None:
                        extra = {}
                    extra[key] = value
        for name, key, spec in self._required:
            if name not in out or (unconverted is not None and name in unconverted):
                where = (*path, key) if self.rules.missing_at == "key" else path
                reason = f"missing required key {_step_text(key)!r}"
                if self.rules.fatal_required:
                    raise cx.fail(reason, where)
                cx.report(self.rules.missing, reason, where, spec)
        for name, default in self._defaults:
            if name not in out:
                out[name] = default
        if extra is not None or (self.keep_empty_extra and unknown != "keep"):
            out["extra"] = extra or {}
        if self._checked:
            # cross-field rules; the check may also give the value its final shape
            shaped = self.check(out, cx, path)
            if shaped is not None:
                return shaped
        return out

    def check(self, value: Container, cx: Context, path: tuple[PathStep, ...]
              ) -> Container | None:
        """Cross-field rules a declaration cannot say (report them with ``cx.report``); may
        return the value in its final shape. Pass ``check=`` or override."""
        return None

    def report_unknown(self, cx: Context, path: tuple[PathStep, ...], key: Any) -> None:
        label = _step_text(key) if type(key) is bytes else str(key)
        if self.unknown == "reject":
            cx.report(self.rules.unknown or "bencode/dict/unknown-key",
                      f"unknown key {label!r}", (*path, key), self.rules.spec)
        elif self.rules.unknown is not None and cx.deviations is not None:
            cx.report(self.rules.unknown, f"unknown key {label!r} kept in extra", (*path, key),
                      self.rules.spec, self.rules.unknown_level)

    # -- building ----------------------------------------------------------------------------

    def encode(self, value: Any, path: str = "", skip: tuple[str, ...] = ()) -> dict:
        """The bencodable dictionary (``bytes`` keys) of a Container or mapping; names in
        ``skip`` are left out (the caller builds them)."""
        if type(value) is not Container and not isinstance(value, Mapping):
            raise BuildError(f"must be a mapping, not {type_name(value)}",
                             protocol=self.protocol, path=path)
        out: dict[Any, Any] = {}
        by_name = self._by_name
        keep = self.unknown == "keep"
        as_sent = not self.strict  # a lenient value may hold items kept as sent
        for name, item in value.items():
            if item is None or name in skip:
                continue
            entry = by_name.get(name)
            if entry is None:
                if (isinstance(name, str) and name.startswith("_")) or (
                        name == "extra" and not keep):
                    continue
                if not keep:
                    raise BuildError(f"unknown key {name!r}: put unknown keys in 'extra' as "
                                     "bytes", protocol=self.protocol, path=_where(path, name))
                out[name.encode("utf-8", "surrogateescape") if isinstance(name, str)
                    else name] = item
                continue
            key, kind, nested = entry
            try:
                out[key] = kind.encode(item, _where(path, name)) if nested else kind.encode(item)
            except ENCODE_ERRORS as e:
                if as_sent and _bencodable(item):
                    out[key] = item  # an item of the wrong type a lenient parse kept as sent
                    continue
                if isinstance(e, BuildError):
                    raise
                raise BuildError(f"{name}: {e}", protocol=self.protocol,
                                 path=_where(path, name)) from None
        if not keep:
            for key, item in (value.get("extra") or {}).items():
                key = key.encode() if isinstance(key, str) else key
                if key in out:
                    raise BuildError(f"extra key {_step_text(key)!r} duplicates a known key",
                                     protocol=self.protocol, path=path)
                out[key] = item
        return out

    def bencoded(self, value: Any) -> bytes | None:
        try:
            return encode(self.encode(value))
        except ENCODE_ERRORS:
            return None

    def _build(self, obj: Any, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        data = encode(self.encode(obj))
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _emitdecompiled(self) -> str:
        return "BencodedDict" if self.strict else "BencodedDictLenient"
