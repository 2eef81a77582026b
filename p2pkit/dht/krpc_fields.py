"""A KRPC record's fields made straight from its decoded bencoding (BEP 5 §KRPC Protocol), by
a function generated once per message shape from the declarations of :mod:`p2pkit.dht.krpc`.

The generic way from a datagram to the fields ``dissect -V`` and JSON show goes through the
lenient message: ``BencodedDict.parse_decoded`` checks every key against
the declaration and builds ``Container`` objects (an ``ipaddress`` object per compact node),
then :func:`~p2pkit.capture.record.json_fields` converts each value to JSON and the
deviations are split into departures and information (``p2pkit.dht.dissect``). A DHT node's
datagrams come in few shapes (which keys at the top, which in ``a`` or ``r``), so for a shape
:func:`record_fields` generates once, from the declared value type of each key, a function
that checks each value as its type's ``decode`` does and writes its JSON value as the
conversion would, in the order the message would have it:

* strings, integers and text are checked and converted inline; compact nodes and peers go from
  the string to their JSON dictionaries in one ``iter_unpack`` pass with the layout's own
  struct format (:func:`compact_records`, from :class:`~p2pkit.schema.FixedLayout`), with no
  ``Container`` or address object in between; the rarer types are decoded by their own
  ``decode`` and converted by ``json_value``;
* a key no declaration knows is kept in ``extra`` and listed in ``unknown_keys`` with the
  message its dictionary's ``report_unknown`` gives and the
  offset the locator would find (measured from the values: canonical bencoding is the encoding
  of its value).

The function answers None for a message whose checks would report anything else (a value of
another type, a missing key, a key in the wrong kind of message, a query without its
arguments): ``p2pkit.dht.dissect`` then takes the generic way, so every deviation keeps one
source. Tests compare the two ways on every KRPC datagram of the committed captures and on
hypothesis-generated and mutated messages. At most :data:`MAX_SHAPES` shapes are compiled.

>>> from p2pkit.dht.deferred import DeferredMessage, deferred_message
>>> d = deferred_message(DeferredMessage,
...                      b"d1:rd2:id20:abcdefghij01234567891:pi6881ee1:t2:aa1:y1:re",
...                      {b"r": {b"id": b"abcdefghij0123456789", b"p": 6881}, b"t": b"aa",
...                       b"y": b"r"})
>>> fields = record_fields(d, "ping")
>>> fields["r"], fields["transaction_id"], fields["unknown_keys"][0]["offset"]
({'id': '6162636465666768696a30313233343536373839', 'extra': {'p': 6881}}, '6161', 35)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from construct import Container

from p2pkit.addresses import IPAddressAdapter
from p2pkit.bencode import Mismatch
from p2pkit.bencode import encode as encode_value
from p2pkit.bencode.schema import (
    BencodedDict,
    Choice,
    Integer,
    ListOf,
    Records,
    String,
    Text,
    Value,
)
from p2pkit.capture.record import BINARY_INLINE_LIMIT, _binary, _key, json_value
from p2pkit.dht import krpc
from p2pkit.schema import FixedLayout

__all__ = ["MAX_SHAPE_KEYS", "MAX_SHAPES", "compact_records", "record_fields"]

#: Message shapes compiled at most (past that, every new shape takes the generic way).
MAX_SHAPES = 512
#: A shape with more keys than this (top level and body together) is not compiled.
MAX_SHAPE_KEYS = 48

_LIMIT = BINARY_INLINE_LIMIT
#: What a converter of a value returns when the value does not have its declared type.
_MISMATCH: Any = object()
_INTEGER_CODES = frozenset("bBhHiIlLqQ")


def _prefix_size(n: int) -> int:
    """Bytes of a string's length prefix (``"20:"``), BEP 3."""
    return len(str(n)) + 1


def _encoded_size(value: Any) -> int:
    """Bytes of the canonical encoding of a decoded value (what the locator measures)."""
    kind = type(value)
    if kind is bytes:
        return len(value) + _prefix_size(len(value))
    if kind is int:
        return len(str(value)) + 2
    return len(encode_value(value))


