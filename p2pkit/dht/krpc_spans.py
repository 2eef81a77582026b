"""Where each top-level value of a KRPC datagram lies, by the name its record gives it (the
``[start:end]`` of ``dissect -V``; BEP 5 §KRPC Protocol, BEP 3 §bencoding), by a function
generated once per sequence of top-level keys.

A datagram the dissector defers is canonical bencoding, so each value's bytes follow from the
value (:func:`~p2pkit.bencode.compiled.value_spans`: strings measured from the start, the one
container, ``a``, ``r`` or ``e``, between the values before it and those measured back from
the end). A node's datagrams have few key sequences (``a q t v y``, ``ip r t v y`` …), so for
each the function :func:`named_spans` uses is generated with the keys' encoded sizes and the
record's field names as constants, and measures only the strings; a datagram with an integer
or a second container at the top goes to ``value_spans`` (tests compare the two on every
KRPC datagram of the committed captures and on hypothesis messages). At most
:data:`MAX_KEY_SEQUENCES` sequences are compiled.

>>> raw = {b"r": {b"id": b"ab", b"p": 6881}, b"t": b"aa", b"y": b"r"}
>>> named_spans(raw, 37)
{'r': (4, 23), 'transaction_id': (26, 30), 'y': (33, 36)}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2pkit.bencode.compiled import value_spans
from p2pkit.dht.krpc import MAX_MESSAGE_SIZE

__all__ = ["FIELD_OF_KEY", "MAX_KEY_SEQUENCES", "MAX_SEQUENCE_KEYS", "field_name",
           "named_spans"]

#: KRPC keys shown under another name in the record (``q`` is the method).
FIELD_OF_KEY = {b"t": "transaction_id", b"q": "method"}
#: Key sequences compiled at most (past that, ``value_spans`` and a renaming).
MAX_KEY_SEQUENCES = 256
#: A sequence of more keys than this is not compiled.
MAX_SEQUENCE_KEYS = 16
#: Keys whose value may be the one container of a KRPC message.
_CONTAINERS = (b"a", b"r", b"e")
#: Bytes of a string's length prefix (``"20:"``), for every length a datagram can hold.
_PREFIX = tuple(len(str(n)) + 1 for n in range(MAX_MESSAGE_SIZE + 1))


def field_name(key: bytes) -> str:
    """The record field name of a top-level key."""
    return FIELD_OF_KEY.get(key) or key.decode("latin-1")


def _renamed(raw: dict, size: int) -> dict[str, tuple[int, int]]:
    """``value_spans`` by field name (any datagram)."""
    return {field_name(k): span for k, span in value_spans(raw, size).items()}


def _compile(keys: tuple[bytes, ...]) -> Callable[[dict, int], dict | None]:
    """The spans function of one key sequence (None from it: a value it does not measure)."""
    names = [f"v{i}" for i in range(len(keys))]
    middle = next((i for i, k in enumerate(keys) if k in _CONTAINERS), None)
    strings = [x for i, x in enumerate(names) if i != middle]
    lines = [f"    {', '.join(names)}, = raw.values()\n"]
    if strings:
        lines.append(f"    if not ({' and '.join(f'type({x}) is bytes' for x in strings)}):\n"
                     "        return None\n")
    spans: dict[int, str] = {}
    pos = "1"
    for i, key in enumerate(keys[:middle] if middle is not None else keys):
        lines.append(f"    s{i} = {pos} + {len(key) + _PREFIX[len(key)]}\n"
                     f"    e{i} = s{i} + len(v{i}) + P[len(v{i})]\n")
        spans[i] = f"(s{i}, e{i})"
        pos = f"e{i}"
    if middle is not None:
        end = "size - 1"
        for i in range(len(keys) - 1, middle, -1):
            key = keys[i]
            lines.append(f"    e{i} = {end}\n    s{i} = e{i} - len(v{i}) - P[len(v{i})]\n")
            spans[i] = f"(s{i}, e{i})"
            end = f"s{i} - {len(key) + _PREFIX[len(key)]}"
        key = keys[middle]
        spans[middle] = f"({pos} + {len(key) + _PREFIX[len(key)]}, {end})"
    items = ", ".join(f"{field_name(k)!r}: {spans[i]}" for i, k in enumerate(keys))
    lines.append(f"    return {{{items}}}\n")
    env: dict[str, Any] = {"P": _PREFIX}
    source = "def spans(raw, size):\n" + "".join(lines)
    exec(compile(source, f"<krpc spans {keys!r:.60}>", "exec"), env)
    return env["spans"]


_COMPILED: dict[tuple[bytes, ...], Callable[[dict, int], dict | None]] = {}


def named_spans(raw: dict, size: int) -> dict[str, tuple[int, int]]:
    """The ``(start, end)`` of each top-level value of ``raw``, a dictionary decoded from
    ``size`` bytes of canonical bencoding, by record field name (``t`` is
    ``transaction_id``, ``q`` ``method``), in the dictionary's order."""
    keys = tuple(raw)
    spans = _COMPILED.get(keys)
    if spans is None:
        if len(keys) > MAX_SEQUENCE_KEYS or len(_COMPILED) >= MAX_KEY_SEQUENCES or any(
                type(k) is not bytes or len(k) > MAX_MESSAGE_SIZE for k in keys):
            return _renamed(raw, size)
        spans = _COMPILED[keys] = _compile(keys)
    found = spans(raw, size)
    return _renamed(raw, size) if found is None else found
