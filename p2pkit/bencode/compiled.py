"""Canonical bencoded dictionaries decoded by a compiled decoder (BEP 3 §bencoding), in front
of :func:`p2pkit.bencode.canonical.decode_canonical` when fastbencode's Rust extension is
installed.

BEP 3: "Strings are length-prefixed base ten followed by a colon and the string. [...]
Integers are represented by an 'i' followed by the number in base 10 followed by an 'e'. [...]
Keys must be strings and appear in sorted order (sorted as raw strings, not alphanumerics)."

fastbencode's ``bdecode`` (``fastbencode._bencode_rs``) is strict: it refuses leading zeros,
``-0``, keys out of order or repeated, keys that are not strings, truncation and bytes after
the value, as :func:`~p2pkit.bencode.canonical.decode_canonical` does. It accepts three things
that decoder gives to the lenient one, so an answer is taken only when the bytes cannot hold
them, checked on the bytes themselves (cheap, and conservative: a match inside a string only
sends the datagram the slow way):

* a negative integer (``i-``);
* an integer longer than ``MAX_INTEGER_DIGITS`` digits (``i``
  followed by more digits than that);
* nesting as deep as ``MAX_DEPTH`` (fewer ``d`` and ``l`` bytes
  than that, or fewer than twice as many bytes in all, cannot nest so deep).

Anything else, and anything the compiled decoder refuses, goes to
:func:`~p2pkit.bencode.canonical.decode_canonical`, so the answer is always the one that
decoder gives (the tests compare the two on every bencoded datagram of the committed captures
and on hypothesis-generated and mutated bytes, with and without the extension). The compiled
decoder records no spans: :func:`value_spans` works them out from the value when they are read
(canonical bencoding is the encoding of its value, so each top-level value's length is the
length of its encoding).

>>> value, spans = decode_canonical_dict(b"d1:rd2:id2:ab1:pi6881ee1:t2:aa1:y1:re")
>>> value
{b'r': {b'id': b'ab', b'p': 6881}, b't': b'aa', b'y': b'r'}
>>> value_spans(value, 37)
{b'r': (4, 23), b't': (26, 30), b'y': (33, 36)}
>>> decode_canonical_dict(b"d1:y1:r1:t2:aae") is None  # keys out of order: a deviation
True
"""

from __future__ import annotations

import re
from typing import Any

from p2pkit.bencode.canonical import decode_canonical
from p2pkit.bencode.codec import MAX_DEPTH, MAX_INTEGER_DIGITS, encode

try:  # the compiled decoder only: fastbencode's pure-Python fallback is no faster than ours
    from fastbencode._bencode_rs import bdecode as _bdecode
    from fastbencode._bencode_rs import bencode as _bencode
except ImportError:  # pragma: no cover - depends on the installation
    _bdecode = _bencode = None

__all__ = ["COMPILED", "decode_canonical_dict", "decode_compiled", "value_spans"]

#: Whether fastbencode's compiled decoder is installed (else every call is pure Python).
COMPILED = _bdecode is not None

#: Every byte that is a digit read as ``0``, ``i`` kept, anything else ``x``: a string in which
#: an integer too long to take is a plain substring search.
_DIGIT_CLASSES = bytes(
    0x30 if 0x30 <= b <= 0x39 else b if b == 0x69 else 0x78 for b in range(256))
_TOO_LONG_INTEGER = b"i" + b"0" * (MAX_INTEGER_DIGITS + 1)
#: ``i-`` or an ``i`` followed by more than ``MAX_INTEGER_DIGITS`` digits, in one scan: what
#: ``b"i-" in data`` and ``_TOO_LONG_INTEGER in data.translate(_DIGIT_CLASSES)`` find.
_NEGATIVE_OR_TOO_LONG = re.compile(rb"i(?:-|[0-9]{%d})" % (MAX_INTEGER_DIGITS + 1)).search
#: Bytes of the length prefix (``"20:"``) of a string of each length up to a datagram's.
_MAX_TABLED = 4096
_PREFIX_SIZE = tuple(len(str(n)) + 1 for n in range(_MAX_TABLED + 1))