def compact_records(layout: FixedLayout, *, many: bool = True) -> Callable[[bytes], Any] | None:
    """A function turning a string of ``layout``'s records (or one record, ``many=False``)
    into the JSON values ``json_value`` gives for the Containers the
    layout's parse makes, with one ``iter_unpack`` (``unpack``) and no Container or address
    object; None when a field's conversion is not known here (a ``Const``, another adapter).
    The caller checks the length (a whole number of records).

    >>> from p2pkit.addresses import CompactPeer
    >>> compact_records(FixedLayout(CompactPeer))(bytes.fromhex("7f0000021ae10a0000011ae2"))
    [{'ip': '127.0.0.2', 'port': 6881}, {'ip': '10.0.0.1', 'port': 6882}]
    """
    if layout.consts:
        return None
    adapters = dict(layout.adapters)
    env: dict[str, Any] = {"ntoa": socket.inet_ntoa, "V6": ipaddress.IPv6Address,
                           "BIN": _binary, "iter_unpack": layout.struct.iter_unpack,
                           "unpack": layout.struct.unpack}
    values, items = [], []
    for i, (name, code) in enumerate(zip(layout.all_names, layout.codes)):
        x = f"v{i}"
        values.append(x)
        if name is None or name[:1] == "_":  # (hidden from JSON, as json_value hides it)
            continue
        adapter = adapters.get(i)
        kind = adapter.kind if type(adapter) is IPAddressAdapter else None
        if adapter is not None and code == "4s" and kind is ipaddress.IPv4Address:
            expr = f"ntoa({x})"  # json_value: inet_ntoa of the packed address
        elif adapter is not None and code == "16s" and kind is ipaddress.IPv6Address:
            expr = f"V6({x}).compressed"
        elif adapter is not None:
            return None
        elif code.endswith("s"):
            size = int(code[:-1])
            expr = f"{x}.hex()" if size <= _LIMIT else f"BIN({name!r}, {x}, ())"
        elif code in _INTEGER_CODES:
            expr = x
        else:
            return None
        items.append(f"{name!r}: {expr}")
    target = ", ".join(values) + ("," if len(values) == 1 else "")
    display = "{" + ", ".join(items) + "}"
    if many:
        source = f"def convert(data):\n    return [{display} for {target} in iter_unpack(data)]\n"
    else:
        source = f"def convert(data):\n    {target} = unpack(data)\n    return {display}\n"
    exec(compile(source, f"<compact records {layout.format} as JSON>", "exec"), env)
    return env["convert"]


def _decoded(kind: Value) -> Callable[[Any], Any]:
    """The JSON value of ``kind.decode`` (a type whose decode reads no context), or
    :data:`_MISMATCH`."""
    decode = kind.decode

    def convert(raw: Any) -> Any:
        try:
            return json_value(decode(raw, None, ()))  # type: ignore[arg-type]
        except Mismatch:
            return _MISMATCH

    return convert


def _plain(kind: Value) -> bool:
    """Whether ``kind.decode`` reads nothing of its context (only raises ``Mismatch``)."""
    t = type(kind)
    if t is String or t is Integer or t is Choice or t is Value:
        return True
    if t is Text:
        return kind.invalid in ("bytes", "surrogateescape")  # type: ignore[attr-defined]
    if t is ListOf:
        return kind.max_items is None and not kind.fatal and _plain(kind.item)  # type: ignore
    return t in (krpc._Hashes, krpc._Error)


#: The JSON of one compact peer by its size (BEP 5's 6 bytes, BEP 32's 18), from the layouts
#: ``krpc._Address`` and ``krpc._Peers`` decode with.
_PEER_JSON = {records.size: compact_records(FixedLayout(records.con), many=False)
              for records in (krpc._PEER, krpc._PEER6)}


