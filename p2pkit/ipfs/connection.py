"""A libp2p connection, sans-I/O: multistream → Noise → multistream → yamux → streams.

libp2p connections spec §Upgrading connections: a raw TCP connection negotiates its security
protocol with multistream-select (p2pkit offers ``/noise``), then, on the secured channel, its
stream multiplexer (``/yamux/1.0.0``); every yamux stream then negotiates its own protocol with
multistream-select again (§Opening new streams over a connection). This core composes the cores
of those layers (:mod:`~p2pkit.ipfs.multistream`, :mod:`~p2pkit.ipfs.noise`,
:mod:`~p2pkit.ipfs.yamux`) and reports what the application cares about: the authenticated
peer, streams with the protocol they agreed on, and their bytes.

Randomness (the X25519 secrets) comes from the ``random.Random`` given to it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox, Untimed
from p2pkit.errors import LocalProtocolError, RemoteProtocolError
from p2pkit.ipfs import multistream, noise, yamux
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["ConnectionEstablished", "ConnectionFailed", "Libp2pConnection", "StreamClosed",
           "StreamData", "StreamNegotiated", "StreamRefused"]


@dataclass(frozen=True, kw_only=True)
class ConnectionEstablished(Event):
    """Noise authenticated the peer and yamux is running."""

    remote_peer_id: PeerId
    remote_public_key: bytes


@dataclass(frozen=True, kw_only=True)
class ConnectionFailed(Event):
    """The upgrade failed (no common security or muxer protocol); close the socket."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class StreamNegotiated(Event):
    """Stream ``stream_id`` speaks ``protocol`` (``local``: we opened it)."""

    stream_id: int
    protocol: str
    local: bool


