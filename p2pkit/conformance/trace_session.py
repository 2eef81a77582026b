"""One session out of a capture: which TCP connection or UDP flow, its frames, its turns.

A trace (:mod:`p2pkit.conformance.trace_manifest`) is one session between a *client* (the side
the harness plays) and a *server* (the endpoint under test). This module finds the sessions of
an endpoint in a capture (with the dissector, :func:`p2pkit.capture.dissect.dissect`, so the
protocol is recognised by content), reads one back as :class:`Turn` s (TCP: the reassembled
bytes each side sent before the other spoke, :mod:`p2pkit.capture.flows`; UDP: one datagram a
turn), and cuts it into a pcap of its own (:class:`~p2pkit.capture.pcap_writer.PcapWriter`).

Only the dissector's readers, reassembly and decoders touch the bytes: no second parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from p2pkit.capture.dissect import Dissection
from p2pkit.capture.flows import StreamData, StreamEnd, StreamGap, TcpReassembler
from p2pkit.capture.packets import Packet, decode_frame
from p2pkit.capture.pcap_writer import PcapWriter
from p2pkit.capture.readers import CaptureReader
from p2pkit.errors import P2PKitError

__all__ = [
    "HARNESS_PROTOCOLS",
    "MAX_SESSION_BYTES",
    "MAX_TURNS",
    "SessionInfo",
    "TraceError",
    "Turn",
    "cut_session",
    "find_sessions",
    "read_turns",
]

#: Dissector protocol name -> the conformance protocol whose target a session judges.
HARNESS_PROTOCOLS = {"bt-dht": "dht", "bt-tracker": "tracker", "bittorrent": "bittorrent",
                     "gnutella": "gnutella"}
#: Bytes of one session a trace may hold (both directions together).
MAX_SESSION_BYTES = 16 << 20
#: Turns (datagrams, or runs of one side's bytes) of one session.
MAX_TURNS = 5000


class TraceError(P2PKitError):
    """A trace or capture that cannot be used: ``str()`` is the one-line reason."""


@dataclass
class SessionInfo:
    """One TCP connection or UDP flow between ``client`` and ``server`` (``HOST:PORT``)."""

    transport: str
    client: str
    server: str
    #: The dissector's protocol name (``bt-dht``, ``bittorrent``, ``gnutella`` …).
    dissected: str
    first_frame: int
    messages: int = 0

    @property
    def protocol(self) -> str | None:
        """The conformance protocol, or None when the harness cannot replay it."""
        return HARNESS_PROTOCOLS.get(self.dissected)

    def holds(self, pkt: Packet) -> bool:
        return pkt.transport == self.transport and {pkt.src, pkt.dst} == {
            self.client, self.server}


@dataclass
class Turn:
    """Bytes one side sent before the other spoke (one datagram over UDP)."""

    side: str  # "client" or "server"
    data: bytes
    frame: int
    time: float
    frames: list[int] = field(default_factory=list)


def _capture_error(source: Any, error: P2PKitError) -> TraceError:
    return TraceError(f"{source}: not a readable capture ({error})")


def find_sessions(source: str | Path | BinaryIO, endpoint: str) -> list[SessionInfo]:
    """The sessions of ``endpoint`` (``HOST:PORT``) in a capture, in order of their first
    message; :class:`TraceError` when the capture does not read at all."""
    sessions: dict[tuple[str, str, str], SessionInfo] = {}
    dissection = Dissection(source)
    try:
        for record in dissection:
            if endpoint not in (record.src, record.dst) or record.message == "undecoded":
                continue
            other = record.dst if record.src == endpoint else record.src
            key = (record.transport, other, endpoint)
            info = sessions.get(key)
            if info is None:
                info = sessions[key] = SessionInfo(record.transport, other, endpoint,
                                                   record.protocol, record.frame)
            info.messages += 1
    except P2PKitError as e:
        raise _capture_error(source, e) from None
    if dissection.error is not None and not sessions:
        raise _capture_error(source, dissection.error)
    return sorted((s for s in sessions.values() if s.transport in ("tcp", "udp")),
                  key=lambda s: s.first_frame)


def _packets(source: str | Path | BinaryIO, session: SessionInfo) -> Iterator[tuple[Any,
                                                                                    Packet]]:
    reader = CaptureReader(source)
    try:
        for frame in reader:
            pkt = decode_frame(frame)
            if pkt is not None and session.holds(pkt):
                yield frame, pkt
    finally:
        reader.close()
    if reader.error is not None:
        raise _capture_error(source, reader.error)


def read_turns(source: str | Path | BinaryIO, session: SessionInfo) -> list[Turn]:
    """The session's turns in capture order. Bounded: ``MAX_SESSION_BYTES`` and
    ``MAX_TURNS``; a TCP session the capture lost bytes of is refused (its replay would
    send something no client sent)."""
    turns: list[Turn] = []
    total = 0
    reassembler = TcpReassembler()

    def add(side: str, data: bytes, frame: int, time: float) -> None:
        nonlocal total
        total += len(data)
        if total > MAX_SESSION_BYTES:
            raise TraceError(f"session {session.client} ↔ {session.server}: more than "
                             f"{MAX_SESSION_BYTES} bytes (cut a shorter one)")
        if session.transport == "tcp" and turns and turns[-1].side == side:
            turns[-1].data += data
            turns[-1].frames.append(frame)
            return
        if len(turns) >= MAX_TURNS:
            raise TraceError(f"session {session.client} ↔ {session.server}: more than "
                             f"{MAX_TURNS} turns (cut a shorter one)")
        turns.append(Turn(side, data, frame, time, [frame]))

    def events(found: list[Any]) -> None:
        for event in found:
            if isinstance(event, StreamGap):
                raise TraceError(f"frame {event.frame}: the capture lost {event.length} bytes "
                                 f"of {event.src} → {event.dst}; a trace needs the whole "
                                 "session")
            if isinstance(event, StreamData):
                add("client" if event.src == session.client else "server", event.data,
                    event.frame, event.time)
            elif isinstance(event, StreamEnd):
                continue

    for _, pkt in _packets(source, session):
        if pkt.transport == "udp":
            add("client" if pkt.src == session.client else "server", pkt.payload, pkt.frame,
                pkt.time)
        else:
            events(reassembler.packet(pkt))
    events(reassembler.finish())
    return turns


def cut_session(source: str | Path | BinaryIO, session: SessionInfo, out: str | Path,
                *, last_frame: int | None = None) -> int:
    """Write the session's frames (up to ``last_frame`` of the source, if given) to the pcap
    ``out``; returns how many. Frames keep their bytes and times; the link type is the first
    frame's (a pcapng of several link types keeps the session's)."""
    writer: PcapWriter | None = None
    count = 0
    try:
        for frame, _ in _packets(source, session):
            if last_frame is not None and frame.number > last_frame:
                break
            if writer is None:
                writer = PcapWriter(out, frame.linktype)
            if frame.linktype != writer.linktype:
                continue
            writer.write(frame.data, frame.time, frame.original_length)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise TraceError(f"no frame of {session.client} ↔ {session.server} in {source}")
    return count
