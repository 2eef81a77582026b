"""A fast decoder for canonical bencoded dictionaries (BEP 3 §bencoding), the fast path of
the lenient decoder (:class:`p2pkit.bencode.codec._Decoder`) for what real nodes mostly send.

BEP 3: "Strings are length-prefixed base ten followed by a colon and the string. [...]
Integers are represented by an 'i' followed by the number in base 10 followed by an 'e'. [...]
Keys must be strings and appear in sorted order (sorted as raw strings, not alphanumerics)."

:func:`decode_canonical` accepts only what the lenient decoder would decode *without a single
deviation or error*: a dictionary whose every string and integer is written canonically
(no leading zeros; non-negative integers), whose keys are strings in strictly increasing
order, nested less deep than the lenient decoder's ``MAX_DEPTH``, with nothing after it. For
such an input it returns the same value as the lenient decoder and the spans of the
top-level values; for anything else it returns None and the caller decodes with the lenient
decoder, which says what is wrong and where (so errors and deviations have one source).

Why a second decoder is no second definition of the format: it is the lenient decoder's
canonical branch with the calls inlined (strings and integers are read in the loop of the
dictionary or list that holds them, one call per container rather than per value), and the
tests compare the two on every KRPC datagram of the committed captures and on
hypothesis-generated values and bytes.

>>> decode_canonical(b"d1:rd2:id2:ab1:pi6881ee1:t2:aa1:y1:re")
({b'r': {b'id': b'ab', b'p': 6881}, b't': b'aa', b'y': b'r'}, {b'r': (4, 23), b't': (26, 30), b'y': (33, 36)})
>>> decode_canonical(b"d1:y1:r1:t2:aae") is None  # keys out of order: a deviation to report
True
"""

from __future__ import annotations

from typing import Any

from p2pkit.bencode.codec import MAX_DEPTH, MAX_INTEGER_DIGITS, MAX_LENGTH_DIGITS

__all__ = ["decode_canonical"]


class _NotCanonical(Exception):
    """Raised inside the decoder: the lenient decoder must decide."""



def _container(data: bytes, pos: int, depth: int,
               spans: dict[bytes, tuple[int, int]] | None = None) -> tuple[Any, int]:
    """The list or dictionary starting at ``pos`` (``l`` or ``d``), and the offset after it;
    ``spans`` (the top-level dictionary's): each value's ``(start, end)`` recorded in it."""
    if depth >= MAX_DEPTH:
        raise _NotCanonical
    find = data.find
    size = len(data)
    # (the limits as locals: each string and integer below reads one)
    length_digits, integer_digits = MAX_LENGTH_DIGITS + 1, MAX_INTEGER_DIGITS + 2
    if data[pos] == 0x64:  # d
        out: dict = {}
        pos += 1
        previous = None
        while True:
            c = data[pos]
            if c == 0x65:  # e
                return out, pos + 1
            # the key: a canonical string
            if not 0x31 <= c <= 0x39:
                if c == 0x30 and data[pos + 1] == 0x3A:
                    key = b""
                    pos += 2
                else:
                    raise _NotCanonical
            else:
                colon = find(b":", pos, pos + length_digits)
                if colon < 0:
                    raise _NotCanonical
                digits = data[pos:colon]
                if not digits.isdigit():
                    raise _NotCanonical
                pos = colon + 1 + int(digits)
                key = data[colon + 1:pos]
                if pos > size:  # runs past the end
                    raise _NotCanonical
            if previous is not None and not key > previous:
                raise _NotCanonical  # unsorted or repeated: a deviation
            previous = key
            # the value
            start = pos
            c = data[pos]
            if 0x31 <= c <= 0x39:
                colon = find(b":", pos, pos + length_digits)
                if colon < 0:
                    raise _NotCanonical
                digits = data[pos:colon]
                if not digits.isdigit():
                    raise _NotCanonical
                pos = colon + 1 + int(digits)
                value = data[colon + 1:pos]
                if pos > size:
                    raise _NotCanonical
                out[key] = value
            elif c == 0x69:  # i
                end = find(b"e", pos + 1, pos + integer_digits)
                text = data[pos + 1:end]
                if end < 0 or not text.isdigit() or (text[0] == 0x30 and end != pos + 2):
                    raise _NotCanonical
                out[key] = int(text)
                pos = end + 1
            elif c == 0x30:
                if data[pos + 1] != 0x3A:
                    raise _NotCanonical
                out[key] = b""
                pos += 2
            elif c == 0x64 or c == 0x6C:
                out[key], pos = _container(data, pos, depth + 1)
            else:
                raise _NotCanonical
            if spans is not None:
                spans[key] = (start, pos)
    # a list
    items: list = []
    pos += 1
    while True:
        c = data[pos]
        if 0x31 <= c <= 0x39:
            colon = find(b":", pos, pos + length_digits)
            if colon < 0:
                raise _NotCanonical
            digits = data[pos:colon]
            if not digits.isdigit():
                raise _NotCanonical
            pos = colon + 1 + int(digits)
            value = data[colon + 1:pos]
            if pos > size:
                raise _NotCanonical
            items.append(value)
        elif c == 0x65:
            return items, pos + 1
        elif c == 0x69:
            end = find(b"e", pos + 1, pos + integer_digits)
            text = data[pos + 1:end]
            if end < 0 or not text.isdigit() or (text[0] == 0x30 and end != pos + 2):
                raise _NotCanonical
            items.append(int(text))
            pos = end + 1
        elif c == 0x30:
            if data[pos + 1] != 0x3A:
                raise _NotCanonical
            items.append(b"")
            pos += 2
        elif c == 0x64 or c == 0x6C:
            value, pos = _container(data, pos, depth + 1)
            items.append(value)
        else:
            raise _NotCanonical


def decode_canonical(data: bytes) -> tuple[dict, dict[bytes, tuple[int, int]]] | None:
    """``(dictionary, spans of its values)`` of a canonical bencoded dictionary that fills
    ``data`` exactly; None when the lenient decoder would report anything (then decode with it).

    The value is the one :func:`p2pkit.bencode.decode_lenient` returns (``bytes`` keys, wire
    order) and the spans are its ``spans=True`` spans: ``(start, end)`` of each top-level value.
    """
    if data[:1] != b"d":
        return None
    spans: dict[bytes, tuple[int, int]] = {}
    try:
        out, pos = _container(data, 0, 0, spans)
    except (_NotCanonical, IndexError, RecursionError):
        return None
    if pos != len(data):
        return None  # bytes after the dictionary (a deviation)
    return out, spans
