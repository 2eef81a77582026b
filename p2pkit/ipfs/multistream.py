"""multistream-select 1.0: the schema of its messages and a sans-I/O negotiation core.

multistream-select.md §Protocol: "Every multistream message is a length-prefixed-message [...]
prepended by a varint that describes the size of the message" and "appended by a \\n character,
this character is included in the byte count". The dialer sends ``/multistream/1.0.0`` and the
protocol it wants; the listener echoes the header and either the protocol (accepted) or ``na``
("not available"). ``ls`` asks for the listener's protocols (§Listing), answered by one
length-prefixed message holding one length-prefixed line per protocol and a final ``\\n``.
libp2p negotiates this way on the raw connection (the security protocol), on the secured
connection (the muxer) and on every stream (libp2p connections spec §Protocol Negotiation).

>>> MultistreamMessage.build("/multistream/1.0.0").hex()
'132f6d756c746973747265616d2f312e302e300a'
>>> MultistreamMessage.parse(bytes.fromhex("036e610a"))
'na'
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import construct

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox, Untimed
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, RemoteProtocolError
from p2pkit.ipfs.varint import LengthPrefixed
from p2pkit.schema import Schema

__all__ = ["HEADER", "LS", "MAX_LINE_LENGTH", "MAX_PROPOSALS", "NA", "LsResponse",
           "MultistreamMessage", "MultistreamNegotiation", "NegotiationFailed",
           "ProtocolAgreed", "ProtocolList", "ProtocolRefused"]

#: "<multistream-header-for-multistream>" of version 1.0.0.
HEADER = "/multistream/1.0.0"
#: "Otherwise we return a na (not available) error".
NA = "na"
#: "A list message is simply: ls\\n".
LS = "ls"
#: Longest line (protocol id) accepted; go-multistream and js-libp2p refuse longer ones too.
MAX_LINE_LENGTH = 1024
#: Longest ``ls`` answer accepted.
MAX_LIST_LENGTH = 64 * 1024
#: Proposals a listener answers (and refusals a dialer accepts) before giving up: a peer
#: cycling through names forever is cut off.
MAX_PROPOSALS = 32


class _Line(construct.Adapter):
    """The bytes of one message as text without its newline (§Protocol, Note 2)."""

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        if not obj.endswith(b"\n"):
            raise ParseError("a multistream message ends with a newline", path="line")
        try:
            text = obj[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("a multistream message is UTF-8 text", path="line") from None
        if "\n" in text:
            raise ParseError("a newline inside a multistream message", path="line")
        return text

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        if "\n" in obj:
            raise construct.ExplicitError("a protocol id cannot contain a newline", path=path)
        return obj.encode("utf-8") + b"\n"


class _ProtocolList(construct.Construct):
    """The body of an ``ls`` answer: length-prefixed lines, then a lone ``\\n``."""

    def _parse(self, stream: Any, context: Any, path: str) -> list[str]:
        # the final "\n" is the last byte: a line whose length prefix is 10 also starts with
        # 0x0a, so the end is found by position, never by value
        data = construct.stream_read_entire(stream, path)
        if not data.endswith(b"\n"):
            raise ParseError("ls answer without its final newline", path="protocols")
        body = io.BytesIO(data[:-1])
        out: list[str] = []
        while body.tell() < len(data) - 1:
            out.append(_LINE._parsereport(body, context, path))
        return out

    def _build(self, obj: Iterable[str], stream: Any, context: Any, path: str) -> Any:
        for proto in obj:
            _LINE._build(proto, stream, context, path)
        construct.stream_write(stream, b"\n", 1, path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("variable", path=path)


_LINE = LengthPrefixed(_Line(construct.GreedyBytes), MAX_LINE_LENGTH)
#: One multistream message: varint length, UTF-8 text, newline (the length counts it).
MultistreamMessage = Schema(_LINE, protocol="multistream")
#: The answer to ``ls`` (§Listing): "<varint-total-response-size-in-bytes>", one
#: "<varint-protocol-length><multicodec-of-available-protocol>\\n" per protocol, then "\\n".
LsResponse = Schema(LengthPrefixed(_ProtocolList(), MAX_LIST_LENGTH), protocol="multistream")


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ProtocolAgreed(Event):
    """Both sides speak ``protocol`` from now on; ``rest`` holds the bytes that followed the
    negotiation (they belong to the protocol)."""

    protocol: str
    rest: bytes = b""


@dataclass(frozen=True, kw_only=True)
class ProtocolRefused(Event):
    """The listener answered ``na`` to ``protocol`` (the dialer tries its next one)."""

    protocol: str


@dataclass(frozen=True, kw_only=True)
class ProtocolList(Event):
    """The listener's answer to ``ls``."""

    protocols: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class NegotiationFailed(Event):
    """No protocol could be agreed: the dialer ran out of proposals (or the listener was
    offered too many). The connection or stream should be closed."""

    reason: str