#: Shorter inputs cannot nest as deep as ``MAX_DEPTH`` (a level takes two bytes, its
#: ``d``/``l`` and its ``e``): the count of ``d`` and ``l`` is skipped.
_SHALLOW = 2 * MAX_DEPTH
_REFUSED = (ValueError, TypeError, RecursionError, OverflowError)


def decode_compiled(data: bytes) -> dict | None:
    """The dictionary fastbencode's compiled decoder gives for ``data`` when its answer may be
    taken (it is then :func:`~p2pkit.bencode.canonical.decode_canonical`'s value); None when
    the extension is missing, the bytes may hold what it accepts and that decoder does not,
    or it refused them: ask :func:`~p2pkit.bencode.canonical.decode_canonical`."""
    if _bdecode is not None and data[:1] == b"d" and _NEGATIVE_OR_TOO_LONG(data) is None and (
            len(data) <= _SHALLOW or len(data) - len(data.translate(None, b"dl")) <= MAX_DEPTH):
        try:
            value = _bdecode(data)
        except _REFUSED:
            return None
        if type(value) is dict:
            return value
    return None


def decode_canonical_dict(data: bytes) -> tuple[dict, dict[bytes, tuple[int, int]] | None] | None:
    """``(dictionary, spans or None)`` of a canonical bencoded dictionary that fills ``data``
    exactly, as :func:`~p2pkit.bencode.canonical.decode_canonical` gives it; None when the
    lenient decoder would report anything. The spans are None when the compiled decoder
    answered (:func:`value_spans` gives them)."""
    value = decode_compiled(data)
    if value is not None:
        return value, None
    return decode_canonical(data)


def value_spans(value: dict[bytes, Any], size: int) -> dict[bytes, tuple[int, int]]:
    """The ``(start, end)`` span of each top-level value in the canonical encoding of
    ``value``, ``size`` bytes long (the spans
    :func:`~p2pkit.bencode.canonical.decode_canonical` records, for a dictionary decoded from
    canonical bencoding).

    Strings and integers are measured; the values run on without gaps, so one container
    (a KRPC message has one: ``a``, ``r`` or ``e``) lies between the values before it,
    measured from the start, and those after it, measured from the end; any other container
    is encoded to be measured.
    """
    prefix = _PREFIX_SIZE
    items = list(value.items())
    spans: list[tuple[bytes, tuple[int, int]]] = []
    pos = 1
    count = len(items)
    first = 0
    while first < count:  # from the start up to the first container
        key, item = items[first]
        n = len(key)
        pos += n + (prefix[n] if n <= _MAX_TABLED else len(str(n)) + 1)
        kind = type(item)
        if kind is bytes:
            n = len(item)
            end = pos + n + (prefix[n] if n <= _MAX_TABLED else len(str(n)) + 1)
        elif kind is int:
            end = pos + len(str(item)) + 2
        else:
            break
        spans.append((key, (pos, end)))
        pos = end
        first += 1
    else:
        return dict(spans)
    tail = []
    end = size - 1  # before the dictionary's "e"
    encode_size = _bencode if _bencode is not None else encode
    for key, item in reversed(items[first + 1:]):  # from the end back to it
        kind = type(item)
        if kind is bytes:
            n = len(item)
            length = n + (prefix[n] if n <= _MAX_TABLED else len(str(n)) + 1)
        elif kind is int:
            length = len(str(item)) + 2
        else:
            length = len(encode_size(item))
        tail.append((key, (end - length, end)))
        n = len(key)
        end -= length + n + (prefix[n] if n <= _MAX_TABLED else len(str(n)) + 1)
    spans.append((items[first][0], (pos, end)))
    spans += reversed(tail)
    return dict(spans)
