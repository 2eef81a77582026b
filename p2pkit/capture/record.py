"""The dissector's output record: one decoded message, and how its fields become JSON.

One :class:`Record` per protocol message, the same object behind every output format
(summary line, field tree, JSON lines) and the Python API.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit.deviations import Deviation

__all__ = ["BINARY_INLINE_LIMIT", "Record", "json_fields"]

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
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

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
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _binary(name, bytes(value), summarised)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, enum.IntEnum):  # numbered on the wire (KRPC error codes …)
        return int(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):  # also construct's EnumIntegerString
        return str(value)
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


def _key(key: Any) -> str:
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + key.hex()
    return str(key)


def json_fields(value: Any, *, drop: tuple[str, ...] = ("type",),
                summarised: Collection[str] = frozenset()) -> dict[str, Any]:
    """The ``fields`` object of a record: the decoded message minus its name field
    (``summarised``: as :func:`json_value`)."""
    doc = json_value(value, "", summarised)
    if not isinstance(doc, dict):
        return {"value": doc}
    for key in drop:
        doc.pop(key, None)
    return doc
