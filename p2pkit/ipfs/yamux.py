"""yamux: the 12-byte frame header and a sans-I/O session core (libp2p yamux spec).

§Framing: "Version (8 bits), Type (8 bits), Flags (16 bits), StreamID (32 bits), Length (32
bits) [...] All fields are encoded in network order". Types: 0 Data, 1 Window Update, 2 Ping,
3 Go Away; flags SYN 1, ACK 2, FIN 4, RST 8. "The client side should use odd ID's, and the
server even [...] the 0 ID is reserved to represent the session". §Flow Control: "each stream
[starts] with a 256KiB window size [...] Both sides should track the number of bytes sent in
Data frames only". §Implementation considerations: "SHOULD at most allow an ACK backlog of 256
streams".

>>> YamuxHeader.build({"version": 0, "type": "window_update", "flags": {"SYN": True},
...                    "stream_id": 1, "length": 0}).hex()
'000100010000000100000000'
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

import construct
from construct import Const, Int8ub, Int16ub, Int32ub, Struct

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox, Untimed
from p2pkit.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from p2pkit.schema import NamedBits, Schema

__all__ = ["HEADER_LENGTH", "INITIAL_WINDOW", "MAX_STREAMS", "PROTOCOL_ID", "CloseStream",
           "GoAway", "GoAwayCode", "GoAwayReceived", "Ping", "PingReceived", "PongReceived",
           "ResetStream", "SendData", "StreamData", "StreamEnded", "StreamOpened",
           "StreamReset", "YamuxHeader", "YamuxSession"]

#: The multistream id of yamux.
PROTOCOL_ID = "/yamux/1.0.0"
#: "each header has a 12 byte overhead".
HEADER_LENGTH = 12
#: "each stream with a 256KiB window size".
INITIAL_WINDOW = 256 * 1024
#: Largest send window p2pkit uses (go-yamux's default maximum is 16 MiB). libp2p-yamux
#: §Flow Control sets no maximum ("Yamux can be configured to provide a larger limit"): credit
#: granted past it is ignored, never an error (py-libp2p 0.8.1's auto-tuning grants ~17 MiB).
MAX_WINDOW = 16 * 1024 * 1024
#: "SHOULD at most allow an ACK backlog of 256 streams"; also p2pkit's cap on open streams
#: per session (inbound beyond it are reset).
MAX_STREAMS = 256
#: Largest data frame written: a frame and its header fit one Noise transport message.
MAX_FRAME_DATA = 65535 - 16 - HEADER_LENGTH


class FrameType(enum.IntEnum):
    """§Type Field."""

    data = 0
    window_update = 1
    ping = 2
    go_away = 3


class GoAwayCode(enum.IntEnum):
    """§Session termination: "the Length should be set to one of the following"."""

    normal = 0
    protocol_error = 1
    internal_error = 2


# fmt: off
#: The 12-byte frame header (§Framing); a data frame's payload follows it.
YamuxHeader = Schema(Struct(
    "version" / Const(0, Int8ub) * "always 0",
    "type" / construct.Enum(Int8ub, FrameType),
    "flags" / NamedBits(Int16ub, SYN=0x1, ACK=0x2, FIN=0x4, RST=0x8),
    "stream_id" / Int32ub * "odd: opened by the client, even: by the server, 0: the session",
    "length" / Int32ub * "data: payload bytes; window update: delta; ping: opaque; go away: code",
), protocol="yamux")
# fmt: on


# -- events the application sends -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendData(Event):
    """Write ``data`` on ``stream_id`` (held back while the peer's window is closed)."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, kw_only=True)
class CloseStream(Event):
    """Half-close ``stream_id`` (FIN) once its queued data is written."""

    stream_id: int


@dataclass(frozen=True, kw_only=True)
class ResetStream(Event):
    """Reset ``stream_id`` (RST) at once."""

    stream_id: int


@dataclass(frozen=True, kw_only=True)
class Ping(Event):
    """Send a ping with ``opaque`` (echoed back)."""

    opaque: int

    def __post_init__(self) -> None:
        if not 0 <= self.opaque < 1 << 32:  # the Length field carries it
            raise LocalProtocolError("a yamux ping carries a 32-bit opaque value")


@dataclass(frozen=True, kw_only=True)
class GoAway(Event):
    """End the session with ``code``."""

    code: GoAwayCode = GoAwayCode.normal


# -- events the session reports ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StreamOpened(Event):
    """The peer opened ``stream_id`` (already acknowledged)."""

    stream_id: int


@dataclass(frozen=True, kw_only=True)
class StreamData(Event):
    """Bytes received on ``stream_id``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, kw_only=True)
class StreamEnded(Event):
    """The peer half-closed ``stream_id`` (FIN)."""

    stream_id: int


@dataclass(frozen=True, kw_only=True)
class StreamReset(Event):
    """``stream_id`` was reset (by the peer, or refused)."""

    stream_id: int


@dataclass(frozen=True, kw_only=True)
class PingReceived(Event):
    """The peer pinged (the session answered by itself)."""

    opaque: int


@dataclass(frozen=True, kw_only=True)
class PongReceived(Event):
    """The answer to our ``Ping``."""

    opaque: int


@dataclass(frozen=True, kw_only=True)
class GoAwayReceived(Event):
    """The peer is ending the session."""

    code: int


@dataclass
class _Stream:
    id: int
    send_window: int = INITIAL_WINDOW
    recv_window: int = INITIAL_WINDOW
    pending: deque[bytes] = field(default_factory=deque)
    fin_queued: bool = False
    fin_sent: bool = False
    fin_received: bool = False
    syn_sent: bool = False
    ack_pending: bool = False


class YamuxSession(Outbox, Untimed):
    """One yamux session over a reliable stream, sans-I/O.

    ``client``: the side that dialed (odd stream ids). ``max_streams``: streams open at once
    (both directions; inbound ones beyond it are reset). Received data is counted as consumed
    when its :class:`StreamData` event is handed out, and a window update restoring the window
    is sent once half of it is used.
    """

    def __init__(self, *, client: bool, max_streams: int = MAX_STREAMS) -> None:
        self.client = client
        self.max_streams = max_streams
        self._next_id = 1 if client else 2
        self.streams: dict[int, _Stream] = {}
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self.go_away_sent = self.go_away_received = False

    # -- the sans-I/O surface ----------------------------------------------------------------

    def open_stream(self) -> int:
        """Open a stream; its SYN goes out with the first write (or now, as a window update).
        Returns the stream id."""
        if self.go_away_sent or self.go_away_received:
            raise LocalProtocolError("yamux: the session is going away")
        if len(self.streams) >= self.max_streams:
            raise LimitExceeded(f"yamux: {self.max_streams} streams already open",
                                protocol="yamux")
        sid = self._next_id
        self._next_id += 2
        self.streams[sid] = _Stream(sid, syn_sent=True)
        self._header("window_update", sid, 0, SYN=True)
        return sid

    def send(self, event: Event, now: float) -> bytes:
        """Encode ``event`` (``SendData``, ``CloseStream``, ``ResetStream``,
        ``Ping``, ``GoAway``) and return everything ready to write."""
        if isinstance(event, SendData):
            stream = self._stream(event.stream_id)
            if stream.fin_queued:
                raise LocalProtocolError(f"yamux: stream {event.stream_id} is closed for writing")
            for start in range(0, len(event.data), MAX_FRAME_DATA):
                stream.pending.append(event.data[start:start + MAX_FRAME_DATA])
            self._flush(stream)
        elif isinstance(event, CloseStream):
            stream = self._stream(event.stream_id)
            stream.fin_queued = True
            self._flush(stream)
        elif isinstance(event, ResetStream):
            self._stream(event.stream_id)
            self._header("window_update", event.stream_id, 0, RST=True)
            self.streams.pop(event.stream_id, None)
        elif isinstance(event, Ping):
            self._header("ping", 0, event.opaque, SYN=True)
        elif isinstance(event, GoAway):
            self.go_away_sent = True
            self._header("go_away", 0, int(event.code))
        else:
            raise LocalProtocolError(f"yamux does not send {type(event).__name__}")
        return self.data_to_send()

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the underlying (secured) connection."""
        self._buffer += data
        while len(self._buffer) >= HEADER_LENGTH:
            header = YamuxHeader.parse(bytes(self._buffer[:HEADER_LENGTH]))
            payload_length = header.length if header.type == "data" else 0
            if header.type == "data" and payload_length > self._limit(header.stream_id):
                raise RemoteProtocolError(
                    f"yamux: {payload_length} bytes on stream {header.stream_id} exceed its "
                    f"receive window")
            if len(self._buffer) < HEADER_LENGTH + payload_length:
                return
            payload = bytes(self._buffer[HEADER_LENGTH:HEADER_LENGTH + payload_length])
            del self._buffer[:HEADER_LENGTH + payload_length]
            self._frame(header, payload)

    def next_event(self) -> Event | NeedData:
        if not self._events:
            return NEED_DATA
        event = self._events.popleft()
        if isinstance(event, StreamData):
            self._consumed(event.stream_id, len(event.data))
        return event


    def send_window(self, stream_id: int) -> int:
        """Bytes the peer lets us send on ``stream_id`` now."""
        return self._stream(stream_id).send_window

    def pending_bytes(self, stream_id: int) -> int:
        """Bytes queued on ``stream_id`` waiting for the peer's window."""
        return sum(len(c) for c in self._stream(stream_id).pending)

    # -- internals ---------------------------------------------------------------------------

    def _header(self, type_: str, sid: int, length: int, **flags: bool) -> None:
        self._out += YamuxHeader.build({"version": 0, "type": type_, "flags": flags,
                                        "stream_id": sid, "length": length})

    def _stream(self, sid: int) -> _Stream:
        try:
            return self.streams[sid]
        except KeyError:
            raise LocalProtocolError(f"yamux: no open stream {sid}") from None

    def _limit(self, sid: int) -> int:
        stream = self.streams.get(sid)
        return stream.recv_window if stream is not None else INITIAL_WINDOW

    def _ack_flags(self, stream: _Stream) -> dict[str, bool]:
        if stream.ack_pending:
            stream.ack_pending = False
            return {"ACK": True}
        return {}

    def _flush(self, stream: _Stream) -> None:
        while stream.pending and stream.send_window > 0:
            chunk = stream.pending.popleft()
            if len(chunk) > stream.send_window:
                chunk, rest = chunk[: stream.send_window], chunk[stream.send_window:]
                stream.pending.appendleft(rest)
            stream.send_window -= len(chunk)
            fin = stream.fin_queued and not stream.pending
            flags = self._ack_flags(stream)
            if fin:
                flags["FIN"] = True
                stream.fin_sent = True
            self._header("data", stream.id, len(chunk), **flags)
            self._out += chunk
        if stream.fin_queued and not stream.pending and not stream.fin_sent:
            stream.fin_sent = True
            self._header("window_update", stream.id, 0, FIN=True, **self._ack_flags(stream))
        self._maybe_forget(stream)

    def _maybe_forget(self, stream: _Stream) -> None:
        if stream.fin_sent and stream.fin_received:
            self.streams.pop(stream.id, None)  # per-stream state freed once both sides closed

    def _consumed(self, sid: int, size: int) -> None:
        stream = self.streams.get(sid)
        if stream is None or stream.fin_received:
            return
        if stream.recv_window <= INITIAL_WINDOW // 2:
            delta = INITIAL_WINDOW - stream.recv_window
            stream.recv_window = INITIAL_WINDOW
            self._header("window_update", sid, delta, **self._ack_flags(stream))

    def _frame(self, header: construct.Container, payload: bytes) -> None:
        flags, sid = header.flags, header.stream_id
        if header.type == "ping":
            if flags.SYN:
                self._header("ping", 0, header.length, ACK=True)
                self._events.append(PingReceived(opaque=header.length))
            elif flags.ACK:
                self._events.append(PongReceived(opaque=header.length))
            return
        if header.type == "go_away":
            self.go_away_received = True
            self._events.append(GoAwayReceived(code=header.length))
            return
        if sid == 0:
            raise RemoteProtocolError("yamux: data or window update on stream 0")
        stream = self.streams.get(sid)
        if flags.SYN:
            if stream is not None:
                raise RemoteProtocolError(f"yamux: SYN for stream {sid}, already open")
            if (sid % 2 == 1) == self.client:
                raise RemoteProtocolError(f"yamux: the peer opened stream {sid} of our parity")
            if self.go_away_sent or len(self.streams) >= self.max_streams:
                self._header("window_update", sid, 0, RST=True)  # refused: cap reached
                return
            stream = self.streams[sid] = _Stream(sid, ack_pending=True)
            self._events.append(StreamOpened(stream_id=sid))
            self._header("window_update", sid, 0, **self._ack_flags(stream))
        if stream is None:
            return  # a frame for a stream already reset or forgotten: dropped (RST race)
        if flags.RST:
            self.streams.pop(sid, None)
            self._events.append(StreamReset(stream_id=sid))
            return
        if header.type == "window_update":
            # more credit than MAX_WINDOW is legal (no maximum in the spec) and harmless: we
            # only send less than we may
            stream.send_window = min(stream.send_window + header.length, MAX_WINDOW)
            self._flush(stream)
        elif payload:
            if stream.fin_received:
                raise RemoteProtocolError(f"yamux: data on stream {sid} after its FIN")
            stream.recv_window -= len(payload)
            self._events.append(StreamData(stream_id=sid, data=payload))
        if flags.FIN:
            stream.fin_received = True
            self._events.append(StreamEnded(stream_id=sid))
            self._maybe_forget(stream)
