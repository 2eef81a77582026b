"""Protocol Buffers messages, declared as construct objects (the protobuf encoding guide).

libp2p and IPFS describe their messages in ``.proto`` files; p2pkit declares the same messages
once, as data, with :class:`Message` and :class:`Field`, and gets parsing, building, the docs
tables and the dissector's field names from that one declaration, like every other layout of
the project. The wire format ("Encoding", protobuf.dev/programming-guides/encoding):

* a message is a sequence of records ``tag = (field_number << 3) | wire_type`` (a varint)
  followed by the value;
* wire type 0 VARINT (int32, int64, uint32, uint64, sint32, sint64, bool, enum), 1 I64
  (fixed64, sfixed64, double), 2 LEN (string, bytes, embedded messages, packed repeated
  fields), 5 I32 (fixed32, sfixed32, float); 3 and 4 (groups) are deprecated and refused;
* "int32 and int64 [negative values] are always ten bytes long" (two's complement), sint32
  and sint64 use ZigZag;
* fields may appear in any order and a singular field seen twice keeps the last value; unknown
  fields are kept (in ``_unknown``, in the order met) and written back after the known ones;
* proto3 scalars without ``optional`` have *implicit presence*: a default value (0, empty) is
  not written and an absent one reads as the default.

Fields are written in declaration order, which is field-number order except where a spec
demands otherwise (dag-pb writes ``Links`` before ``Data``).

>>> Point = Message("Point", Field(1, "x", "sint32"), Field(2, "label", "string"))
>>> Point.build({"x": -2, "label": "a"}).hex()
'0803120161'
>>> Point.parse(bytes.fromhex("0803120161"))
Container(x=-2, label=u'a')
>>> Point.parse(bytes.fromhex("0a03"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: protobuf, field Point -> x, offset 0: wire type 2 where sint32 needs 0
"""

from __future__ import annotations

import enum
import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import construct

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.varint import LengthPrefixed, ProtoVarint
from p2pkit.schema import Schema

__all__ = ["SCALARS", "Delimited", "Field", "Message", "WireType"]


class WireType(enum.IntEnum):
    """The four wire types still in use (encoding §Message Structure)."""

    VARINT = 0
    I64 = 1
    LEN = 2
    I32 = 5


_U64 = (1 << 64) - 1


def _signed(bits: int):
    def decode(raw: int) -> int:
        raw &= (1 << bits) - 1
        return raw - (1 << bits) if raw >> (bits - 1) else raw

    def encode(value: int) -> int:
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise ValueError(f"{value} out of range for int{bits}")
        return value & _U64  # "always ten bytes long" when negative
    return decode, encode


def _unsigned(bits: int):
    def decode(raw: int) -> int:
        return raw & ((1 << bits) - 1)

    def encode(value: int) -> int:
        if not 0 <= value < 1 << bits:
            raise ValueError(f"{value} out of range for uint{bits}")
        return value
    return decode, encode


def _zigzag(bits: int):
    def decode(raw: int) -> int:
        raw &= (1 << bits) - 1
        return (raw >> 1) ^ -(raw & 1)

    def encode(value: int) -> int:
        if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
            raise ValueError(f"{value} out of range for sint{bits}")
        return ((value << 1) ^ (value >> (bits - 1))) & ((1 << bits) - 1)
    return decode, encode


def _bool():
    def encode(value: Any) -> int:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a bool")
        return int(value)
    return (lambda raw: raw != 0), encode


def _fixed(fmt: str):
    s = struct.Struct("<" + fmt)
    return (lambda raw: s.unpack(raw)[0]), s.pack


#: scalar type -> (wire type, decode wire value, encode to wire value, default).
SCALARS: dict[str, tuple[WireType, Any, Any, Any]] = {
    "int32": (WireType.VARINT, *_signed(32), 0),
    "int64": (WireType.VARINT, *_signed(64), 0),
    "uint32": (WireType.VARINT, *_unsigned(32), 0),
    "uint64": (WireType.VARINT, *_unsigned(64), 0),
    "sint32": (WireType.VARINT, *_zigzag(32), 0),
    "sint64": (WireType.VARINT, *_zigzag(64), 0),
    "bool": (WireType.VARINT, *_bool(), False),
    "enum": (WireType.VARINT, *_signed(32), 0),
    "fixed32": (WireType.I32, *_fixed("I"), 0),
    "sfixed32": (WireType.I32, *_fixed("i"), 0),
    "float": (WireType.I32, *_fixed("f"), 0.0),
    "fixed64": (WireType.I64, *_fixed("Q"), 0),
    "sfixed64": (WireType.I64, *_fixed("q"), 0),
    "double": (WireType.I64, *_fixed("d"), 0.0),
    "bytes": (WireType.LEN, bytes, bytes, b""),
    "string": (WireType.LEN, lambda raw: raw.decode("utf-8"), lambda v: v.encode("utf-8"), ""),
}
_PACKABLE = {name for name, (wt, *_) in SCALARS.items() if wt != WireType.LEN}