def _address(raw: Any) -> Any:
    """BEP 42 ``ip`` (:class:`krpc._Address`), or one of BEP 5's ``values``, as JSON."""
    if type(raw) is bytes:
        convert = _PEER_JSON.get(len(raw))
        if convert is not None:
            return convert(raw)
    return _MISMATCH


def _peers(raw: Any) -> Any:
    """BEP 5 ``values`` (:class:`krpc._Peers`) as JSON."""
    if type(raw) is not list:
        return _MISMATCH
    out = []
    for item in raw:
        value = _address(item)
        if value is _MISMATCH:
            return _MISMATCH
        out.append(value)
    return out


class _Code:
    """How a generated function checks and converts one value of a declared type, ``@``
    standing for the value: inline (``check`` and ``json`` expressions, ``json`` may call
    ``helper`` as ``H``) or by ``function``, which returns :data:`_MISMATCH` when the value
    does not have the type; ``size``: its encoding's bytes when the type fixes them, else
    ``measure``, an expression measuring them."""

    __slots__ = ("check", "json", "helper", "function", "size", "measure")

    def __init__(self, *, check: str = "", json: str = "", helper: Any = None,
                 function: Any = None, size: int | None = None, measure: str = "SIZE(@)"
                 ) -> None:
        self.check, self.json, self.helper, self.function = check, json, helper, function
        self.size, self.measure = size, measure


_BYTES_SIZE = "len(@) + PS[len(@)]"
#: JSON of any decoded value (``json_value``), strings and integers inline.
_ANY_JSON = "(@ if type(@) is int else @.hex() if type(@) is bytes and len(@) <= LIMIT else jv(@))"


def _code(kind: Value) -> _Code | None:
    """The :class:`_Code` of a declared value type, or None when it is not known here."""
    t = type(kind)
    if t is String and kind.simple:  # type: ignore[attr-defined]
        length = kind.length  # type: ignore[attr-defined]
        if length is not None:
            return _Code(check=f"type(@) is bytes and len(@) == {length}",
                         json="@.hex()" if length <= _LIMIT else "BIN('', @, ())",
                         size=length + _prefix_size(length))
        return _Code(check="type(@) is bytes",
                     json="(@.hex() if len(@) <= LIMIT else BIN('', @, ()))",
                     measure=_BYTES_SIZE)
    if t is Integer:
        low, high = kind.low, kind.high  # type: ignore[attr-defined]
        check = "type(@) is int"
        if low is not None:
            check += f" and @ >= {low}"
        if high is not None:
            check += f" and @ <= {high}"
        return _Code(check=check, json="@", measure="len(str(@)) + 2")
    if t is Value:  # any value, kept as decoded
        return _Code(json=_ANY_JSON)
    if t is Text and _plain(kind):
        return _Code(check="type(@) is bytes", json="(@.decode() if @.isascii() else H(@))",
                     helper=_decoded(kind), measure=_BYTES_SIZE)
    if t is Records:
        convert = compact_records(FixedLayout(kind.con))  # type: ignore[attr-defined]
        if convert is None:
            return None
        return _Code(check=f"type(@) is bytes and not len(@) % {kind.size}",  # type: ignore
                     json="H(@)", helper=convert, measure=_BYTES_SIZE)
    if t is krpc._Address:
        return _Code(function=_address, measure=_BYTES_SIZE)
    if t is krpc._Peers:
        return _Code(function=_peers)
    if _plain(kind):
        return _Code(function=_decoded(kind))
    return None


#: The codes of the declared types met so far, by identity (a few dozen, made once).
_CODES: dict[int, tuple[Value, _Code | None]] = {}


def _code_of(kind: Value) -> _Code | None:
    found = _CODES.get(id(kind))
    if found is None or found[0] is not kind:
        found = _CODES[id(kind)] = (kind, _code(kind))
    return found[1]


class _Reports:
    """A stand-in context recording what a declaration reports (to take its messages)."""

    deviations: list = []  # (not None: lenient)

    def __init__(self) -> None:
        self.reports: list[tuple[str, str, tuple, str, str]] = []

    def report(self, rule: str, message: str, path: tuple, spec: str,
               level: str = "MUST") -> None:
        self.reports.append((rule, message, path, spec, level))


