"""The subset of DAG-CBOR that IPFS's small documents use, as construct objects.

DAG-CBOR (ipld.io/specs/codecs/dag-cbor) is CBOR (RFC 8949) with one encoding per value:
"integer encoding must be as short as possible", "the length of [...] strings, arrays and
maps must be as short as possible", and map keys are strings "sorted by length first, then by
byte order". CARv1 headers (:mod:`p2pkit.ipfs.car`) and the ``data`` field of IPNS records
(:mod:`p2pkit.ipfs.ipns`) are such documents. Read here: unsigned integers (major type 0),
byte strings (2), text strings (3) and maps of text keys to those (5); anything else is a
:class:`~p2pkit.errors.ParseError`, a form that is not the shortest too.

>>> CborMap.build({"aa": b"\\x00", "b": 1}).hex()  # "b" sorts before "aa": shorter first
'a26162016261614100'
>>> dict(CborMap.parse(bytes.fromhex("a26162016261614100")))
{'b': 1, 'aa': b'\\x00'}
"""

from __future__ import annotations

from typing import Any

import construct

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.schema import Schema

__all__ = ["MAX_MAP_ENTRIES", "CborHead", "CborMap", "CborValue", "dag_cbor_key_order"]

#: Entries a map may hold.
MAX_MAP_ENTRIES = 64
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


class CborHead(construct.Construct):
    """A CBOR initial byte of major type ``major`` and its argument (RFC 8949 §3), which must
    be in its shortest form (DAG-CBOR); arguments above ``max_value`` are a
    :class:`~p2pkit.errors.LimitExceeded` (checked before anything is allocated)."""

    def __init__(self, major: int, max_value: int = 0xFFFF) -> None:
        super().__init__()
        self.major = major
        self.max_value = max_value

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        first = construct.stream_read(stream, 1, path)[0]
        if first >> 5 != self.major:
            raise ParseError(f"CBOR major type {first >> 5} where {self.major} is expected",
                             path=path.split("->")[-1].strip())
        return _argument(first & 0x1F, stream, path, self.max_value)

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        if not 0 <= obj <= self.max_value:
            raise BuildError(f"CBOR argument {obj} out of 0..{self.max_value}", path=path)
        data = _head(self.major, obj)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable", path=path)


def _argument(info: int, stream: Any, path: str, max_value: int) -> int:
    if info < 24:
        return info
    size = _ARGUMENT_BYTES.get(info)
    if size is None:
        raise ParseError(f"CBOR argument kind {info} (indefinite lengths are not DAG-CBOR)")
    value = int.from_bytes(construct.stream_read(stream, size, path), "big")
    if value < (24 if size == 1 else 1 << (4 * size)):
        raise ParseError("CBOR argument not in its shortest form (DAG-CBOR)")
    if value > max_value:
        raise LimitExceeded(f"CBOR argument {value} (at most {max_value} is read)")
    return value


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in _ARGUMENT_BYTES.items():
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise BuildError(f"CBOR argument {value} does not fit 64 bits")


class CborValue(construct.Construct):
    """An unsigned integer (``int``), a byte string (``bytes``) or a text string (``str``) of
    at most ``max_length`` bytes."""

    def __init__(self, max_length: int = 0xFFFF) -> None:
        super().__init__()
        self.max_length = max_length

    def _parse(self, stream: Any, context: Any, path: str) -> int | bytes | str:
        first = construct.stream_read(stream, 1, path)[0]
        major = first >> 5
        if major == 0:
            return _argument(first & 0x1F, stream, path, (1 << 64) - 1)
        if major not in (2, 3):
            raise ParseError(f"CBOR major type {major}: DAG-CBOR documents read here hold "
                             "unsigned integers, byte strings and text strings")
        length = _argument(first & 0x1F, stream, path, self.max_length)
        raw = construct.stream_read(stream, length, path)
        if major == 2:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("CBOR text string is not UTF-8") from None

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if isinstance(obj, bool) or not isinstance(obj, (int, bytes, str)):
            raise BuildError(f"{type(obj).__name__} is not an uint, bytes or str", path=path)
        if isinstance(obj, int):
            data = _head(0, obj) if obj >= 0 else None
            if data is None:
                raise BuildError("negative integers are not written here", path=path)
        else:
            raw = obj.encode("utf-8") if isinstance(obj, str) else obj
            if len(raw) > self.max_length:
                raise BuildError(f"string of {len(raw)} bytes (at most {self.max_length})")
            data = _head(3 if isinstance(obj, str) else 2, len(raw)) + raw
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable", path=path)


def dag_cbor_key_order(key: str) -> tuple[int, bytes]:
    """DAG-CBOR's map key order: "sorted by length first, then by byte order"."""
    raw = key.encode("utf-8")
    return len(raw), raw


class _MapAdapter(construct.Adapter):
    def _decode(self, obj: Any, context: Any, path: str) -> dict[str, Any]:
        keys = [entry.key for entry in obj]
        if keys != sorted(keys, key=dag_cbor_key_order) or len(set(keys)) != len(keys):
            raise ParseError("DAG-CBOR map keys must be unique and in canonical order")
        return {entry.key: entry.value for entry in obj}

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        for key in obj:
            if not isinstance(key, str):
                raise BuildError(f"DAG-CBOR map keys are strings, not {type(key).__name__}")
        return [{"key": k, "value": obj[k]} for k in sorted(obj, key=dag_cbor_key_order)]


class _Text(construct.Adapter):
    def _decode(self, obj: Any, context: Any, path: str) -> str:
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("CBOR text string is not UTF-8") from None

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return obj.encode("utf-8")


#: A map of text keys (at most 64 bytes) to :class:`CborValue` values, keys in canonical order.
CborMap = Schema(_MapAdapter(construct.PrefixedArray(
    CborHead(5, MAX_MAP_ENTRIES),
    construct.Struct(
        "key" / _Text(construct.Prefixed(CborHead(3, 64), construct.GreedyBytes)),
        "value" / CborValue(),
    ),
)), protocol="dag-cbor")