@dataclass(frozen=True)
class Field:
    """One field of a :class:`Message`: its number, name and type.

    ``type`` is a scalar name of ``SCALARS`` or a :class:`Message`; ``enum`` (for
    ``type="enum"``) an :class:`enum.IntEnum` whose member names are the parsed values
    (numbers it lacks stay ``int``, as proto3 open enums demand). ``repeated`` fields parse to
    lists, written ``packed`` when asked (proto3's default for numeric types; both forms are
    read). ``required`` (proto2) fields must be present. ``implicit`` marks proto3 implicit
    presence. ``max_length`` bounds a LEN value (checked before it is read).
    """

    number: int
    name: str
    type: str | Message
    repeated: bool = False
    packed: bool = False
    required: bool = False
    implicit: bool = False
    enum: type[enum.IntEnum] | None = None
    max_length: int | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.number < 1 << 29 or 19000 <= self.number <= 19999:
            raise ValueError(f"field number {self.number} is not allowed")
        if not isinstance(self.type, Message) and self.type not in SCALARS:
            raise ValueError(f"unknown protobuf type {self.type!r}")
        if self.packed and self.type not in _PACKABLE:
            raise ValueError(f"{self.type} cannot be packed")

    @property
    def wire_type(self) -> WireType:
        """What the tag of this field carries."""
        return WireType.LEN if isinstance(self.type, Message) else SCALARS[self.type][0]

    @property
    def type_name(self) -> str:
        """``uint64``, ``enum KeyType``, ``message PBLink``, with ``repeated`` and so on."""
        base = (f"message {self.type.name}" if isinstance(self.type, Message)
                else f"enum {self.enum.__name__}" if self.enum else self.type)
        mods = [m for m, on in (("repeated", self.repeated), ("packed", self.packed),
                                ("required", self.required)) if on]
        return " ".join([*mods, base])

    def default(self) -> Any:
        if self.repeated:
            return construct.ListContainer()
        if self.implicit and not isinstance(self.type, Message):
            value = SCALARS[self.type][3]
            return self._enum_name(value) if self.enum else value
        return None

    def _enum_name(self, value: int) -> Any:
        try:
            return self.enum(value).name
        except ValueError:
            return value


