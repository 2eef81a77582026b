"""Rendering dissected records: summary lines (like tshark's default), field trees (like
``tshark -V`` / scapy's ``show()``), JSON lines, and statistics.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from p2pkit import registry
from p2pkit.capture.json_lines import json_line
from p2pkit.capture.record import BinarySize, Record
from p2pkit.capture.spans import LazySpans
from p2pkit.capture.tree_shapes import ShapeTreeRenderer
from p2pkit.errors import ParseError
from p2pkit.undecoded import UNDECODED_SUMMARY

__all__ = ["Statistics", "TreeLine", "message_line", "record_tree", "render_jsonl", "render_summary",
           "render_tree", "tree_block", "tree_lines", "tree_text"]

def _summary_keys(protocol: str) -> tuple[str, ...] | None:
    """The fields the protocol's descriptor shows on summary lines (``summary``); None (every
    short field) when it names none or the protocol is not registered."""
    try:
        return registry.get(protocol).summary or None
    except ParseError:
        return None


def _short(value: Any) -> str:
    kind = type(value)
    if kind is int or (kind is str and value.isprintable()):  # most values: no other test
        text = value if kind is str else str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, dict) and _is_digest(value):
        return f"<{value['length']} bytes>"
    if kind is BinarySize:  # a digest not worked out: its length is what the line shows
        return f"<{value} bytes>"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text if len(text) <= 40 else text[:37] + "..."
    text = str(value)
    if isinstance(value, str) and not text.isprintable():  # NULs, control characters
        text = json.dumps(text, ensure_ascii=False)[1:-1]  # escaped as JSON and -V do
    return text if len(text) <= 40 else text[:37] + "..."


def render_summary(record: Record, start: float = 0.0) -> str:
    """One line per message: frame, time since ``start``, src → dst, protocol, message, key
    fields (tshark's default columns; which fields, the protocol's descriptor says).

    >>> r = Record(frame=7, time=101.5, transport="tcp", src="10.0.0.1:1", dst="10.0.0.2:2",
    ...            protocol="bittorrent", message="request",
    ...            fields={"index": 1, "begin": 0, "length": 16384})
    >>> render_summary(r, start=100.0)
    '    7   1.500000 10.0.0.1:1 → 10.0.0.2:2 bittorrent request index=1 begin=0 length=16384'
    """
    return (f"{record.frame:5d} {record.time - start:10.6f} {record.src} → {record.dst} "
            f"{message_line(record)}")


def message_line(record: Record) -> str:
    """The part of a summary line after the endpoints: protocol, message, key fields (scapy
    layers show it as their ``summary()``).

    >>> message_line(Record(frame=1, time=0.0, transport="udp", src="a:1", dst="b:2",
    ...                     protocol="bt-dht", message="query", fields={"method": "ping"}))
    'bt-dht query method=ping'
    """
    wanted = (UNDECODED_SUMMARY if record.message == "undecoded"
              else _summary_keys(record.protocol))
    if wanted is None:
        wanted = tuple(k for k, v in record.fields.items() if not isinstance(v, (dict, list)))
    keys = [f"{k}={_short(v)}" for k, v in record.summary_fields(wanted)]
    line = f"{record.protocol} {record.message}"
    return line + (" " + " ".join(keys) if keys else "")


class TreeLine(NamedTuple):
    """One line of a field tree (``dissect -V``): its text, indentation included, and the
    dotted path of the field it shows (``r.nodes.0.id``; ``""`` for a header line), so a
    reader (the conformance report) can mark the line of one field. (A named tuple: a tree
    of a large capture makes millions of them.)"""

    text: str
    path: str = ""

    def __str__(self) -> str:
        return self.text


def _is_digest(value: dict) -> bool:
    """A large binary summarised as ``{"length": n, "sha1": ...}``."""
    return len(value) == 2 and "sha1" in value and "length" in value


def tree_lines(value: Any, indent: int, name: str = "", path: str = "") -> list[TreeLine]:
    """The field tree of ``value`` (nested values indented four spaces a level, lists of
    scalars on one line, large binaries as length + SHA-1), each line with its path.

    >>> [str(t) for t in tree_lines({"id": "aa", "n": [1, 2]}, 1, "r", "r")]
    ['    r:', '        id: "aa"', '        n: [1, 2]']
    >>> [t.path for t in tree_lines({"id": "aa", "n": [1, 2]}, 1, "r", "r")]
    ['r', 'r.id', 'r.n']
    """
    pad = "    " * indent
    label = f"{name}: " if name else ""
    if isinstance(value, dict) and _is_digest(value):
        return [TreeLine(f"{pad}{label}<{value['length']} bytes, sha1 {value['sha1']}>", path)]
    if isinstance(value, dict):
        lines = [TreeLine(f"{pad}{name}:", path)] if name else []
        for k, v in value.items():
            lines += tree_lines(v, indent + (1 if name else 0), str(k),
                                f"{path}.{k}" if path else str(k))
        return lines or [TreeLine(f"{pad}{label}{{}}", path)]
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 8:
            return [TreeLine(f"{pad}{label}{json.dumps(value, ensure_ascii=False)}", path)]
        lines = [TreeLine(f"{pad}{name}: ({len(value)} items)", path)]
        for i, v in enumerate(value):
            lines += tree_lines(v, indent + 1, f"[{i}]", f"{path}.{i}" if path else str(i))
        return lines
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value
    return [TreeLine(f"{pad}{label}{shown}", path)]


def record_tree(record: Record) -> list[TreeLine]:
    """The message line of ``record`` (protocol, message, where it lies) and its fields, as
    ``dissect -V`` shows them under the frame line (:func:`render_tree`)."""
    where = (f"stream offset {record.offset}, {record.length} bytes"
             if record.offset is not None else f"{record.length} bytes")
    lines = [TreeLine(f"  {record.protocol} {record.message} ({where})")]
    base = record.offset or 0
    for key, value in record.fields.items():
        field_lines = tree_lines(value, 1, str(key), str(key))
        span = record.spans.get(str(key))
        if span is not None:  # tshark -V style: where the field lies in the stream/datagram
            first = field_lines[0]
            field_lines[0] = TreeLine(f"    [{base + span[0]}:{base + span[1]}] "
                                      + first.text.lstrip(), first.path)
        lines += field_lines
    for d in record.deviations:
        lines.append(TreeLine(f"    [deviation] {d}"))
    return lines


#: The frame line render_tree drew last (with its newline), with what it was drawn from
#: (frame, time, src, dst, transport, start, line): the records of a frame and direction share
#: it (a Gnutella segment carries a dozen descriptors). Endpoints are compared by identity (a
#: decoder gives the same strings to a direction's records, and a frame's time to its
#: records), the frame number by value (an ``int``).
_LAST_FRAME_LINE: list[tuple[Any, ...]] = [(None,) * 7]


def render_tree(record: Record, start: float = 0.0) -> str:
    """A field tree, like ``tshark -V``: the frame (its time since ``start``, the first
    frame's time, as on summary lines), the message with its stream offset and length, then
    every field (nested values indented, large binaries as length + SHA-1).

    >>> r = Record(frame=7, time=101.5, transport="udp", src="10.0.0.1:1", dst="10.0.0.2:2",
    ...            protocol="bt-dht", message="query", fields={"method": "ping"}, length=42)
    >>> print(render_tree(r, start=100.0))
    Frame 7: 1.500000 udp 10.0.0.1:1 → 10.0.0.2:2
      bt-dht query (42 bytes)
        method: "ping"
    """
    head, rest = _tree_parts(record, start, "")
    return head + rest


def tree_block(record: Record, start: float = 0.0) -> tuple[str, str]:
    """What ``dissect -V`` writes for ``record``, in two parts: the frame line (with its
    newline) and the rest of :func:`render_tree`'s text followed by a blank line. (Two
    writes: the frame line holds the non-ASCII arrow, the rest is mostly ASCII, which is
    joined and encoded byte for byte; one string would be widened and encoded as a whole.)

    >>> r = Record(frame=7, time=101.5, transport="udp", src="10.0.0.1:1", dst="10.0.0.2:2",
    ...            protocol="bt-dht", message="query", fields={"method": "ping"}, length=42)
    >>> "".join(tree_block(r, start=100.0)) == render_tree(r, start=100.0) + "\\n\\n"
    True
    """
    return _tree_parts(record, start, "\n\n")


def _tree_parts(record: Record, start: float, end: str) -> tuple[str, str]:
    """(the frame line and its newline, the rest of the tree followed by ``end``)."""
    # record_tree's text (no TreeLine per line: a large capture has millions), drawn by
    # renderers compiled per shape of the fields (tree_shapes); tests compare the two
    frame, time, transport, src, dst = (record.frame, record.time, record.transport,
                                        record.src, record.dst)
    last = _LAST_FRAME_LINE[0]  # the frame line of the record before, when it is this one's
    if (last[1] is time and last[0] == frame and type(frame) is int and last[2] is src
            and last[3] is dst and last[4] is transport and last[5] is start):
        head = last[6]
    else:
        head = f"Frame {frame}: {time - start:.6f} {transport} {src} → {dst}\n"
        if type(frame) is int:
            _LAST_FRAME_LINE[0] = (frame, time, src, dst, transport, start, head)
    offset = record.offset
    fields = record.fields
    spans = record.spans
    if type(spans) is LazySpans:  # worked out now (one lookup per field below)
        spans = spans.resolved()
    text = _SHAPES.fields_text(fields, spans, offset or 0)
    deviations = record.deviations
    if deviations:
        lines = [f"    [deviation] {d}" for d in deviations]
        text = "\n".join([text, *lines] if text else lines)
    if offset is not None:
        if text:
            return head, (f"  {record.protocol} {record.message} (stream offset {offset}, "
                          f"{record.length} bytes)\n{text}{end}")
        return head, (f"  {record.protocol} {record.message} (stream offset {offset}, "
                      f"{record.length} bytes){end}")
    if text:
        return head, f"  {record.protocol} {record.message} ({record.length} bytes)\n{text}{end}"
    return head, f"  {record.protocol} {record.message} ({record.length} bytes){end}"


def tree_text(value: Any, indent: int, name: str, out: list[str]) -> None:
    """The text of :func:`tree_lines` (without paths), appended to ``out``.

    >>> out = []; tree_text({"id": "aa", "n": [1, 2]}, 1, "r", out); out
    ['    r:', '        id: "aa"', '        n: [1, 2]']
    """
    pad = "    " * indent
    label = f"{name}: " if name else ""
    kind = type(value)
    if kind is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            out.append(f'{pad}{label}"{value}"')  # what json.dumps gives such text
        else:
            out.append(f"{pad}{label}{json.dumps(value, ensure_ascii=False)}")
        return
    if kind is int or kind is bool or kind is float or value is None:
        out.append(f"{pad}{label}{value}")
        return
    if isinstance(value, dict):
        if _is_digest(value):
            out.append(f"{pad}{label}<{value['length']} bytes, sha1 {value['sha1']}>")
            return
        if name:
            out.append(f"{pad}{name}:")
        elif not value:
            out.append(f"{pad}{{}}")
        inner = indent + (1 if name else 0)
        pad = "    " * inner
        for k, v in value.items():  # scalar leaves inline (most of a tree), as below
            k = str(k)
            t = type(v)
            if k and t is str and v.isascii() and v.isprintable() and '"' not in v \
                    and "\\" not in v:
                out.append(f'{pad}{k}: "{v}"')
            elif k and (t is int or v is None):
                out.append(f"{pad}{k}: {v}")
            else:
                tree_text(v, inner, k, out)
        return
    if isinstance(value, list):
        if len(value) <= 8 and all(not isinstance(v, (dict, list)) for v in value):
            out.append(f"{pad}{label}{json.dumps(value, ensure_ascii=False)}")
            return
        out.append(f"{pad}{name}: ({len(value)} items)")
        for i, v in enumerate(value):
            tree_text(v, indent + 1, f"[{i}]", out)
        return
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value
    out.append(f"{pad}{label}{shown}")


#: The field-tree renderers compiled per shape, agreeing with tree_text (render_tree uses them).
_SHAPES = ShapeTreeRenderer(tree_text)


def render_jsonl(record: Record) -> str:
    """One JSON object per line (the ``--format jsonl`` contract): ``json.dumps`` of
    ``record.to_json()``, compact, written by :func:`~p2pkit.capture.json_lines.json_line`."""
    return json_line(record)


class Statistics:
    """Counts for ``--stats``: messages per protocol and type, conversations, bytes."""

    def __init__(self) -> None:
        self.messages: Counter[tuple[str, str]] = Counter()
        self.bytes: Counter[tuple[str, str]] = Counter()
        self.conversations: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
        #: ``undecoded`` records and their bytes, per (protocol, reason).
        self.undecoded: Counter[tuple[str, str]] = Counter()
        self.undecoded_bytes: Counter[tuple[str, str]] = Counter()

    def add(self, record: Record) -> None:
        key = (record.protocol, record.message)
        self.messages[key] += 1
        self.bytes[key] += record.length
        if record.message == "undecoded":
            why = (record.protocol, str(record.fields.get("reason", "")))
            self.undecoded[why] += 1
            self.undecoded_bytes[why] += record.length
        a, b = sorted((record.src, record.dst))
        conv = self.conversations[(record.protocol, a, b)]
        conv["messages"] += 1
        conv["bytes"] += record.length

    def extend(self, records: Iterable[Record]) -> Statistics:
        for r in records:
            self.add(r)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "messages": [{"protocol": p, "message": m, "count": n, "bytes": self.bytes[(p, m)]}
                         for (p, m), n in sorted(self.messages.items())],
            "conversations": [{"protocol": p, "a": a, "b": b, **dict(c)}
                              for (p, a, b), c in sorted(self.conversations.items())],
            "undecoded": [{"protocol": p, "reason": r, "count": n,
                           "bytes": self.undecoded_bytes[(p, r)]}
                          for (p, r), n in sorted(self.undecoded.items())],
        }

    def render(self) -> str:
        lines = ["Messages", f"  {'protocol':<16} {'message':<22} {'count':>8} {'bytes':>12}"]
        for (p, m), n in sorted(self.messages.items()):
            lines.append(f"  {p:<16} {m:<22} {n:8d} {self.bytes[(p, m)]:12d}")
        lines += ["", "Conversations",
                  f"  {'protocol':<16} {'endpoints':<50} {'messages':>8} {'bytes':>12}"]
        for (p, a, b), c in sorted(self.conversations.items()):
            lines.append(f"  {p:<16} {a + ' ↔ ' + b:<50} {c['messages']:8d} {c['bytes']:12d}")
        if self.undecoded:
            lines += ["", "Undecoded", f"  {'protocol':<16} {'reason':<22} {'count':>8} {'bytes':>12}"]
            for (p, r), n in sorted(self.undecoded.items()):
                lines.append(f"  {p:<16} {r:<22} {n:8d} {self.undecoded_bytes[(p, r)]:12d}")
        return "\n".join(lines)