@dataclass(frozen=True, kw_only=True)
class StreamRefused(Event):
    """Stream ``stream_id`` could not agree on a protocol (or was reset while negotiating)."""

    stream_id: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class StreamData(Event):
    """Protocol bytes on a negotiated stream."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, kw_only=True)
class StreamClosed(Event):
    """The peer half-closed (``reset=False``) or reset the stream."""

    stream_id: int
    reset: bool = False


class Libp2pConnection(Outbox, Untimed):
    """One libp2p connection over a reliable byte stream (TCP), sans-I/O.

    ``initiator``: we dialed. ``protocols``: the stream protocols we accept from the peer.
    ``offer_muxers``: announce ``/yamux/1.0.0`` in the Noise payload (inlined muxer
    negotiation); without it (or when the peer offers none) the muxer is negotiated with
    multistream-select on the secured channel.
    ``expected_peer``: for a dialer, the peer id the multiaddr named (another identity is
    refused). Bytes for the socket come from :meth:`~p2pkit.core.Outbox.data_to_send`; the application opens
    streams with :meth:`open_stream` and writes with :meth:`send_stream`.
    """

    def __init__(self, *, initiator: bool, identity: Ed25519Identity, rng: random.Random,
                 protocols: Sequence[str] = (), expected_peer: PeerId | None = None,
                 max_streams: int = yamux.MAX_STREAMS, offer_muxers: bool = True) -> None:
        self.initiator = initiator
        self.identity = identity
        self.protocols = tuple(protocols)
        self.max_streams = max_streams
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._security = multistream.MultistreamNegotiation(dialer=initiator,
                                                            protocols=[noise.PROTOCOL_ID])
        self._noise = noise.NoiseSession(
            initiator=initiator, identity=identity, static_secret=rng.randbytes(32),
            ephemeral_secret=rng.randbytes(32), expected_peer=expected_peer,
            stream_muxers=(yamux.PROTOCOL_ID,) if offer_muxers else ())
        self._noise_started = False
        self._muxer_negotiation: multistream.MultistreamNegotiation | None = None
        self.yamux: yamux.YamuxSession | None = None
        #: stream id -> its negotiation, while it runs.
        self._negotiating: dict[int, multistream.MultistreamNegotiation] = {}
        #: stream id -> the protocol it agreed on.
        self.stream_protocols: dict[int, str] = {}
        self.remote_peer_id: PeerId | None = None
        #: The muxer was chosen from the Noise payloads' stream_muxers, not by multistream.
        self.muxer_inlined = False
        self.closed = False
        self._out += self._security.data_to_send()

    # -- the sans-I/O surface ----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket (``b""``: the peer closed)."""
        if self.closed:
            return
        if not data:
            self.closed = True
            return
        if not self._noise_started:
            self._security.receive_data(data, now)
            self._out += self._security.data_to_send()
            for event in iter(self._security.next_event, NEED_DATA):
                if isinstance(event, multistream.ProtocolAgreed):
                    self._noise_started = True
                    self._out += self._noise.data_to_send()  # initiator's message 1
                    if event.rest:
                        self._receive_noise(event.rest, now)
                elif isinstance(event, multistream.NegotiationFailed):
                    self._fail(event.reason)
            return
        self._receive_noise(data, now)

    def next_event(self) -> Event | NeedData:
        return self._events.popleft() if self._events else NEED_DATA

    def send(self, event: Event, now: float) -> bytes:
        """``yamux.SendData``, ``yamux.CloseStream``, ``yamux.ResetStream`` or
        ``yamux.Ping`` on the established connection; returns the bytes to write."""
        if self.yamux is None:
            raise LocalProtocolError("libp2p: the connection is not established yet")
        if isinstance(event, yamux.SendData) and event.stream_id in self._negotiating:
            raise LocalProtocolError(f"stream {event.stream_id} is still negotiating")
        self._secure(self.yamux.send(event, now))
        return self.data_to_send()

    def open_stream(self, protocols: Sequence[str], now: float) -> int:
        """Open a stream proposing ``protocols`` in order; ``StreamNegotiated`` (or
        ``StreamRefused``) follows."""
        if self.yamux is None:
            raise LocalProtocolError("libp2p: the connection is not established yet")
        sid = self.yamux.open_stream()
        negotiation = multistream.MultistreamNegotiation(dialer=True, protocols=list(protocols))
        self._negotiating[sid] = negotiation
        self._secure(self.yamux.send(
            yamux.SendData(stream_id=sid, data=negotiation.data_to_send()), now))
        return sid

    def send_stream(self, stream_id: int, data: bytes, now: float) -> bytes:
        """Write ``data`` on a negotiated stream (shorthand for :meth:`send`)."""
        return self.send(yamux.SendData(stream_id=stream_id, data=data), now)


    @property
    def noise_keys(self) -> tuple[bytes, bytes] | None:
        """``(send key, receive key)`` of the Noise session once established (keylogs)."""
        return self._noise.keys

    def noise_secrets(self) -> tuple[bytes, bytes, bytes, bytes] | None:
        """``(initiator's ephemeral key, initiator-to-responder key, responder-to-initiator
        key, handshake hash)`` once the Noise handshake is over: a key log line's secrets
        (:mod:`p2pkit.ipfs.noise_keylog`); None before."""
        keys = self._noise.transport_keys()
        if keys is None:
            return None
        return (self._noise.initiator_ephemeral, *keys, self._noise.handshake_hash)

    def noise_handshake_secrets(self) -> tuple[bytes, bytes]:
        """``(static secret, ephemeral secret)`` of our Noise end (key logs; fresh per
        connection)."""
        return self._noise.handshake_secrets()

    # -- layers ------------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self.closed = True
        self._events.append(ConnectionFailed(reason=reason))

    def _secure(self, plaintext: bytes) -> None:
        if plaintext:
            self._out += self._noise.send(noise.SendData(data=plaintext), 0.0)

    def _receive_noise(self, data: bytes, now: float) -> None:
        self._noise.receive_data(data, now)
        self._out += self._noise.data_to_send()
        for event in iter(self._noise.next_event, NEED_DATA):
            if isinstance(event, noise.HandshakeComplete):
                self.remote_peer_id = event.remote_peer_id
                self._remote_key = event.remote_public_key
                # inlined muxer negotiation (connections §Inlining Muxer Negotiation): when
                # both sent stream_muxers in their Noise payload, the first of the
                # initiator's list the responder supports is used, without multistream
                ours = (yamux.PROTOCOL_ID,)
                theirs = event.stream_muxers
                first, second = (ours, theirs) if self.initiator else (theirs, ours)
                common = [m for m in first if m in second]
                if theirs and common and self._noise.stream_muxers:
                    self.muxer_inlined = True
                    self._start_yamux()
                else:
                    self._muxer_negotiation = multistream.MultistreamNegotiation(
                        dialer=self.initiator, protocols=[yamux.PROTOCOL_ID])
                    self._secure(self._muxer_negotiation.data_to_send())
            elif isinstance(event, noise.DataReceived):
                self._receive_plaintext(event.data, now)
            elif isinstance(event, noise.ConnectionClosed):
                self.closed = True

    def _start_yamux(self) -> None:
        self.yamux = yamux.YamuxSession(client=self.initiator, max_streams=self.max_streams)
        self._events.append(ConnectionEstablished(
            remote_peer_id=self.remote_peer_id, remote_public_key=self._remote_key))

    def _receive_plaintext(self, data: bytes, now: float) -> None:
        if self.yamux is not None:
            self._receive_yamux(data, now)
            return
        negotiation = self._muxer_negotiation
        if negotiation is None:
            raise RemoteProtocolError("libp2p: data before the Noise handshake finished")
        negotiation.receive_data(data, now)
        self._secure(negotiation.data_to_send())
        for event in iter(negotiation.next_event, NEED_DATA):
            if isinstance(event, multistream.ProtocolAgreed):
                self._start_yamux()
                if event.rest:
                    self._receive_yamux(event.rest, now)
            elif isinstance(event, multistream.NegotiationFailed):
                self._fail(event.reason)

    def _receive_yamux(self, data: bytes, now: float) -> None:
        mux = self.yamux
        mux.receive_data(data, now)
        for event in iter(mux.next_event, NEED_DATA):
            if isinstance(event, yamux.StreamOpened):
                if not self.protocols:
                    self._secure(mux.send(yamux.ResetStream(stream_id=event.stream_id), now))
                    continue
                self._negotiating[event.stream_id] = multistream.MultistreamNegotiation(
                    dialer=False, protocols=list(self.protocols))
            elif isinstance(event, yamux.StreamData):
                self._stream_bytes(event.stream_id, event.data, now)
            elif isinstance(event, yamux.StreamEnded):
                if self._negotiating.pop(event.stream_id, None) is not None:
                    self._events.append(StreamRefused(stream_id=event.stream_id,
                                                      reason="closed while negotiating"))
                else:
                    self._events.append(StreamClosed(stream_id=event.stream_id))
            elif isinstance(event, yamux.StreamReset):
                if self._negotiating.pop(event.stream_id, None) is not None:
                    self._events.append(StreamRefused(stream_id=event.stream_id,
                                                      reason="reset while negotiating"))
                else:
                    self.stream_protocols.pop(event.stream_id, None)
                    self._events.append(StreamClosed(stream_id=event.stream_id, reset=True))
            elif isinstance(event, (yamux.PongReceived, yamux.GoAwayReceived,
                                    yamux.PingReceived)):
                self._events.append(event)
        self._secure(mux.data_to_send())

    def _stream_bytes(self, sid: int, data: bytes, now: float) -> None:
        negotiation = self._negotiating.get(sid)
        if negotiation is None:
            if sid in self.stream_protocols:
                self._events.append(StreamData(stream_id=sid, data=data))
            return
        negotiation.receive_data(data, now)
        answer = negotiation.data_to_send()
        if answer:
            self._secure(self.yamux.send(yamux.SendData(stream_id=sid, data=answer), now))
        for event in iter(negotiation.next_event, NEED_DATA):
            if isinstance(event, multistream.ProtocolAgreed):
                del self._negotiating[sid]
                self.stream_protocols[sid] = event.protocol
                self._events.append(StreamNegotiated(stream_id=sid, protocol=event.protocol,
                                                     local=negotiation.dialer))
                if event.rest:
                    self._events.append(StreamData(stream_id=sid, data=event.rest))
            elif isinstance(event, multistream.NegotiationFailed):
                self._negotiating.pop(sid, None)
                self._secure(self.yamux.send(yamux.ResetStream(stream_id=sid), now))
                self._events.append(StreamRefused(stream_id=sid, reason=event.reason))