class Message(construct.Construct):
    """A protobuf message type: a construct that parses to a ``Container`` of its fields.

    Nested messages are fields whose ``type`` is another :class:`Message`. The parsed container
    holds every declared field (``None``/default when absent, a list when repeated) and
    ``_unknown``: ``(number, wire_type, raw value bytes)`` of the fields not declared.
    """

    def __init__(self, name: str, *fields: Field, doc: str = "",
                 protocol: str = "protobuf") -> None:
        super().__init__()
        self.name = name
        #: Named in the errors of a top-level :meth:`parse` / :meth:`build`.
        self.protocol = protocol
        self.docs = doc
        self.fields = fields
        #: field name -> Field (also what the registry collects field names from).
        self.by_name: dict[str, Field] = {f.name: f for f in fields}
        self.by_number: dict[int, Field] = {f.number: f for f in fields}
        if len(self.by_name) != len(fields) or len(self.by_number) != len(fields):
            raise ValueError(f"{name}: duplicate field name or number")

    # -- parsing -----------------------------------------------------------------------------

    def parse(self, data: bytes, **contextkw: Any) -> Any:
        """Parse a whole message; errors are :class:`ParseError` naming :attr:`protocol`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ParseError(f"expected bytes, got {type(data).__name__}", protocol=self.protocol)
        try:
            return self.decode(bytes(data))
        except ParseError as e:
            raise (e if e.protocol else e.relocated(protocol=self.protocol)) from None

    def build(self, obj: Any, **contextkw: Any) -> bytes:
        """The bytes of ``obj``; errors are :class:`BuildError` naming :attr:`protocol`."""
        try:
            return self.encode(obj)
        except BuildError as e:
            if e.protocol:
                raise
            raise BuildError(e.reason, protocol=self.protocol, path=e.path) from None

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        base = _tell(stream)
        data = construct.stream_read_entire(stream, path)
        return self.decode(data, base=base)

    def decode(self, data: bytes, *, base: int = 0, path: str = "") -> construct.Container:
        """Parse ``data`` (the whole message); offsets in errors start at ``base``."""
        path = path or self.name
        stream = io.BytesIO(data)
        out = construct.Container((f.name, f.default()) for f in self.fields)
        out["_unknown"] = construct.ListContainer()
        seen: set[int] = set()
        end = len(data)
        while stream.tell() < end:
            at = stream.tell()
            tag = _varint(stream, base, path)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise ParseError("field number 0", path=path, offset=base + at)
            field = self.by_number.get(number)
            where = f"{path} -> {field.name}" if field else f"{path} -> #{number}"
            if field is not None and wire != field.wire_type and not (
                    wire == WireType.LEN and field.repeated and field.type in _PACKABLE):
                raise ParseError(f"wire type {wire} where {field.type_name} needs "
                                 f"{int(field.wire_type)}", path=where, offset=base + at)
            if wire == WireType.VARINT:
                raw: Any = _varint(stream, base, where)
            elif wire == WireType.I64:
                raw = _exact(stream, 8, base, where)
            elif wire == WireType.I32:
                raw = _exact(stream, 4, base, where)
            elif wire == WireType.LEN:
                length_at = stream.tell()
                length = _varint(stream, base, where)
                limit = field.max_length if field is not None and field.max_length else None
                if limit is not None and length > limit:
                    raise LimitExceeded(f"length {length} over the limit of {limit}",
                                        path=where, offset=base + length_at)
                if length > end - stream.tell():
                    raise ParseError(f"length {length} runs past the end of the message "
                                     f"({end - stream.tell()} bytes left)",
                                     path=where, offset=base + length_at)
                raw = stream.read(length)
            else:
                raise ParseError(f"wire type {wire} (groups and unknown types are refused)",
                                 path=where, offset=base + at)
            if field is None:
                out["_unknown"].append(construct.Container(number=number, wire_type=wire,
                                                           value=raw))
                continue
            seen.add(number)
            value_at = base + stream.tell() - (len(raw) if isinstance(raw, bytes) else 0)
            self._store(out, field, wire, raw, where, base + at, value_at)
        for f in self.fields:
            if f.required and f.number not in seen:
                raise ParseError(f"required field {f.name} is missing",
                                 path=f"{path} -> {f.name}", offset=base + end)
        return out

    def _store(self, out: Any, field: Field, wire: int, raw: Any, where: str, at: int,
               value_at: int) -> None:
        if isinstance(field.type, Message):
            value = field.type.decode(raw, base=value_at, path=where)
            if field.repeated:
                out[field.name].append(value)
            else:
                out[field.name] = value  # last one wins (merging is not needed by any spec here)
            return
        expected, decode, _, _ = SCALARS[field.type]
        if wire == WireType.LEN and expected != WireType.LEN and field.repeated:
            values = self._unpack(field, raw, where, value_at)  # packed
            out[field.name].extend(values)
            return
        try:
            value = decode(raw)
        except UnicodeDecodeError as e:
            raise ParseError(f"invalid UTF-8 in a string: {e.reason}", path=where,
                             offset=value_at + e.start) from None
        if field.enum is not None:
            value = field._enum_name(value)
        if field.repeated:
            out[field.name].append(value)
        else:
            out[field.name] = value

    def _unpack(self, field: Field, raw: bytes, where: str, base: int) -> list[Any]:
        expected, decode, _, _ = SCALARS[field.type]
        stream = io.BytesIO(raw)
        values = []
        while stream.tell() < len(raw):
            if expected == WireType.VARINT:
                v = decode(_varint(stream, base, where))
            else:
                v = decode(_exact(stream, 8 if expected == WireType.I64 else 4, base, where))
            values.append(field._enum_name(v) if field.enum is not None else v)
        return values

    # -- building ----------------------------------------------------------------------------

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        data = self.encode(obj, path=self.name)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def encode(self, obj: Mapping[str, Any], *, path: str = "") -> bytes:
        """The bytes of ``obj`` (a mapping of field names; absent or ``None`` fields are not
        written)."""
        path = path or self.name
        if not isinstance(obj, Mapping):
            raise BuildError(f"a {self.name} is a mapping of field names, got "
                             f"{type(obj).__name__}", path=path)
        extra = set(obj) - set(self.by_name) - {"_unknown"}
        if extra:
            raise BuildError(f"{self.name} has no field {sorted(extra)[0]!r}", path=path)
        out = bytearray()
        for f in self.fields:
            value = obj.get(f.name)
            where = f"{path} -> {f.name}"
            if value is None or (f.repeated and not value):
                if f.required:
                    raise BuildError(f"required field {f.name} is missing", path=where)
                continue
            if f.repeated:
                if f.packed:
                    body = b"".join(self._scalar(f, v, where)[1] for v in value)
                    out += _tag(f.number, WireType.LEN) + _len(body) + body
                else:
                    for v in value:
                        out += self._one(f, v, where)
            else:
                if f.implicit and not isinstance(f.type, Message) and \
                        self._is_default(f, value):
                    continue
                out += self._one(f, value, where)
        for unknown in obj.get("_unknown") or ():
            wire = unknown["wire_type"]
            raw = unknown["value"]
            out += _tag(unknown["number"], wire)
            if wire == WireType.VARINT:
                out += ProtoVarint.build(raw)
            elif wire == WireType.LEN:
                out += _len(raw) + raw
            else:
                out += raw
        return bytes(out)

    def _is_default(self, f: Field, value: Any) -> bool:
        if f.enum is not None:
            return self._enum_value(f, value, "") == 0
        return value == SCALARS[f.type][3]

    def _one(self, f: Field, value: Any, where: str) -> bytes:
        if isinstance(f.type, Message):
            body = f.type.encode(value, path=where)
            return _tag(f.number, WireType.LEN) + _len(body) + body
        wire, raw = self._scalar(f, value, where)
        if wire == WireType.LEN:
            return _tag(f.number, wire) + _len(raw) + raw
        return _tag(f.number, wire) + raw

    def _scalar(self, f: Field, value: Any, where: str) -> tuple[WireType, bytes]:
        wire, _, encode, _ = SCALARS[f.type]
        if f.enum is not None:
            value = self._enum_value(f, value, where)
        try:
            raw = encode(value)
        except (ValueError, TypeError, AttributeError, struct.error) as e:
            raise BuildError(f"{value!r} is not a valid {f.type}: {e}", path=where) from None
        if wire == WireType.VARINT:
            return wire, ProtoVarint.build(raw)
        return wire, raw

    @staticmethod
    def _enum_value(f: Field, value: Any, where: str) -> int:
        if isinstance(value, str):
            try:
                return int(f.enum[value])
            except KeyError:
                raise BuildError(f"{value!r} is not a {f.enum.__name__}", path=where) from None
        return int(value)

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("protobuf messages have variable size", path=path)


def _tell(stream: Any) -> int:
    try:
        return stream.tell()
    except (OSError, AttributeError):
        return 0


def _varint(stream: Any, base: int, path: str) -> int:
    at = stream.tell()
    try:
        return ProtoVarint._parse(stream, None, "")
    except ParseError as e:
        raise type(e)(e.reason, path=path, offset=base + at) from None


def _exact(stream: Any, size: int, base: int, path: str) -> bytes:
    at = stream.tell()
    data = stream.read(size)
    if len(data) != size:
        raise ParseError(f"truncated: {size} bytes needed, {len(data)} left", path=path,
                         offset=base + at)
    return data


def _tag(number: int, wire: int) -> bytes:
    return ProtoVarint.build((number << 3) | wire)


def _len(body: bytes) -> bytes:
    return ProtoVarint.build(len(body))


def Delimited(message: Message, max_length: int) -> construct.Construct:  # noqa: N802
    """``message`` prefixed by its length as an unsigned varint, the framing libp2p protocols
    use on their streams (identify, kad-dht, Bitswap: "varint length-prefixed"), with
    ``max_length`` checked before the body is read."""
    return Schema(LengthPrefixed(message, max_length), protocol=message.protocol,
                  name=f"{message.name}Frame")


def delimited_frame_length(buffer: bytes | bytearray, max_length: int) -> int | None:
    """Bytes of the varint-length-prefixed frame at the start of ``buffer`` (prefix included),
    None while the prefix is incomplete; a length over ``max_length`` is
    :class:`~p2pkit.errors.LimitExceeded` (checked before anything is buffered for it)."""
    from p2pkit.ipfs.varint import decode_uvarint

    try:
        length, after = decode_uvarint(bytes(buffer[:10]))
    except ParseError as e:
        if "truncated" in e.reason and len(buffer) < 9:
            return None
        raise
    if length > max_length:
        raise LimitExceeded(f"message of {length} bytes (at most {max_length})")
    return after + length
