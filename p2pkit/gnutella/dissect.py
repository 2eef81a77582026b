"""Gnutella dissection of one reassembled direction: handshakes, descriptors (inflating a
deflated link), the HTTP file transfer and the ``GIV`` push callback.

Reached through the ``gnutella`` descriptor (``p2pkit.gnutella.protocol``).

Descriptors and handshakes are framed by :class:`p2pkit.gnutella.stream.StreamReader` (lenient
payload parsing), so a capture is read exactly as a servent reads its socket. A servent's HTTP
side (handshaking_0.6 does not cover it; see push_proxy and huge §4 for ``/uri-res/N2R``) is
recognised by its request line (``GET /uri-res/…``, ``GET /get/<index>/<name>``), its status
line, or ``GIV <index>:<GUID>/<name>`` (the push callback, Gnutella 0.4 §Push); file bodies are
counted and hashed, not shown.

Over UDP (ultrapeers and leaves send pings, pongs, queries, query hits and vendor messages as
single datagrams, Gnutella 0.6 §UDP, GUESS), each datagram is one descriptor, decoded by
``GnutellaDatagrams`` with the same lenient schemas; it is recognised by its header (the
payload length is the rest of the datagram).

A link upgraded to TLS (gnet-TLS-upgrade: ``Connection: Upgrade`` in the block that ends a
side's handshake) is labelled: its records after the switch come out as one ``undecoded``
record per direction, ``reason: encrypted``, ``encryption: TLS``, with their byte count.

Descriptors the lenient schema cannot decode are still framed; the record carries the
:class:`~p2pkit.deviations.Deviation` the schema reported (an unknown payload type, a payload that
does not parse as its type says), read with :func:`~p2pkit.deviations.deviations_of`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from p2pkit import http1
from p2pkit.capture.lazy_record import LazyRecord, scalar_summary
from p2pkit.capture.packets import Packet
from p2pkit.capture.record import Record, UndecodedRun, json_fields, undecoded
from p2pkit.capture.spans import struct_spans
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import Deviation, deviations_of
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.gnutella.descriptor_records import DescriptorRecords
from p2pkit.gnutella.descriptors import (
    HEADER_LENGTH,
    DescriptorHeader,
    DescriptorLenient,
)
from p2pkit.gnutella.detect import detect_gnutella
from p2pkit.gnutella.stream import TLS, DescriptorFrame, HandshakeFrame, StreamReader
from p2pkit.gnutella.udp_detect import MAX_UDP_TTL_HOPS, detect_gnutella_udp
from p2pkit.gnutella.udp_detect import cut_short as _cut_short
from p2pkit.gnutella.udp_detect import udp_header as _udp_header

__all__ = ["GnutellaDatagrams", "GnutellaStream", "detect_gnutella", "detect_gnutella_udp",
           "gnutella_stream"]

PROTOCOL = "gnutella"
MAX_HTTP_HEAD = 16 * 1024
_GIV = re.compile(rb"GIV (\d+):([0-9A-Fa-f]{32})/([^\n]*)\n\n")


def descriptor_record(d: Any, *, transport: str, src: str, dst: str, offset: int | None,
                      length: int, frame: int, time: float, base: int = 0) -> Record:
    """The record of one descriptor, the same over TCP and UDP (its JSON fields and
    deviations worked out when first read; the summary line reads the scalar fields)."""

    def decode() -> tuple[dict[str, Any], Any, list[Deviation]]:
        fields = json_fields(d)
        fields["guid"] = d.guid.hex()
        return fields, d, deviations_of(d, base=base)

    record = LazyRecord(frame=frame, time=time, transport=transport, src=src, dst=dst,
                        protocol=PROTOCOL, message=str(d.type), offset=offset, length=length,
                        decode=decode, **scalar_summary(d, {"guid": d.guid.hex()}))
    record.spans = struct_spans(DescriptorHeader, 0, HEADER_LENGTH)
    return record


class GnutellaDatagrams:
    """The ``gnutella`` descriptor's datagram decoder: one descriptor per UDP datagram."""

    def finish(self) -> list[Record]:
        return []

    def datagram(self, pkt: Packet, *, forced: bool = False) -> list[Record] | None:
        """The record of one datagram; None when it is not a Gnutella descriptor. A header
        whose payload runs past the datagram, or a payload that breaks the schema, is an
        ``undecoded`` record (truncated, malformed)."""
        payload = pkt.payload
        header = _udp_header(payload)
        if header is None:
            return None if not forced else [self._undecoded(pkt, "truncated", 0)]
        kind, ttl, hops, length = header
        if length != len(payload) - HEADER_LENGTH:
            if forced or (ttl + hops <= MAX_UDP_TTL_HOPS
                          and _cut_short(kind, length, len(payload))):
                return [self._undecoded(pkt, "truncated" if length > len(payload) - HEADER_LENGTH
                                        else "malformed", 19)]
            return None
        try:
            d = DescriptorLenient.parse(payload)
        except ParseError as e:
            return [self._undecoded(pkt, "malformed", e.offset or 0, e.reason)]
        return [descriptor_record(d, transport="udp", src=pkt.src, dst=pkt.dst, offset=None,
                                  length=len(payload), frame=pkt.frame, time=pkt.time)]

    @staticmethod
    def _undecoded(pkt: Packet, reason: str, at: int, detail: str = "") -> Record:
        return undecoded(protocol=PROTOCOL, transport="udp", src=pkt.src, dst=pkt.dst,
                         reason=reason, length=len(pkt.payload),
                         frames=(pkt.frame, pkt.frame, 1), time=pkt.time, at=at, detail=detail)


