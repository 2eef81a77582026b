"""Bencoded values: decode and encode (BEP 3 §bencoding), strict and lenient.

BEP 3: "Strings are length-prefixed base ten followed by a colon and the string."
"Integers are represented by an 'i' followed by the number in base 10 followed by an 'e'. [...]
i-0e is invalid. All encodings with a leading zero, such as i03e, are invalid, other than i0e."
"Lists are encoded as an 'l' followed by their elements (also bencoded) followed by an 'e'."
"Dictionaries are encoded as a 'd' followed by a list of alternating keys and their corresponding
values followed by an 'e'. [...] Keys must be strings and appear in sorted order (sorted as raw
strings, not alphanumerics)."

Decoded values are plain Python: ``bytes``, ``int``, ``list`` and ``dict`` with ``bytes`` keys
(insertion order = wire order). Two modes: **strict** (inside peers: the first departure from
the canonical form raises :class:`~p2pkit.errors.ParseError` with its byte offset) and
**lenient** (dissection: :func:`decode_lenient` accepts what real clients send and returns the
list of :class:`~p2pkit.deviations.Deviation` it saw).

>>> decode(b"d3:bar4:spam3:fooi42ee")
{b'bar': b'spam', b'foo': 42}
>>> encode({"foo": 42, "bar": b"spam"})
b'd3:bar4:spam3:fooi42ee'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, LimitExceeded, ParseError

__all__ = [
    "BencodedValue",
    "DecodeResult",
    "MAX_DEPTH",
    "MAX_INTEGER_DIGITS",
    "MAX_LENGTH_DIGITS",
    "decode",
    "decode_lenient",
    "decode_prefix",
    "encode",
    "top_level_spans",
]

BencodedValue: TypeAlias = "bytes | int | list[BencodedValue] | dict[bytes, BencodedValue]"

#: Deepest nesting of lists/dicts accepted (a metainfo file tree is rarely deeper than 20).
MAX_DEPTH = 100
#: Longest integer accepted, in digits (a 64-bit value has 20; BEP 3 sets no bound).
MAX_INTEGER_DIGITS = 64
#: Longest string length prefix accepted, in digits (10**18 bytes is far beyond any input).
MAX_LENGTH_DIGITS = 18

PROTOCOL = "bencode"
SPEC = "BEP 3 §bencoding"
_INTEGER = re.compile(rb"-?[0-9]+\Z")
_DIGITS = b"0123456789"


@dataclass
class DecodeResult:
    """A lenient decode: the value and every deviation from the canonical form."""

    value: Any
    deviations: list[Deviation] = field(default_factory=list)
    #: Offset just past the value (``len(data)`` unless trailing bytes were reported).
    end: int = 0
    #: With ``spans=True``: the ``(start, end)`` bytes of each top-level dictionary value.
    spans: dict[bytes, tuple[int, int]] = field(default_factory=dict)


class _Decoder:
    """One decode: the input, the mode and the deviations found so far."""

    __slots__ = ("data", "strict", "deviations", "spans")

    def __init__(self, data: bytes, strict: bool) -> None:
        self.data = data
        self.strict = strict
        self.deviations: list[Deviation] = []
        #: When a dict, the top-level dictionary's value spans are recorded here.
        self.spans: dict[bytes, tuple[int, int]] | None = None

    def fail(self, reason: str, offset: int, path: FieldPath, limit: bool = False
             ) -> ParseError:
        cls = LimitExceeded if limit else ParseError
        return cls(reason, protocol=PROTOCOL, path=_path_text(path), offset=offset)

    def deviate(self, rule: str, message: str, offset: int, path: FieldPath) -> None:
        if self.strict:
            raise ParseError(message, protocol=PROTOCOL, path=_path_text(path), offset=offset)
        self.deviations.append(Deviation(offset=offset, rule=rule, message=message, spec=SPEC))

    def value(self, pos: int, depth: int, path: FieldPath) -> tuple[Any, int]:
        data = self.data
        if pos >= len(data):
            raise self.fail("truncated: expected a value", pos, path)
        c = data[pos]
        if 0x31 <= c <= 0x39:  # fast path: a canonical string (no leading zero)
            colon = data.find(b":", pos, pos + MAX_LENGTH_DIGITS + 1)
            if colon > 0:
                digits = data[pos:colon]
                if digits.isdigit():
                    end = colon + 1 + int(digits)
                    if end <= len(data):
                        return data[colon + 1 : end], end
            return self.string(pos, path)
        if c == 0x69:  # i
            end = data.find(b"e", pos + 1, pos + MAX_INTEGER_DIGITS + 2)
            if end > 0:  # fast path: a canonical non-negative integer
                text = data[pos + 1 : end]
                if text.isdigit() and (text[0] != 0x30 or end == pos + 2):
                    return int(text), end + 1
            return self.integer(pos, path)
        if c == 0x30:
            return self.string(pos, path)
        if c == 0x6C:  # l
            if depth >= MAX_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_DEPTH}", pos, path, limit=True)
            items = []
            pos += 1
            i = 0
            while True:
                if pos >= len(data):
                    raise self.fail("truncated list: missing 'e'", pos, path)
                if data[pos] == 0x65:
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1, (path, i))
                items.append(item)
                i += 1
        if c == 0x64:  # d
            if depth >= MAX_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_DEPTH}", pos, path, limit=True)
            return self.dictionary(pos, depth, path)
        raise self.fail(f"unexpected byte {data[pos:pos + 1]!r}: not a bencoded value", pos, path)

    def integer(self, pos: int, path: FieldPath) -> tuple[int, int]:
        data = self.data
        end = data.find(b"e", pos + 1, pos + MAX_INTEGER_DIGITS + 3)
        if end < 0:
            if data.find(b"e", pos + 1) < 0 and len(data) - pos <= MAX_INTEGER_DIGITS + 2:
                raise self.fail("truncated integer: missing 'e'", len(data), path)
            raise self.fail(
                f"integer longer than {MAX_INTEGER_DIGITS} digits", pos, path, limit=True
            )
        text = data[pos + 1 : end]
        if len(text) - text.startswith(b"-") > MAX_INTEGER_DIGITS:
            raise self.fail(
                f"integer longer than {MAX_INTEGER_DIGITS} digits", pos, path, limit=True
            )
        if not _INTEGER.match(text):
            raise self.fail(f"malformed integer {text[:24]!r}", pos + 1, path)
        if text == b"-0":
            self.deviate("bencode/integer/negative-zero", "i-0e is invalid", pos + 1, path)
        elif (text[0] == 0x30 and len(text) > 1) or text.startswith(b"-0"):
            self.deviate(
                "bencode/integer/leading-zero", "integer has a leading zero", pos + 1, path
            )
        return int(text), end + 1

    def string(self, pos: int, path: FieldPath) -> tuple[bytes, int]:
        data = self.data
        colon = data.find(b":", pos, pos + MAX_LENGTH_DIGITS + 1)
        if colon < 0:
            if len(data) - pos <= MAX_LENGTH_DIGITS:
                raise self.fail("truncated string length: missing ':'", len(data), path)
            raise self.fail("string length prefix too long", pos, path, limit=True)
        digits = data[pos:colon]
        if not digits.isdigit():
            raise self.fail(f"malformed string length {digits!r}", pos, path)
        if digits[0] == 0x30 and len(digits) > 1:
            self.deviate(
                "bencode/string/leading-zero", "string length has a leading zero", pos, path
            )
        n = int(digits)
        start = colon + 1
        if n > len(data) - start:
            raise self.fail(
                f"string of {n} bytes runs past the end of the input ({len(data) - start} left)",
                pos,
                path,
            )
        return data[start : start + n], start + n

    def dictionary(self, pos: int, depth: int, path: FieldPath) -> tuple[dict, int]:
        data = self.data
        result: dict = {}
        pos += 1
        previous: bytes = b""
        unsorted = False
        spans = self.spans if depth == 0 else None
        while True:
            if pos >= len(data):
                raise self.fail("truncated dictionary: missing 'e'", pos, path)
            c = data[pos]
            if c == 0x65:
                return result, pos + 1
            key_at = pos
            if 0x31 <= c <= 0x39 and (colon := data.find(b":", pos, pos + 4)) > 0 \
                    and data[pos:colon].isdigit() \
                    and (end := colon + 1 + int(data[pos:colon])) <= len(data):
                # fast path: a canonical key of at most 999 bytes
                key = data[colon + 1:end]
                pos = end
                if result and (not key > previous or unsorted) and key in result:
                    self.deviate("bencode/dict/duplicate-key",
                                 f"duplicate key {_key_label(key)!r}", key_at, path)
                elif result and not key > previous:
                    unsorted = True
                    self.deviate("bencode/dict/unsorted-keys",
                                 f"key {_key_label(key)!r} is out of sorted order",
                                 key_at, path)
                previous = key
            elif 0x30 <= c <= 0x39:
                key, pos = self.string(pos, path)
                # BEP 3: keys sorted, hence unique. Once out of order, look for duplicates too.
                if result and (not key > previous or unsorted) and key in result:
                    self.deviate("bencode/dict/duplicate-key",
                                 f"duplicate key {_key_label(key)!r}", key_at, path)
                elif result and not key > previous:
                    unsorted = True
                    self.deviate("bencode/dict/unsorted-keys",
                                 f"key {_key_label(key)!r} is out of sorted order",
                                 key_at, path)
                previous = key
            elif c == 0x69 and not self.strict:
                key, pos = self.integer(pos, path)
                self.deviate("bencode/dict/non-string-key", "dictionary key is not a string",
                             key_at, path)
            else:
                raise self.fail("dictionary key is not a string", pos, path)
            sub = (path, key if isinstance(key, bytes) else str(key))
            if pos >= len(data):
                raise self.fail(f"truncated: key {_key_label(key)!r} has no value", pos, sub)
            start = pos
            result[key], pos = self.value(pos, depth + 1, sub)
            if spans is not None and isinstance(key, bytes):
                spans[key] = (start, pos)


#: A field path kept as a chain ``(parent, key or index)`` and turned into text only when an
#: error or deviation needs it (building text for every value would cost more than decoding).
FieldPath: TypeAlias = "tuple[FieldPath, bytes | str | int] | None"


def _path_text(path: FieldPath) -> str:
    """``(((None, b"info"), b"files"), 3)`` as ``info.files[3]``."""
    steps = []
    while path is not None:
        path, step = path
        steps.append(step)
    text = ""
    for step in reversed(steps):
        if isinstance(step, int):  # a list index
            text += f"[{step}]"
        else:  # a dictionary key (bytes, or the text of a lenient integer key)
            label = step if isinstance(step, str) else _key_label(step)
            text = f"{text}.{label}" if text else label
    return text


def _key_label(key: bytes | int) -> str:
    if isinstance(key, int):
        return str(key)
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        return key.hex()
    return text if text.isprintable() else key.hex()


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def decode_prefix(data: bytes, pos: int = 0, *, strict: bool = True) -> tuple[Any, int]:
    """Decode the one value that starts at ``pos``; return it and the offset just past it.

    Bytes after the value are not looked at (BEP 9's ``data`` message carries the raw piece
    right after its dictionary).

    >>> decode_prefix(b"d8:msg_typei1ee<raw piece>")
    ({b'msg_type': 1}, 15)
    """
    data = _as_bytes(data)
    dec = _Decoder(data, strict)
    return dec.value(pos, 0, None)


def decode(data: bytes, *, strict: bool = True) -> Any:
    """Decode exactly one bencoded value; in strict mode any non-canonical form is an error.

    >>> decode(b"li1ei2ee")
    [1, 2]
    """
    data = _as_bytes(data)
    dec = _Decoder(data, strict)
    value, end = dec.value(0, 0, None)
    if end != len(data):
        if strict:
            raise ParseError(f"{len(data) - end} bytes after the value", protocol=PROTOCOL,
                             offset=end)
    return value


def decode_lenient(data: bytes, *, strict: bool = False, spans: bool = False) -> DecodeResult:
    """Decode what real clients send, reporting each deviation from the canonical form.

    ``strict=True`` raises at the first deviation instead (the result then has none).
    ``spans=True`` also records where each top-level dictionary value lies, in the same pass
    (info-hashes are computed over the exact bytes of ``info``).

    >>> r = decode_lenient(b"d1:bi03e1:ai1ee", spans=True)
    >>> r.value
    {b'b': 3, b'a': 1}
    >>> [d.rule for d in r.deviations]
    ['bencode/integer/leading-zero', 'bencode/dict/unsorted-keys']
    >>> r.spans
    {b'b': (4, 8), b'a': (11, 14)}
    """
    data = _as_bytes(data)
    dec = _Decoder(data, strict=strict)
    if spans:
        dec.spans = {}
    value, end = dec.value(0, 0, None)
    if end != len(data):
        if strict:
            raise ParseError(f"{len(data) - end} bytes after the value", protocol=PROTOCOL,
                             offset=end)
        dec.deviations.append(Deviation(offset=end, rule="bencode/trailing-data", spec=SPEC,
                                        message=f"{len(data) - end} bytes after the value"))
    return DecodeResult(value=value, deviations=dec.deviations, end=end, spans=dec.spans or {})


def top_level_spans(data: bytes) -> dict[bytes, tuple[int, int]]:
    """For a bencoded dictionary, the ``(start, end)`` byte span of each top-level value.

    Info-hashes are computed over the exact bytes of the ``info`` value (BEP 3, BEP 52), which a
    re-encoding could change; this gives those bytes without a second parser.

    >>> data = b"d4:infod4:name1:xee"
    >>> start, end = top_level_spans(data)[b"info"]
    >>> data[start:end]
    b'd4:name1:xe'
    """
    data = _as_bytes(data)
    dec = _Decoder(data, strict=False)
    if not data.startswith(b"d"):
        raise ParseError("not a bencoded dictionary", protocol=PROTOCOL, offset=0)
    spans: dict[bytes, tuple[int, int]] = {}
    pos = 1
    while True:
        if pos >= len(data):
            raise ParseError("truncated dictionary: missing 'e'", protocol=PROTOCOL, offset=pos)
        if data[pos] == 0x65:
            return spans
        key_at = pos
        key, pos = dec.value(pos, 1, None)
        if not isinstance(key, bytes):
            raise ParseError("dictionary key is not a string", protocol=PROTOCOL, offset=key_at)
        _, end = dec.value(pos, 1, (None, key))
        spans[key] = (pos, end)
        pos = end


def encode(value: Any) -> bytes:
    """Encode canonically: dictionary keys sorted as raw bytes, ``str`` as UTF-8.

    Accepts ``bytes``/``bytearray``/``memoryview``, ``str``, ``int``, lists/tuples and mappings
    with ``bytes`` or ``str`` keys. Anything else raises :class:`~p2pkit.errors.BuildError`.

    >>> encode([b"spam", 42, {"b": 1, "a": [b""]}])
    b'l4:spami42ed1:al0:e1:bi1eee'
    """
    out: list[bytes] = []
    _encode(value, out, 0, None)
    return b"".join(out)


def _fail_build(reason: str, path: FieldPath) -> BuildError:
    return BuildError(reason, protocol=PROTOCOL, path=_path_text(path))


def _encode(value: Any, out: list[bytes], depth: int, path: FieldPath) -> None:
    append = out.append
    t = type(value)
    if t is bytes:
        append(b"%d:" % len(value))
        append(value)
    elif t is int:
        append(b"i%de" % value)
    elif t is str:
        raw = value.encode("utf-8", "surrogatepass")
        append(b"%d:%s" % (len(raw), raw))
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _fail_build(f"nesting deeper than {MAX_DEPTH}", path)
        append(b"l")
        for i, item in enumerate(value):
            _encode(item, out, depth + 1, (path, i))
        append(b"e")
    elif t is dict or isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise _fail_build(f"nesting deeper than {MAX_DEPTH}", path)
        items = []
        for k, v in value.items():
            if type(k) is str:
                k = k.encode("utf-8", "surrogatepass")
            elif type(k) is not bytes:
                if isinstance(k, str):
                    k = str(k).encode("utf-8", "surrogatepass")
                elif isinstance(k, bytes):
                    k = bytes(k)
                else:
                    raise _fail_build(f"dictionary key {k!r} is not a string", path)
            items.append((k, v))
        items.sort(key=_first)
        append(b"d")
        previous = None
        for k, v in items:
            if k == previous:
                raise _fail_build(f"duplicate key {_key_label(k)!r}", path)
            previous = k
            append(b"%d:%s" % (len(k), k))
            _encode(v, out, depth + 1, (path, k))
        append(b"e")
    elif isinstance(value, (list, tuple)):
        _encode(list(value), out, depth, path)
    elif isinstance(value, bool):
        raise _fail_build("booleans have no bencoding; use 0 or 1", path)
    elif isinstance(value, int):  # int subclasses (IntEnum, construct's EnumIntegerString …)
        append(b"i%de" % int(value))
    elif isinstance(value, str):
        raw = str(value).encode("utf-8", "surrogatepass")
        append(b"%d:%s" % (len(raw), raw))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        append(b"%d:%s" % (len(raw), raw))
    else:
        raise _fail_build(f"cannot bencode a {type(value).__name__}", path)


def _first(item: tuple[bytes, Any]) -> bytes:
    return item[0]
