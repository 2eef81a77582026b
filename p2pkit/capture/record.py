"""The dissector's output record: one decoded message, and how its fields become JSON.

One :class:`Record` per protocol message, the same object behind every output format
(summary line, field tree, JSON lines) and the Python API.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from construct import Container, ListContainer

from p2pkit.capture.json_shapes import ShapeJsonConverter
from p2pkit.deviations import Deviation

__all__ = ["BINARY_INLINE_LIMIT", "UNDECODED", "UNDECODED_REASONS", "BinarySize", "Record",
           "UndecodedRun", "json_fields", "json_mapping", "undecoded"]

#: Binary fields longer than this are summarised as ``{"length": n, "sha1": ...}``.
BINARY_INLINE_LIMIT = 64


@dataclass(slots=True)
class Record:
    """One dissected message, as the JSON-lines output shows it.

    ``protocol`` uses Wireshark's filter names where one exists (``bittorrent``, ``bt-dht``,
    ``bt-utp``, ``bt-tracker``, ``gnutella``) and ``bt-tracker-http`` for HTTP trackers;
    ``message`` is the spec's name in snake_case.
    """

    frame: int
    time: float
    transport: str
    src: str
    dst: str
    protocol: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    #: Stream offset of the message's first byte (TCP/uTP), or None for datagrams.
    offset: int | None = None
    length: int = 0
    deviations: list[Deviation] = field(default_factory=list)
    #: The decoded value before JSON conversion (Containers), for the field tree.
    value: Any = None
    #: Top-level field name -> (start, end) bytes, relative to the message's first byte.
    spans: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def summary_fields(self, keys: Iterable[str]) -> list[tuple[str, Any]]:
        """(name, value) of the fields named in ``keys`` that the record has, in the order of
        ``keys`` (what a summary line shows; :class:`~p2pkit.capture.lazy_record.LazyRecord`
        reads them without decoding the whole message)."""
        fields = self.fields
        return [(k, fields[k]) for k in keys if k in fields]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "frame": self.frame,
            "time": round(self.time, 6),
            "transport": self.transport,
            "src": self.src,
            "dst": self.dst,
            "protocol": self.protocol,
            "message": self.message,
            "fields": self.fields,
        }
        if self.deviations:
            doc["deviations"] = [
                {"offset": d.offset, "rule": d.rule, "message": d.message, "spec": d.spec,
                 "level": d.level}
                for d in self.deviations
            ]
        return doc


#: The message name of a record for bytes that were not decoded.
UNDECODED = "undecoded"
#: Why bytes were not decoded (``fields["reason"]`` of an ``undecoded`` record).
UNDECODED_REASONS = ("unknown protocol", "encrypted", "malformed", "truncated", "after a gap")


def undecoded(*, protocol: str, transport: str, src: str, dst: str, reason: str, length: int,
              frames: tuple[int, int, int], time: float, offset: int | None = None,
              at: int | None = None, detail: str = "", **extra: Any) -> Record:
    """A record for bytes that were not decoded, saying why: nothing disappears silently.

    ``protocol`` is the protocol the bytes were recognised as, or ``data`` (Wireshark's name
    for bytes no dissector took); ``reason`` one of :data:`UNDECODED_REASONS`; ``frames``
    (first, last, count) the frames that carried the bytes; ``at`` the stream offset (or the
    datagram offset) where decoding failed (``malformed``).

    >>> r = undecoded(protocol="data", transport="udp", src="a:1", dst="b:2",
    ...               reason="unknown protocol", length=12, frames=(4, 4, 1), time=0.0)
    >>> r.message, r.frame, r.fields
    ('undecoded', 4, {'reason': 'unknown protocol', 'bytes': 12, 'first_frame': 4, 'last_frame': 4, 'frames': 1})
    """
    first, last, count = frames
    fields: dict[str, Any] = {"reason": reason, "bytes": length, "first_frame": first,
                              "last_frame": last, "frames": count}
    if at is not None:
        fields["at"] = at
    if detail:
        fields["detail"] = detail
    fields.update(extra)
    return Record(frame=last, time=time, transport=transport, src=src, dst=dst,
                  protocol=protocol, message=UNDECODED, fields=fields, offset=offset,
                  length=length)


class UndecodedRun:
    """Consecutive undecoded bytes of one direction, gathered into one ``undecoded`` record.

    A stream decoder calls :meth:`add` for each stretch it skips; a stretch that does not
    continue the run (another reason, or not adjacent) closes it, as does :meth:`close`.

    >>> run = UndecodedRun(protocol="bittorrent", transport="tcp", src="a:1", dst="b:2")
    >>> run.add(100, 10, 3, 0.5, reason="malformed", at=100)
    >>> run.add(110, 5, 4, 0.6, reason="malformed")
    >>> [r] = run.close()
    >>> r.offset, r.length, r.fields["frames"], r.fields["at"]
    (100, 15, 2, 100)
    >>> run.close()
    []
    """

    __slots__ = ("_closed", "at", "dst", "first", "frames", "last", "length", "protocol",
                 "reason", "src", "start", "time", "transport", "extra")

    def __init__(self, *, protocol: str, transport: str, src: str, dst: str) -> None:
        self.protocol, self.transport, self.src, self.dst = protocol, transport, src, dst
        self.length = 0
        self.reason = ""
        self.extra: dict[str, Any] = {}
        self._closed: list[Record] = []

    def add(self, offset: int, length: int, frame: int, time: float, *, reason: str,
            at: int | None = None, last_frame: int | None = None, frames: int | None = None,
            **extra: Any) -> None:
        """``length`` bytes at stream ``offset``, carried by ``frames`` frames from ``frame``
        to ``last_frame`` (default: ``frame`` alone)."""
        if length <= 0:
            return
        if self.length and (reason != self.reason or offset != self.start + self.length):
            self._close()
        last = frame if last_frame is None else last_frame
        count = frames if frames is not None else 1 + (last != frame)
        if not self.length:
            self.start, self.reason, self.at, self.extra = offset, reason, at, extra
            self.first, self.last, self.frames = frame, last, count
        else:  # a frame split between two stretches is counted once
            self.frames += count - (frame == self.last)
            self.last = last
        self.length += length
        self.time = time

    def _close(self) -> None:
        if self.length:
            self._closed.append(undecoded(
                protocol=self.protocol, transport=self.transport, src=self.src, dst=self.dst,
                reason=self.reason, length=self.length, frames=(self.first, self.last,
                                                                self.frames),
                time=self.time, offset=self.start, at=self.at, **self.extra))
            self.length = 0

    def close_run(self) -> None:
        """End the current run (the bytes after it are decoded); :meth:`records` has it."""
        self._close()

    def records(self) -> list[Record]:
        """The runs closed so far (taken)."""
        out, self._closed = self._closed, []
        return out

    def close(self) -> list[Record]:
        """Close the current run: the records of every run closed and not yet taken."""
        self._close()
        return self.records()


class BinarySize(int):
    """What a summary line reads of a summarised binary field (``{"length": n, "sha1": …}``)
    whose SHA-1 was not worked out: its length, shown as the digest is (``<n bytes>``). A
    :class:`~p2pkit.capture.lazy_record.LazyRecord` gives it in ``summary`` so that a summary
    line does not hash what only the tree and JSON show."""


def _binary(name: str, value: bytes, summarised: Collection[str]) -> Any:
    if len(value) > BINARY_INLINE_LIMIT or name in summarised:
        return {"length": len(value), "sha1": hashlib.sha1(value).hexdigest()}
    return value.hex()


def json_value(value: Any, name: str = "", summarised: Collection[str] = frozenset()) -> Any:
    """A decoded value as JSON: bytes as hex (or length + SHA-1 when large, or whatever their
    length for the field names in ``summarised``, which the protocol's decoder gives: piece
    data, bitfields), enums by name.

    >>> json_value({"piece": b"x" * 3, "info_hash": b"\\x01\\x02", "_io": None, "n": [1]},
    ...            summarised={"piece"})
    {'piece': {'length': 3, 'sha1': 'b60d121b438a380c343d5ec3c2037564b82ffef3'}, 'info_hash': '0102', 'n': [1]}
    """
    # exact types first (most of a record's values), one dict lookup instead of the chain
    kind = _EXACT.get(type(value))
    if kind is not None:
        if kind == 0:  # str
            return value if value.isascii() else text_value(value)
        if kind == 1:  # int, bool, None, float
            return value
        if kind == 2:  # bytes
            if len(value) > BINARY_INLINE_LIMIT or name in summarised:
                return {"length": len(value), "sha1": hashlib.sha1(value).hexdigest()}
            return value.hex()
        if kind == 3:  # dict, Container: by the converter compiled for the mapping's shape
            return _SHAPES.convert(value, summarised)
        if kind == 5:  # an IPv4 address (compact nodes and peers): dotted quad, as compressed
            return _ntoa(value.packed)
        if kind == 6:
            return value.compressed
        return [json_value(v, name, summarised) for v in value]  # list, ListContainer
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _binary(name, bytes(value), summarised)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, enum.IntEnum):  # numbered on the wire (KRPC error codes …)
        return int(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):  # also construct's EnumIntegerString
        return text_value(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value.compressed
    if isinstance(value, Mapping):
        return {_key(k): json_value(v, _key(k), summarised) for k, v in value.items()
                if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(value, (list, tuple)):
        return [json_value(v, name, summarised) for v in value]
    if hasattr(value, "__dataclass_fields__"):  # None in a dataclass means "not sent"
        return {k: json_value(getattr(value, k), k, summarised)
                for k in value.__dataclass_fields__
                if not k.startswith("_") and getattr(value, k) is not None}
    return str(value)


def json_mapping(value: Mapping[Any, Any], summarised: Collection[str] = frozenset()
                 ) -> dict[str, Any]:
    """The JSON dictionary of a ``dict`` or Container, item by item: what ``json_value``
    gives for them (the converters compiled per shape, :mod:`p2pkit.capture.json_shapes`,
    give the same, and this for the shapes they do not take).

    >>> json_mapping({"_io": 0, b"ip": b"\\x7f\\x00\\x00\\x01", "n": 1})
    {'ip': '7f000001', 'n': 1}
    """
    out = {}
    exact = _EXACT.get
    for k, v in value.items():  # scalar leaves inline (no call per leaf)
        if type(k) is str:
            if k[:1] == "_":
                continue
        else:
            k = _key(k)
        leaf = exact(type(v))
        if leaf == 1 or (leaf == 0 and v.isascii()):
            out[k] = v
        elif leaf == 2 and len(v) <= BINARY_INLINE_LIMIT and k not in summarised:
            out[k] = v.hex()
        elif leaf == 5:
            out[k] = _ntoa(v.packed)
        else:
            out[k] = json_value(v, k, summarised)
    return out


#: Exact types ``json_value`` converts without the isinstance chain: 0 text, 1 as is,
#: 2 bytes, 3 mappings, 4 sequences, 5 IP addresses (subclasses, such as enum strings, take
#: the chain).
_EXACT: dict[type, int] = {str: 0, int: 1, bool: 1, float: 1, type(None): 1, bytes: 2,
                           dict: 3, Container: 3, list: 4, tuple: 4, ListContainer: 4,
                           ipaddress.IPv4Address: 5, ipaddress.IPv6Address: 6}
_ntoa = socket.inet_ntoa


def text_value(value: str) -> str:
    """A text field as every output shows it: bytes that were not UTF-8 (kept by the schemas
    as surrogate escapes) become ``\\xNN``, so that JSON, trees and summaries can print it;
    control characters (a vendor code padded with NULs) are left to the renderers, which all
    escape them the JSON way (``\\u0000``).

    >>> text_value("RAZA"), text_value(b"x\\xda\\x00".decode("utf-8", "surrogateescape"))
    ('RAZA', 'x\\\\xda\\x00')
    """
    text = str(value)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _key(key: Any) -> str:
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + key.hex()
    return str(key)


#: The converters compiled per mapping shape (json_value uses them for dicts and Containers).
_SHAPES = ShapeJsonConverter(json_mapping, json_value=json_value, text_value=text_value,
                             binary=_binary, key=_key, limit=BINARY_INLINE_LIMIT)


def json_fields(value: Any, *, drop: tuple[str, ...] = ("type",),
                summarised: Collection[str] = frozenset()) -> dict[str, Any]:
    """The ``fields`` object of a record: the decoded message minus its name field
    (``summarised``: as ``json_value``)."""
    doc = json_value(value, "", summarised)
    if not isinstance(doc, dict):
        return {"value": doc}
    for key in drop:
        doc.pop(key, None)
    return doc