def gnutella_stream(*, src: str, dst: str, transport: str = "tcp",
                    peer: GnutellaStream | None = None) -> GnutellaStream:
    """The ``gnutella`` descriptor's stream decoder factory (``peer``: the other direction)."""
    stream = GnutellaStream(transport=transport, src=src, dst=dst)
    if peer is not None:
        stream.peer, peer.peer = peer, stream
    return stream


class GnutellaStream:
    """One direction of a Gnutella connection (``peer`` is the other direction)."""

    def __init__(self, *, transport: str, src: str, dst: str) -> None:
        self.transport = transport
        self.src = src
        self.dst = dst
        self.mode: str | None = None  # "gnutella" or "http", decided by the first bytes
        self.reader: StreamReader | None = None
        self.chunks = StreamBuffer()  # frame attribution (bytes are only kept for HTTP)
        self.peer: GnutellaStream | None = None
        self.skipped = 0
        self.failed: ParseError | None = None
        self._body_left = 0
        self._body_hash: Any = None
        self._body_length = 0
        #: gnet-TLS-upgrade: the TLS records after the switch, one ``undecoded`` run
        #: (``encrypted``, ``encryption: TLS``) with their byte count.
        self.tls = UndecodedRun(protocol=PROTOCOL, transport=transport, src=src, dst=dst)
        #: The records of the descriptors, made as the reader frames them.
        self.records = DescriptorRecords(transport=transport, src=src, dst=dst)

    @property
    def summary_runs(self) -> bool:
        """Whether runs of summary lines stand for descriptor records
        (:mod:`p2pkit.capture.summary_runs`; set by the dissector in summary mode)."""
        return self.records.runs

    @summary_runs.setter
    def summary_runs(self, value: bool) -> None:
        self.records.runs = value

    @property
    def fields_read(self) -> bool:
        """Whether every record's fields will be read (``-V``, JSON; set by the dissector):
        descriptors are then decoded as they are framed
        (:mod:`p2pkit.gnutella.decoded_records`)."""
        return self.records.fields_read

    @fields_read.setter
    def fields_read(self, value: bool) -> None:
        self.records.fields_read = value

    # -- input ------------------------------------------------------------------------------

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterable[Record]:
        if self.mode == "gnutella" and self.failed is None:  # (the bytes are the reader's)
            return self._gnutella(offset, data, frame, time)
        return self._data(offset, data, frame, time)

    def _data(self, offset: int, data: bytes, frame: int, time: float) -> Iterator[Record]:
        if self.failed is not None:
            self.skipped += len(data)
            return
        self.chunks.append(offset, data, frame, time)
        if self.mode is None:
            head = bytes(self.chunks.data[:8])
            if head.startswith(b"GNUTELLA") or b"GNUTELLA".startswith(head):
                self.mode = "gnutella"
                self.reader = StreamReader(strict=False, split=self.records.split)
            else:
                self.mode = "http"
        if self.mode == "gnutella":
            yield from self._gnutella(offset, data, frame, time)
        else:
            yield from self._http()

    def gap(self, offset: int, length: int) -> None:
        """Lost bytes: a Gnutella stream (often deflated) cannot be resumed safely."""
        self.skipped += length
        self.failed = ParseError(f"{length} bytes lost from the capture", protocol=PROTOCOL,
                                 offset=offset)
        self.chunks.reset(offset + length)

    def end(self) -> Iterator[Record]:
        if self.mode == "http" and self._body_left == 0 and self.chunks.data:
            yield from self._http(at_end=True)
        self.skipped += len(self.chunks)
        if self.reader is not None and self.failed is None:
            self.skipped += self.reader.buffered  # a descriptor cut off by the end
        yield from self.tls.close()

    # -- records ----------------------------------------------------------------------------

    def _record(self, message: str, fields: dict[str, Any], offset: int, length: int,
                frame: int, time: float, value: Any = None) -> Record:
        return Record(frame=frame, time=time, transport=self.transport, src=self.src,
                      dst=self.dst, protocol=PROTOCOL, message=message, fields=fields,
                      offset=offset, length=length, value=value)

    def _gnutella(self, offset: int, data: bytes, frame: int, time: float) -> list[Record]:
        assert self.reader is not None
        records = self.records
        records.frame, records.time = frame, time
        made = records.made
        opaque = self.reader.opaque_bytes
        try:
            frames = self.reader.feed(data)
        except ParseError as e:
            self.failed = e
            frames = []
        grown = self.reader.opaque_bytes - opaque
        if grown and self.reader.state == TLS:  # the bytes after the switch end this chunk
            self.tls.add(offset + len(data) - grown, grown, frame, time, reason="encrypted",
                         encryption="TLS")
        if self.chunks.data:
            self.chunks.skip(len(self.chunks))  # the reader keeps its own buffer
        if records.made - made == len(frames):  # every frame is a descriptor's record
            return frames  # type: ignore[return-value]
        out: list[Record] = []
        for f in frames:
            kind = type(f)
            if kind is DescriptorFrame:  # parsed by the reader (a deviation, a bound)
                out.append(descriptor_record(
                    f.descriptor, transport=self.transport, src=self.src, dst=self.dst,
                    offset=f.offset, length=len(f.data), frame=frame, time=time,
                    base=f.offset))
            elif kind is HandshakeFrame:
                hs = f.handshake
                fields = {"kind": hs.kind, "version": hs.version,
                          "headers": [[name, value] for name, value in hs.headers]}
                if hs.status_code is not None:
                    fields["status"] = hs.status_code
                    fields["reason"] = hs.reason
                record = self._record("handshake", fields, f.offset, len(f.data), frame, time,
                                      hs)
                record.deviations = deviations_of(hs, base=f.offset)
                out.append(record)
            else:  # a descriptor's record, parsed when read (DescriptorRecords.split)
                out.append(f)
        return out

    def _http(self, at_end: bool = False) -> Iterator[Record]:
        buf = self.chunks
        while buf.data:
            if self._body_left:
                n = min(self._body_left, len(buf.data))
                self._body_hash.update(bytes(buf.data[:n]))
                self._body_left -= n
                self._body_length += n
                frame, time = buf.frame_of(n - 1)
                start = buf.start
                buf.skip(n)
                if self._body_left == 0:
                    yield self._record("http_body", {
                        "length": self._body_length, "sha1": self._body_hash.hexdigest()},
                        start, n, frame, time)
                continue
            data = bytes(buf.data)
            giv = _GIV.match(data)
            if giv:
                frame, time = buf.frame_of(giv.end() - 1)
                yield self._record("giv", {
                    "file_index": int(giv.group(1)), "servent_guid": giv.group(2).decode().lower(),
                    "file_name": giv.group(3).decode("utf-8", "replace")},
                    buf.start, giv.end(), frame, time)
                buf.skip(giv.end())
                continue
            try:
                end = http1.head_end(data, max_size=MAX_HTTP_HEAD, protocol=PROTOCOL)
            except LimitExceeded as e:
                self.failed = e.relocated(base=buf.start)
                return
            if end is None:
                if at_end:
                    self.failed = ParseError("not HTTP", protocol=PROTOCOL, offset=buf.start)
                return
            try:
                head = http1.parse_head(data[:end], max_size=MAX_HTTP_HEAD, folding=True,
                                        strict=False, protocol=PROTOCOL)
            except ParseError as e:  # not even lenient HTTP (a NUL in the start line)
                self.failed = e.relocated(base=buf.start)
                self.skipped += len(buf.data)
                buf.skip(len(buf.data))
                return
            headers = [[name, value] for name, value in head.headers]
            frame, time = buf.frame_of(end - 1)
            deviations = deviations_of(head)
            if head.start_line.startswith("HTTP/"):
                try:
                    status = http1.parse_status_line(head.start_line, protocol=PROTOCOL)
                    version, code, reason = status.version, status.status, status.reason
                except ParseError as e:
                    deviations.append(_start_line_deviation(e))
                    version, _, rest = head.start_line.partition(" ")
                    code, _, reason = rest.partition(" ")
                    code = int(code) if code.isdigit() else code
                fields = {"status": code, "reason": reason, "headers": headers}
                message = "http_response"
                length = head.headers.get("content-length")
                self._body_left = (int(length) if length and length.isdigit() and len(length) <= 15
                                   else 0)
            else:
                try:
                    request = http1.parse_request_line(head.start_line, protocol=PROTOCOL)
                    method, target, version = request.method, request.target, request.version
                except ParseError as e:
                    deviations.append(_start_line_deviation(e))
                    method, _, rest = head.start_line.partition(" ")
                    target, _, version = rest.rpartition(" ")
                fields = {"method": method, "target": target, "headers": headers}
                message = "http_request"
                self._body_left = 0
            fields["version"] = version
            record = self._record(message, fields, buf.start, end, frame, time)
            record.deviations = [replace(d, offset=buf.start + d.offset) for d in deviations]
            yield record
            buf.skip(end)
            self._body_hash = hashlib.sha1()
            self._body_length = 0


def _start_line_deviation(error: ParseError) -> Deviation:
    """A start line RFC 9112 §3/§4 would refuse, shown anyway (dissection)."""
    return Deviation(offset=0, rule="http/start-line", spec="RFC 9112 §3, §4",
                     message=error.reason)
