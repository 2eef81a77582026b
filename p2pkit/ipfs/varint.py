"""Unsigned varints: the multiformats flavour and the protobuf flavour, one construct.

multiformats unsigned-varint (multiformats-unsigned-varint.md §Spec): "unsigned integers are
serialized 7 bits at a time, starting with the least significant bits; the most significant bit
(msb) in each output byte indicates if there is a continuation byte", "integers are minimally
encoded", and (§Practical maximum of 9 bytes) "Implementations MUST restrict the size of the
varint to a max of 9 bytes (63 bits)".

Protocol buffers use the same base-128 layout with up to 10 bytes (64 bits) and accept
non-minimal encodings, so :data:`ProtoVarint` is the same class with those two parameters.

>>> UVarint.build(300).hex()
'ac02'
>>> UVarint.parse(bytes.fromhex("808001"))
16384
>>> UVarint.parse(bytes.fromhex("8100"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: multiformats, offset 0: varint not minimally encoded ...
"""

from __future__ import annotations

import io
from typing import Any

import construct

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.schema import Schema

__all__ = ["MAX_VARINT_BYTES", "BoundedLength", "LengthPrefixed", "ProtoVarint", "UVarint",
           "UnsignedVarint", "decode_uvarint",
           "encode_uvarint"]

#: "a max of 9 bytes (63 bits)" (unsigned-varint §Practical maximum of 9 bytes).
MAX_VARINT_BYTES = 9


class UnsignedVarint(construct.Construct):
    """An unsigned LEB128 integer of at most ``max_bytes`` bytes (``max_bits`` bits).

    ``minimal``: a last byte of zero (``81 00`` for 1) is refused, as the multiformats spec
    demands ("numbers must be encoded in the least number of bytes possible"). Errors are
    :class:`~p2pkit.errors.ParseError` (or :class:`~p2pkit.errors.LimitExceeded` past
    ``max_bytes``) with the offset of the varint's first byte.
    """

    def __init__(self, *, max_bytes: int, max_bits: int, minimal: bool) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.max_bits = max_bits
        self.minimal = minimal

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        start = _tell(stream)
        value = 0
        for i in range(self.max_bytes):
            data = stream.read(1)
            if not data:
                raise ParseError("truncated varint", path=_clean(path), offset=start)
            byte = data[0]
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if self.minimal and byte == 0 and i > 0:
                    raise ParseError(f"varint not minimally encoded ({i + 1} bytes for {value})",
                                     path=_clean(path), offset=start)
                if value >> self.max_bits:
                    raise LimitExceeded(f"varint over {self.max_bits} bits",
                                        path=_clean(path), offset=start)
                return value
        raise LimitExceeded(f"varint longer than {self.max_bytes} bytes",
                            path=_clean(path), offset=start)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> int:
        if not isinstance(obj, int) or isinstance(obj, bool) or obj < 0 or obj >> self.max_bits:
            raise BuildError(f"{obj!r} is not an unsigned integer of at most {self.max_bits} bits",
                             path=_clean(path))
        data = _encode(obj)
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable-length integer", path=path)


def _encode(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tell(stream: Any) -> int | None:
    try:
        return stream.tell()
    except (OSError, AttributeError):
        return None


def _clean(path: str) -> str:
    from p2pkit.schema import clean_path

    return clean_path(path)


#: The multiformats unsigned varint: minimal, at most 9 bytes / 63 bits.
UnsignedVarintField = UnsignedVarint(max_bytes=MAX_VARINT_BYTES, max_bits=63, minimal=True)
#: Top-level form (p2pkit's errors with ``protocol="multiformats"``).
UVarint = Schema(UnsignedVarintField, protocol="multiformats")
#: The protobuf varint (encoding §Base 128 Varints): up to 10 bytes, 64 bits, non-minimal allowed.
ProtoVarint = UnsignedVarint(max_bytes=10, max_bits=64, minimal=False)


def encode_uvarint(value: int) -> bytes:
    """The multiformats varint of ``value``.

    >>> encode_uvarint(16384).hex()
    '808001'
    """
    return UVarint.build(value)


def decode_uvarint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """``(value, offset after it)`` of the varint at ``data[offset:]`` (bytes may follow).

    >>> decode_uvarint(bytes.fromhex("ac02ff"))
    (300, 2)
    """
    stream = io.BytesIO(data)
    stream.seek(offset)
    value = UVarint.parse_stream(stream)
    return value, stream.tell()


class BoundedLength(construct.Adapter):
    """A length refused (:class:`~p2pkit.errors.LimitExceeded`) above ``limit``, before the
    bytes it announces are read (DESIGN.md: every length bounded before allocating)."""

    def __init__(self, subcon: construct.Construct, limit: int) -> None:
        super().__init__(subcon)
        self.limit = limit

    def _decode(self, obj: int, context: Any, path: str) -> int:
        if obj > self.limit:
            raise LimitExceeded(f"length {obj} over the limit of {self.limit}",
                                path=_clean(path))
        return obj

    def _encode(self, obj: int, context: Any, path: str) -> int:
        if obj > self.limit:
            raise BuildError(f"length {obj} over the limit of {self.limit}", path=_clean(path))
        return obj


def LengthPrefixed(subcon: construct.Construct, limit: int) -> construct.Construct:  # noqa: N802
    """``subcon`` prefixed by its length in bytes as a multiformats varint, at most ``limit``.

    >>> LengthPrefixed(construct.GreedyBytes, 4).build(b"abc").hex()
    '03616263'
    """
    return construct.Prefixed(BoundedLength(UnsignedVarintField, limit), subcon)
