"""A stream decoder for any protocol that is a sequence of length-delimited messages.

A protocol whose stream is "a length, then that many bytes" (after its own handshake, if any)
needs no decoder of its own: :func:`framed_stream` makes the registry's stream-decoder factory
from its top-level schema. The frame length comes from the schema itself when it is a
``Prefixed`` construct (:func:`prefix_frame_length`), so the layout is still written once.

>>> import construct
>>> from p2pkit.schema import Schema
>>> Msg = Schema(construct.Prefixed(construct.Int16ub, construct.Struct(
...     "kind" / construct.Int8ub, "value" / construct.GreedyBytes)), protocol="demo")
>>> stream = framed_stream(Msg, protocol="demo")(src="a:1", dst="b:2")
>>> [(r.message, r.fields) for r in stream.data(0, bytes.fromhex("000301ab"), 1, 0.0)]
[]
>>> [(r.message, r.fields) for r in stream.data(4, bytes.fromhex("cd"), 2, 0.5)]
[('message', {'kind': 1, 'value': 'abcd'})]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import construct

from p2pkit.capture.record import Record, json_fields
from p2pkit.capture.spans import struct_spans
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import Deviation
from p2pkit.errors import ParseError

__all__ = ["FramedStream", "framed_stream", "prefix_frame_length"]

#: A function giving the length of the frame at the start of the bytes (None: not known yet).
FrameLength = Callable[[bytes | bytearray], int | None]


def _prefix(schema: Any) -> tuple[int, str]:
    """Size and byte order of a ``Prefixed`` schema's length field."""
    con = schema
    while not isinstance(con, construct.Prefixed):
        if not isinstance(con, construct.Subconstruct):
            raise TypeError(f"{schema!r} is not a Prefixed construct: give frame_length")
        con = con.subcon
    field = con.lengthfield
    while not isinstance(field, construct.FormatField):
        field = field.subcon
    return field.sizeof(), "big" if field.fmtstr[0] in ">!" else "little"


def prefix_frame_length(schema: Any) -> FrameLength:
    """The frame length rule of a ``Prefixed(IntNN, …)`` schema: prefix size plus its value.

    >>> rule = prefix_frame_length(construct.Prefixed(construct.Int16ub, construct.GreedyBytes))
    >>> rule(b"\\x00\\x05abc"), rule(b"\\x00")
    (7, None)
    """
    size, order = _prefix(schema)

    def frame_length(data: bytes | bytearray) -> int | None:
        if len(data) < size:
            return None
        return size + int.from_bytes(data[:size], order)

    return frame_length


def _message_name(value: Any) -> str:
    for key in ("type", "kind", "message"):
        name = value.get(key) if isinstance(value, dict) else None
        if isinstance(name, str):
            return str(name)  # also construct's EnumIntegerString
    return "message"


class FramedStream:
    """One direction of a length-delimited stream: every frame parsed with ``schema``.

    A frame that does not parse ends the decoding of the direction (a
    :class:`~p2pkit.deviations.Deviation` on a record of the bytes left, message ``undecoded``),
    as does a gap: without a marker the next frame boundary cannot be found.
    """

    def __init__(self, *, protocol: str, schema: Any, frame_length: FrameLength,
                 name: Callable[[Any], str], spec: str, transport: str, src: str,
                 dst: str, body_start: int = 0) -> None:
        self.protocol, self.schema, self.frame_length = protocol, schema, frame_length
        #: Where the schema's fields start in a frame (after a ``Prefixed`` length).
        self.body_start = body_start
        self.name, self.spec = name, spec
        self.transport, self.src, self.dst = transport, src, dst
        self.buffer = StreamBuffer()
        self.failed = False
        self.skipped = 0
        self.peer: FramedStream | None = None

    def data(self, offset: int, data: bytes, frame: int, time: float) -> list[Record]:
        if self.failed:
            self.skipped += len(data)
            return []
        buf = self.buffer
        buf.append(offset, data, frame, time)
        out = []
        while True:
            size = self.frame_length(buf.data)
            if size is None or len(buf) < size:
                return out
            at, when = buf.frame_of(size - 1)
            record = Record(frame=at, time=when, transport=self.transport, src=self.src,
                            dst=self.dst, protocol=self.protocol, message="undecoded",
                            offset=buf.start, length=size)
            try:
                value = self.schema.parse(bytes(buf.data[:size]))
            except ParseError as e:
                record.deviations.append(Deviation(
                    offset=buf.start + (e.offset or 0), rule=f"{self.protocol}/frame",
                    message=e.reason, spec=self.spec))
                self.failed = True
                self.skipped += len(buf) - size
            else:
                record.message = self.name(value)
                record.fields = json_fields(value)
                record.value = value
                record.spans = struct_spans(self.schema, self.body_start, size)
            buf.skip(size)
            out.append(record)
            if self.failed:
                buf.skip(len(buf))
                return out

    def gap(self, offset: int, length: int) -> None:
        self.skipped += len(self.buffer) + length
        self.buffer.reset(offset + length)
        self.failed = True

    def end(self) -> list[Record]:
        self.skipped += len(self.buffer)
        return []


def framed_stream(schema: Any, *, protocol: str, frame_length: FrameLength | None = None,
                  name: Callable[[Any], str] = _message_name, spec: str = ""
                  ) -> Callable[..., FramedStream]:
    """A stream-decoder factory (a descriptor's ``stream_decoder``) for a protocol whose
    stream is a sequence of ``schema`` frames; ``frame_length`` defaults to the schema's own
    ``Prefixed`` length; ``name`` names a parsed message (its ``type``/``kind`` by default)."""
    rule = frame_length or prefix_frame_length(schema)
    body_start = 0 if frame_length is not None else _prefix(schema)[0]

    def make(*, src: str, dst: str, transport: str = "tcp", peer: Any = None) -> FramedStream:
        return FramedStream(protocol=protocol, schema=schema, frame_length=rule, name=name,
                            spec=spec or protocol, transport=transport, src=src, dst=dst,
                            body_start=body_start)

    return make