@dataclass
class MultistreamNegotiation(Outbox, Untimed):
    """One multistream-select negotiation, sans-I/O, as dialer or listener.

    A dialer proposes ``protocols`` in order, sending the header and its first proposal in one
    write (§Implementation Recommendations), and falls back to the next on ``na``. A listener
    accepts the first proposal found in ``protocols``, answers ``na`` otherwise and ``ls`` with
    its list. ``lazy`` (dialer): after sending, do not wait for the echo before writing protocol
    data (not used by p2pkit's own stack, which waits).

    >>> dialer = MultistreamNegotiation(dialer=True, protocols=["/noise"])
    >>> listener = MultistreamNegotiation(dialer=False, protocols=["/tls/1.0.0", "/noise"])
    >>> listener.receive_data(dialer.data_to_send(), 0.0)
    >>> listener.next_event()
    ProtocolAgreed(protocol='/noise', rest=b'')
    >>> dialer.receive_data(listener.data_to_send(), 0.0)
    >>> dialer.next_event()
    ProtocolAgreed(protocol='/noise', rest=b'')
    """

    dialer: bool
    protocols: Sequence[str]
    #: Dialer only: ask for the listener's list (``ls``) before proposing.
    list_first: bool = False
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _out: bytearray = field(default_factory=bytearray, repr=False)
    _events: list[Event] = field(default_factory=list, repr=False)
    _header_seen: bool = False
    _header_sent: bool = False
    _next: int = 0
    _rounds: int = 0
    _awaiting_list: bool = False
    done: bool = False

    def __post_init__(self) -> None:
        if not self.protocols and not (self.dialer and self.list_first):
            raise LocalProtocolError("multistream-select needs at least one protocol")
        for proto in self.protocols:
            MultistreamMessage.build(proto)  # a protocol id that cannot be sent fails here
        if self.dialer:
            self._write(HEADER)
            if self.list_first:
                self._awaiting_list = True
                self._write(LS)
            else:
                self._write(self.protocols[0])

    # -- the sans-I/O surface ----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer (``b""``: it closed before agreeing)."""
        if self.done:
            raise LocalProtocolError("negotiation is over: pass further bytes to the protocol")
        if not data:
            self._fail("the peer closed the stream during negotiation")
            return
        self._buffer += data
        self._process()

    def next_event(self) -> Event | NeedData:
        """The next ``ProtocolAgreed``, ``ProtocolRefused``, ``ProtocolList``
        or ``NegotiationFailed``, or :data:`~p2pkit.core.NEED_DATA`."""
        return self._events.pop(0) if self._events else NEED_DATA

    def send(self, event: Event, now: float) -> bytes:
        raise LocalProtocolError("multistream-select sends by itself; read data_to_send()")


    # -- internals ---------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        self._out += MultistreamMessage.build(line)

    def _fail(self, reason: str) -> None:
        self.done = True
        self._events.append(NegotiationFailed(reason=reason))

    def _read(self) -> str | None:
        """The next complete message, or None."""
        stream = io.BytesIO(self._buffer)
        try:
            line = MultistreamMessage.parse_stream(stream)
        except LimitExceeded as e:
            raise RemoteProtocolError(f"multistream: {e}") from None
        except ParseError as e:
            if "truncated" in e.reason:
                return None
            raise RemoteProtocolError(f"multistream: {e}") from None
        del self._buffer[: stream.tell()]
        return line

    def _read_list(self) -> tuple[str, ...] | None:
        stream = io.BytesIO(self._buffer)
        try:
            protocols = LsResponse.parse_stream(stream)
        except ParseError as e:
            if "truncated" in e.reason:
                return None
            raise RemoteProtocolError(f"multistream ls: {e}") from None
        del self._buffer[: stream.tell()]
        return tuple(protocols)

    def _process(self) -> None:
        while not self.done:
            if self._header_seen and self._awaiting_list:
                listed = self._read_list()
                if listed is None:
                    return
                self._awaiting_list = False
                self._events.append(ProtocolList(protocols=listed))
                if not self.protocols:
                    self._fail("listing only")
                    return
                self._write(self.protocols[0])
                continue
            line = self._read()
            if line is None:
                return
            if not self._header_seen:
                if line != HEADER:
                    raise RemoteProtocolError(f"multistream: expected {HEADER!r}, got {line!r}")
                self._header_seen = True
                if not self.dialer and not self._header_sent:
                    self._header_sent = True
                    self._write(HEADER)
                continue
            if self.dialer:
                self._dialer_line(line)
            else:
                self._listener_line(line)

    def _dialer_line(self, line: str) -> None:
        proposed = self.protocols[self._next]
        if line == proposed:
            self.done = True
            self._events.append(ProtocolAgreed(protocol=proposed, rest=bytes(self._buffer)))
            self._buffer.clear()
        elif line == NA:
            self._events.append(ProtocolRefused(protocol=proposed))
            self._next += 1
            if self._next >= len(self.protocols):
                self._fail(f"the listener supports none of {list(self.protocols)}")
            else:
                self._write(self.protocols[self._next])
        else:
            raise RemoteProtocolError(f"multistream: answer {line!r} to {proposed!r}")

    def _listener_line(self, line: str) -> None:
        self._rounds += 1
        if self._rounds > MAX_PROPOSALS:
            self._fail(f"more than {MAX_PROPOSALS} proposals")
            return
        if line == LS:
            self._out += LsResponse.build(list(self.protocols))
        elif line in self.protocols:
            self._write(line)
            self.done = True
            self._events.append(ProtocolAgreed(protocol=line, rest=bytes(self._buffer)))
            self._buffer.clear()
        else:
            self._write(NA)