#: Rules of deviations that are information (listed in ``unknown_keys``).
_INFORMATION = frozenset({krpc.RULES.unknown})


def _unknown_report(schema: BencodedDict, path: tuple, key: bytes) -> tuple[str, str, str]:
    """``(message, level, spec)`` of the information ``schema`` reports for an unknown key,
    asked of the schema itself; _Unsupported when it reports a departure."""
    probe = _Reports()
    schema.report_unknown(probe, path, key)  # type: ignore[arg-type]
    if len(probe.reports) != 1 or probe.reports[0][0] not in _INFORMATION:
        raise _Unsupported
    _, message, _, spec, level = probe.reports[0]
    return message, level, spec


def _arguments_complete(method: str, attrs: list[str]) -> bool:
    """Whether a query ``method`` with the arguments ``attrs`` passes the query rules
    (:func:`krpc._check_arguments`, asked on a stand-in message)."""
    probe = _Reports()
    krpc._check_arguments(Container(method=method, a=Container.fromkeys(attrs)),
                          probe)  # type: ignore[arg-type]
    return not probe.reports


class _Unsupported(Exception):
    """A shape the generated functions leave to the generic way."""


#: The top-level keys a message's value gets after its body, in its order (``_message``).
_TAIL = krpc.MESSAGE_TAIL_KEYS
#: ``y`` -> the key of its body and the body's declaration.
_BODIES = {"q": (b"a", krpc.Arguments), "r": (b"r", krpc.ResponseValues)}
_ANY = Value()
for _schema in (krpc.Envelope, krpc.Arguments, krpc.ResponseValues):
    if _schema._defaults or _schema.has_aliases or _schema.unknown != "extra":
        raise TypeError(f"{_schema.name}: the generated KRPC fields expect no defaults, no "
                        "aliases and unknown keys kept in extra")
for _schema in (krpc.Arguments, krpc.ResponseValues):
    if _schema._checked:
        raise TypeError(f"{_schema.name}: the generated KRPC fields expect no check")


class _Writer:
    """The source of one shape's function: its lines, its checks, the names it uses."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"jv": json_value, "BIN": _binary, "LIMIT": _LIMIT,
                                    "MISS": _MISMATCH, "SIZE": _encoded_size,
                                    "PS": _PREFIX_SIZES}
        self.checks: list[str] = []
        self.lines: list[str] = []
        self.sizes: dict[tuple[bytes, ...], str] = {}
        self.count = 0

    def value(self, kind: Value, x: str, path: tuple[bytes, ...]) -> str:
        """The JSON expression of the value ``x`` (at ``path``) of a declared type; its check
        is recorded, and how to measure its encoding."""
        code = _code_of(kind)
        if code is None:
            raise _Unsupported
        n = self.count
        self.count += 1
        self.sizes[path] = str(code.size) if code.size is not None else (
            "(" + code.measure.replace("@", x) + ")")
        if code.function is not None:
            self.env[f"C{n}"] = code.function
            self.lines.append(f"    j{n} = C{n}({x})\n    if j{n} is MISS:\n"
                              "        return None\n")
            return f"j{n}"
        if code.check:
            self.checks.append("(" + code.check.replace("@", x) + ")")
        json = code.json
        if code.helper is not None:
            self.env[f"H{n}"] = code.helper
            json = json.replace("H(", f"H{n}(")
        return json.replace("@", x)


def _key_size(key: bytes) -> int:
    return len(key) + _prefix_size(len(key))


def _compile(shape: tuple[Any, ...]) -> Callable[[dict, Any], dict | None] | None:
    """The function of one shape ``(y, method, top keys, body keys)``, or None for a shape
    whose messages always report something (the generic way gives those)."""
    y, method, top, body_keys = shape
    body_key, body_schema = _BODIES.get(y, (None, None))
    if b"t" not in top or b"y" not in top or (y == "e" and b"e" not in top) or (
            body_key is not None and (body_key not in top or body_keys is None)):
        return None  # a required key missing
    w = _Writer()
    envelope = krpc.Envelope
    tops = [f"t{i}" for i in range(len(top))]
    w.lines.append(f"    {', '.join(tops)}, = raw.values()\n")
    values: dict[str, str] = {}  # the message's JSON items by name
    extra: list[str] = []  # unknown top-level keys, then an "r" outside a response
    infos: list[tuple[tuple[bytes, ...], str, str, str]] = []  # (path, message, level, spec)
    inner: list[tuple[tuple[bytes, ...], str, str, str]] = []  # the body's, reported after
    later: list[tuple[tuple[bytes, ...], str, str, str]] = []  # reported after the body
    body_json = later_extra = ""
    for i, key in enumerate(top):
        x = tops[i]
        if key == b"y" or (key == b"q" and y == "q"):
            w.sizes[(key,)] = f"SIZE({x})"
            continue  # read by the header (and the method is the paired one)
        if key == body_key:
            w.sizes[(key,)] = f"SIZE({x})"
            body_json = _body(w, body_schema, method, body_keys, x, key, inner)  # type: ignore
            continue
        if key == b"r" and y != "r":  # libtorrent repeats its "r" in errors: information
            json = w.value(_ANY, x, (key,))
            later.append(((key,), f"'r' in a {krpc._ROLE.get(y, 'message')} kept in extra",
                          krpc.RULES.unknown_level, krpc.SPEC))
            later_extra = f"{_key(key)!r}: {json}"
            continue
        if key in (b"a", b"q") or (key == b"e" and y != "e"):
            return None  # a departure ("a" outside a query, "e" outside an error …)
        field = envelope.by_key.get(key)
        if field is None:
            message, level, spec = _unknown_report(envelope, (), key)
            infos.append(((key,), message, level, spec))
            extra.append(f"{_key(key)!r}: {w.value(_ANY, x, (key,))}")
            continue
        values[field.attr] = w.value(field.type, x, (key,))
    if later:
        extra.append(later_extra)
    items = ["'method': (m if m is None or (type(m) is str and m.isascii()) else jv(m))"]
    if body_key is not None:
        items.append(f"{body_key.decode()!r}: {body_json}")
    for name in _TAIL:
        if name == "extra":
            if extra:
                items.append(f"'extra': {{{', '.join(extra)}}}")
        elif name in values:
            items.append(f"{name!r}: {values[name]}")
    items.append(f"'transaction_id': {values['t']}")
    lines = w.lines
    if w.checks:
        lines.append(f"    if not ({' and '.join(w.checks)}):\n        return None\n")
    lines.append(f"    fields = {{{', '.join(items)}}}\n")
    infos += inner + later  # (the envelope's keys are checked first, then the body)
    if infos:
        lines += _offsets(w, top, tops, body_key, body_keys, [path for path, *_ in infos])
        w.env["INFO"] = [(message, level, spec) for _, message, level, spec in infos]
        entries = ", ".join(
            f"{{'offset': o{n}, 'message': INFO[{n}][0], 'level': INFO[{n}][1], "
            f"'spec': INFO[{n}][2]}}" for n in range(len(infos)))
        lines.append(f"    fields['unknown_keys'] = [{entries}]\n")
    lines.append("    return fields\n")
    source = "def convert(raw, m):\n" + "".join(lines)
    exec(compile(source, f"<krpc fields {y} {top!r:.40} {body_keys!r:.60}>", "exec"), w.env)
    return w.env["convert"]


def _body(w: _Writer, schema: BencodedDict, method: str | None, keys: tuple[bytes, ...],
          x: str, body_key: bytes, infos: list) -> str:
    """The JSON display of an ``a``/``r`` dictionary with the keys ``keys`` (its values'
    checks recorded in ``w``)."""
    if any(name not in keys for _, name, _ in schema._required):
        raise _Unsupported  # a missing required key
    names = [f"b{i}" for i in range(len(keys))]
    w.lines.append(f"    {', '.join(names)}, = {x}.values()\n")
    items, extra, attrs = [], [], []
    for i, key in enumerate(keys):
        field = schema.by_key.get(key)
        if field is None:
            message, level, spec = _unknown_report(schema, (body_key,), key)
            infos.append(((body_key, key), message, level, spec))
            extra.append(f"{_key(key)!r}: {w.value(_ANY, names[i], (body_key, key))}")
        else:
            items.append(f"{field.attr!r}: {w.value(field.type, names[i], (body_key, key))}")
            attrs.append(field.attr)
    if method and not _arguments_complete(method, attrs):
        raise _Unsupported  # (a query method's rules apply only to the methods they name)
    if extra:
        items.append(f"'extra': {{{', '.join(extra)}}}")
    return "{" + ", ".join(items) + "}"


def _offsets(w: _Writer, top: tuple[bytes, ...], tops: list[str], body_key: bytes | None,
             body_keys: tuple[bytes, ...] | None, paths: list[tuple[bytes, ...]]) -> list[str]:
    """Lines setting ``o0``, ``o1`` … to the offset of the value at each of ``paths``, as the
    locator measures it (canonical bencoding: each item's bytes follow from its value)."""
    where = {path: n for n, path in enumerate(paths)}
    lines = ["    p = 1\n"]
    last_top = max(top.index(path[0]) for path in paths)
    for i, key in enumerate(top[:last_top + 1]):
        lines.append(f"    p += {_key_size(key)}\n")
        if (key,) in where:
            lines.append(f"    o{where[(key,)]} = p\n")
        inner = [k for k in body_keys or () if (key, k) in where] if key == body_key else []
        if inner:
            last = max(body_keys.index(k) for k in inner)  # type: ignore[union-attr]
            lines.append("    q = p + 1\n")
            for j, bkey in enumerate(body_keys[:last + 1]):  # type: ignore[index]
                lines.append(f"    q += {_key_size(bkey)}\n")
                if (key, bkey) in where:
                    lines.append(f"    o{where[(key, bkey)]} = q\n")
                if j < last:
                    lines.append(f"    q += {w.sizes[(key, bkey)]}\n")
        if i < last_top:
            lines.append(f"    p += {w.sizes[(key,)]}\n")
    return lines


_PREFIX_SIZES = tuple(_prefix_size(n) for n in range(krpc.MAX_MESSAGE_SIZE + 1))
_COMPILED: dict[tuple[Any, ...], Any] = {}
_ABSENT: Any = object()
_QUERY_ARGUMENTS = krpc.QUERY_ARGUMENTS


def record_fields(d: Any, method: Any) -> dict[str, Any] | None:
    """The record fields of a deferred datagram ``d`` (a
    :class:`~p2pkit.dht.deferred.DeferredMessage`: its decoded dictionary ``raw`` and header),
    ``method`` being the method its pairing gave, as the generic way gives them when the
    message reports nothing but unknown keys; None for any other message (the generic way
    then decides)."""
    raw = d.raw
    y = d.y
    if y == "q":
        q = d.method
        if type(q) is not str:
            return None
        body = raw.get(b"a")
        named = q if q in _QUERY_ARGUMENTS else ""
    elif y == "r":
        body = raw.get(b"r")
        named = None
    elif y == "e":
        body = named = None
    else:
        return None
    shape = (y, named, tuple(raw), tuple(body) if type(body) is dict else None)
    convert = _COMPILED.get(shape, _ABSENT)
    if convert is _ABSENT:
        convert = None
        if len(shape[2]) + len(shape[3] or ()) <= MAX_SHAPE_KEYS:
            try:
                convert = _compile(shape)
            except _Unsupported:
                convert = None
        if len(_COMPILED) < MAX_SHAPES:
            _COMPILED[shape] = convert
    if convert is None:
        return None
    return convert(raw, method)
