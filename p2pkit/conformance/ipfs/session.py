"""The harness's side of one libp2p connection, layer by layer, for the IPFS catalog.

libp2p connections §Upgrading connections: TCP, multistream-select for ``/noise``, the Noise XX
handshake, then yamux (negotiated inline in the Noise payloads, noise §Noise Extensions, or
with multistream-select on the secured channel), then one multistream-select negotiation per
stream. Every layer is p2pkit's own sans-I/O core (:mod:`p2pkit.ipfs.multistream`,
:mod:`p2pkit.ipfs.noise`, :mod:`p2pkit.ipfs.yamux`), but a case can stop at any layer and
write what it likes there: raw bytes on the TCP connection, a Noise handshake whose payload
is wrong (:class:`ForgedNoise`), raw yamux frames built from
``YamuxHeader`` inside the encrypted channel.

Every wait is bounded by the session's ``timeout``; nothing is buffered past
``MAX_BUFFER`` bytes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from p2pkit.core import NEED_DATA
from p2pkit.errors import P2PKitError
from p2pkit.ipfs import multistream, noise, yamux
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.multistream import MultistreamMessage
from p2pkit.ipfs.noise_payload import SIGNATURE_PREFIX, NoiseHandshakePayload
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["Deviation", "ForgedNoise", "NotApplicable", "IpfsSession", "MAX_BUFFER", "StreamView",
           "multistream_line"]

#: Bytes the harness keeps of what one connection or stream sent.
MAX_BUFFER = 8 << 20
MULTISTREAM = "/multistream/1.0.0"


class Deviation(Exception):  # noqa: N818 - a verdict, not an error of the harness
    """The target did not do what the case's requirement says (the reason is the message)."""


class NotApplicable(Exception):  # noqa: N818 - a verdict
    """The case cannot be asked of this target (the reason is the message): a protocol it
    does not serve (Helia without the kad-dht, a js-libp2p node without Bitswap)."""


def multistream_line(text: str) -> bytes:
    """One multistream message (multistream-select §Protocol, Notes 1 and 2)."""
    return MultistreamMessage.build(text)


class ForgedNoise(noise.NoiseSession):
    """A Noise initiator whose handshake payload is deliberately wrong: ``forge(payload
    fields, static key, identity) -> fields`` rewrites what message 3 carries."""

    def __init__(self, forge: Callable[[dict[str, Any], bytes], dict[str, Any]],
                 **kwargs: Any) -> None:
        self.forge = forge
        super().__init__(**kwargs)

    def _payload(self) -> bytes:
        static = self._s.public_key().public_bytes_raw()
        fields = {"identity_key": self.identity.public_key,
                  "identity_sig": self.identity.sign(SIGNATURE_PREFIX + static),
                  "extensions": ({"stream_muxers": list(self.stream_muxers)}
                                 if self.stream_muxers else None)}
        return NoiseHandshakePayload.build(self.forge(fields, static, self.identity))


@dataclass
class StreamView:
    """One yamux stream as the harness sees it."""

    stream_id: int
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: bool = False
    acked: bool = False
    #: The target opened it (and the protocol it asked for, once read; on the harness's own
    #: streams, the protocol agreed).
    inbound: bool = False
    protocol: str | None = None
    negotiation: multistream.MultistreamNegotiation | None = None


class IpfsSession:
    """One TCP connection to the target, driven by a case (an ``async with`` block)."""

    def __init__(self, address: tuple[str, int], *, rng: random.Random, timeout: float,
                 accept: tuple[str, ...] = (),
                 pacer: Callable[[], Awaitable[None]] | None = None) -> None:
        self.address = address
        self.pacer = pacer
        self.rng = rng
        self.timeout = timeout
        #: Protocols the harness accepts on streams the target opens (Bitswap answers).
        self.accept = accept
        self.identity = Ed25519Identity(rng.randbytes(32))
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.raw = bytearray()  # TCP bytes not yet consumed by a layer
        self.closed: str | None = None
        self.noise: noise.NoiseSession | None = None
        self.remote_peer_id: PeerId | None = None
        self.remote_muxers: tuple[str, ...] = ()
        self.yamux: yamux.YamuxSession | None = None
        self.plain = bytearray()  # decrypted bytes before yamux runs
        self.streams: dict[int, StreamView] = {}
        self.events: list[Any] = []

    async def __aenter__(self) -> IpfsSession:
        if self.pacer is not None:
            await self.pacer()
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(*self.address), self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1.0)
            except (OSError, TimeoutError):
                pass

    # -- TCP ---------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as e:
            self.closed = f"reset ({type(e).__name__})"

    async def _read(self, wait: float) -> bytes | None:
        """Bytes from the socket; ``b""`` once closed, None when nothing came in ``wait``."""
        if self.closed:
            return b""
        try:
            data = await asyncio.wait_for(self.reader.read(1 << 16), wait)
        except TimeoutError:
            return None
        except OSError:
            self.closed = "reset"
            return b""
        if not data:
            self.closed = "eof"
        return data

    async def until(self, done: Callable[[], bool], wait: float | None = None) -> bool:
        """Read and process until ``done()`` holds, the target closes, or ``wait`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if wait is None else wait)
        while not done():
            left = deadline - loop.time()
            if left <= 0 or self.closed:
                return done()
            data = await self._read(left)
            if data:
                self._feed(data)
        return True

    async def closes(self, wait: float | None = None) -> bool:
        """Whether the target closes the connection within ``wait`` seconds."""
        return await self.until(lambda: self.closed is not None, wait)

    def _feed(self, data: bytes) -> None:
        if self.noise is None:
            self.raw += data
            del self.raw[:-MAX_BUFFER]
            return
        try:
            self.noise.receive_data(data, 0.0)
            for event in iter(self.noise.next_event, NEED_DATA):
                if isinstance(event, noise.HandshakeComplete):
                    self.remote_peer_id = event.remote_peer_id
                    self.remote_muxers = event.stream_muxers
                    self.events.append(event)
                elif isinstance(event, noise.DataReceived):
                    self._plaintext(event.data)
        except P2PKitError as e:
            self.closed = f"the target's bytes did not make sense: {e}"

    # -- multistream-select on the raw connection --------------------------------------------

    async def read_lines(self, count: int, wait: float | None = None) -> list[str]:
        """The next ``count`` multistream messages of the raw connection (fewer if the target
        stopped); a message that does not parse raises :class:`Deviation`."""
        lines: list[str] = []

        def parsed() -> bool:
            while len(lines) < count:
                text = self._first_line()
                if text is None:
                    return False
                lines.append(text)
            return True

        await self.until(parsed, wait)
        return lines

    def _first_line(self) -> str | None:
        """The first whole multistream message in :attr:`raw` (removed from it)."""
        from p2pkit.ipfs.varint import decode_uvarint

        try:
            length, used = decode_uvarint(bytes(self.raw[:10]))
        except P2PKitError:
            if len(self.raw) >= 10:
                raise Deviation(f"not a multistream message: {bytes(self.raw[:16])!r}") from None
            return None
        if len(self.raw) < used + length:
            return None
        message = bytes(self.raw[:used + length])
        del self.raw[:used + length]
        try:
            return MultistreamMessage.parse(message)
        except P2PKitError as e:
            raise Deviation(f"not a multistream message: {e}") from None

    async def propose(self, *protocols: str) -> list[str]:
        """Send the multistream header and ``protocols`` in one write; the target's answers
        (its header, then one line per proposal)."""
        await self.write(b"".join(multistream_line(p) for p in (MULTISTREAM, *protocols)))
        return await self.read_lines(1 + len(protocols))

    # -- Noise -------------------------------------------------------------------------------

    async def secure(self, session: noise.NoiseSession | None = None, *,
                     inline_muxer: bool = True) -> None:
        """Negotiate ``/noise`` and run the XX handshake as initiator (``session``: a forged
        one); then start yamux (inline, or negotiated on the secured channel). Raises
        :class:`Deviation` when the target does not get there."""
        answers = await self.propose(noise.PROTOCOL_ID)
        if answers != [MULTISTREAM, noise.PROTOCOL_ID]:
            raise Deviation(f"/noise answered {answers} (closed: {self.closed})")
        await self.handshake(session, inline_muxer=inline_muxer)
        if self.remote_peer_id is None:
            raise Deviation(f"no Noise handshake completed (closed: {self.closed})")
        if inline_muxer and yamux.PROTOCOL_ID in self.remote_muxers:
            self.yamux = yamux.YamuxSession(client=True)
            return
        await self.send_plain(multistream_line(MULTISTREAM) + multistream_line(yamux.PROTOCOL_ID))
        ok = await self.until(lambda: self.plain.count(b"\n") >= 2)
        if not ok or yamux.PROTOCOL_ID.encode() not in self.plain:
            raise Deviation(f"yamux not agreed on the secured channel: {bytes(self.plain)!r}")
        self.plain.clear()
        self.yamux = yamux.YamuxSession(client=True)

    def noise_session(self, forge: Callable[..., dict[str, Any]] | None = None, *,
                      inline_muxer: bool = True,
                      identity: Ed25519Identity | None = None) -> noise.NoiseSession:
        kwargs = dict(initiator=True, identity=identity or self.identity,
                      static_secret=self.rng.randbytes(32),
                      ephemeral_secret=self.rng.randbytes(32),
                      stream_muxers=(yamux.PROTOCOL_ID,) if inline_muxer else ())
        return ForgedNoise(forge, **kwargs) if forge else noise.NoiseSession(**kwargs)

    async def handshake(self, session: noise.NoiseSession | None = None, *,
                        inline_muxer: bool = True) -> None:
        """The XX handshake (messages 1 to 3) on a connection where ``/noise`` is agreed."""
        self.noise = session or self.noise_session(inline_muxer=inline_muxer)
        await self.write(self.noise.data_to_send())
        rest, self.raw = bytes(self.raw), bytearray()
        if rest:
            self._feed(rest)
        await self.until(lambda: self.noise.handshake_complete)
        if self.noise.handshake_complete:
            await self.write(self.noise.data_to_send())  # message 3

    async def send_plain(self, data: bytes) -> None:
        """Encrypt ``data`` in Noise transport messages and write them."""
        await self.write(self.noise.send(noise.SendData(data=data), 0.0))

    # -- yamux -------------------------------------------------------------------------------

    def _plaintext(self, data: bytes) -> None:
        if self.yamux is None:
            self.plain += data
            del self.plain[:-MAX_BUFFER]
            return
        self.yamux.receive_data(data, 0.0)
        for event in iter(self.yamux.next_event, NEED_DATA):
            self.events.append(event)
            sid = getattr(event, "stream_id", None)
            view = self.streams.get(sid) if sid is not None else None
            if isinstance(event, yamux.StreamOpened):
                if not self.accept:  # the harness serves nothing: refuse the stream
                    self._pending_out += self.yamux.send(yamux.ResetStream(stream_id=sid), 0.0)
                    continue
                self.streams[sid] = StreamView(sid, inbound=True, acked=True,
                                               negotiation=multistream.MultistreamNegotiation(
                                                   dialer=False, protocols=list(self.accept)))
            elif view is None:
                continue
            elif isinstance(event, yamux.StreamData):
                if view.negotiation is not None:
                    self._negotiate_inbound(view, event.data)
                else:
                    view.data += event.data
                    del view.data[:-MAX_BUFFER]
            elif isinstance(event, yamux.StreamEnded):
                view.ended = True
            elif isinstance(event, yamux.StreamReset):
                view.reset = True
        self._ack_seen(data)
        out = self.yamux.data_to_send()
        if out:
            self._pending_out += out

    _pending_out = b""

    def _ack_seen(self, data: bytes) -> None:
        """Mark the streams whose ACK came in ``data`` (the yamux core does not report it)."""
        view = memoryview(data)
        offset = 0
        while offset + yamux.HEADER_LENGTH <= len(view):
            try:
                header = yamux.YamuxHeader.parse(bytes(view[offset:offset + yamux.HEADER_LENGTH]))
            except P2PKitError:
                return
            stream = self.streams.get(header.stream_id)
            if stream is not None and (header.flags.ACK or header.flags.RST):
                stream.acked = True
                stream.reset = stream.reset or bool(header.flags.RST)
            offset += yamux.HEADER_LENGTH + (header.length if header.type == "data" else 0)

    def _negotiate_inbound(self, view: StreamView, data: bytes) -> None:
        negotiation = view.negotiation
        negotiation.receive_data(data, 0.0)
        answer = negotiation.data_to_send()
        if answer and view.stream_id in self.yamux.streams:
            self._pending_out += self.yamux.send(yamux.SendData(stream_id=view.stream_id,
                                                                data=answer), 0.0)
        for event in iter(negotiation.next_event, NEED_DATA):
            if isinstance(event, multistream.ProtocolAgreed):
                view.protocol, view.negotiation = event.protocol, None
                view.data += event.rest
            elif isinstance(event, multistream.NegotiationFailed):
                view.negotiation = None

    async def flush(self) -> None:
        """Write what the yamux core owes the target (ACKs, window updates, pongs)."""
        if self._pending_out:
            out, self._pending_out = self._pending_out, b""
            await self.send_plain(out)

    async def send_yamux(self, event: Any) -> None:
        await self.send_plain(self.yamux.send(event, 0.0))

    async def send_frame(self, type_: str, stream_id: int, length: int, payload: bytes = b"",
                         **flags: bool) -> None:
        """A raw yamux frame (header built from ``YamuxHeader``)."""
        header = yamux.YamuxHeader.build({"version": 0, "type": type_, "flags": flags,
                                          "stream_id": stream_id, "length": length})
        await self.send_plain(header + payload)

    async def pump(self, done: Callable[[], bool], wait: float | None = None) -> bool:
        """:meth:`until`, writing what the yamux core owes as it goes."""
        def check() -> bool:
            return done() or bool(self._pending_out)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if wait is None else wait)
        while True:
            await self.until(check, max(0.0, deadline - loop.time()))
            await self.flush()
            if done() or self.closed or loop.time() >= deadline:
                return done()

    async def open_stream(self, protocol: str, *, data: bytes = b"") -> tuple[int, list[str]]:
        """Open a stream and propose ``protocol`` (``data`` follows in the same write); the
        stream id and the target's multistream answers."""
        sid = self.yamux.open_stream()
        self.streams[sid] = StreamView(sid)
        payload = multistream_line(MULTISTREAM) + multistream_line(protocol) + data
        await self.send_plain(self.yamux.send(yamux.SendData(stream_id=sid, data=payload), 0.0))
        lines: list[str] = []

        def answered() -> bool:
            view = self.streams[sid]
            while len(lines) < 2 and view.data:
                from p2pkit.ipfs.varint import decode_uvarint
                try:
                    length, used = decode_uvarint(bytes(view.data[:10]))
                except P2PKitError:
                    return len(view.data) >= 10
                if len(view.data) < used + length:
                    return view.ended or view.reset
                lines.append(MultistreamMessage.parse(bytes(view.data[:used + length])))
                del view.data[:used + length]
            return len(lines) >= 2 or view.ended or view.reset

        await self.pump(answered)
        return sid, lines

    async def negotiated(self, protocol: str, *, data: bytes = b"") -> int:
        """A stream that agreed on ``protocol`` (:class:`Deviation` otherwise)."""
        sid, lines = await self.open_stream(protocol, data=data)
        if lines == [MULTISTREAM, "na"]:
            raise NotApplicable(f"the target does not serve {protocol} (na)")
        if lines != [MULTISTREAM, protocol]:
            raise Deviation(f"{protocol} answered {lines}")
        self.streams[sid].protocol = protocol
        return sid

    async def close_stream(self, sid: int) -> None:
        if sid in self.yamux.streams:
            await self.send_yamux(yamux.CloseStream(stream_id=sid))

    async def read_stream(self, sid: int, enough: Callable[[bytes], bool],
                          wait: float | None = None) -> bytes:
        """The bytes of stream ``sid`` once ``enough(bytes)`` holds, it ended, or ``wait``."""
        view = self.streams[sid]
        await self.pump(lambda: enough(bytes(view.data)) or view.ended or view.reset, wait)
        return bytes(view.data)

    async def serves(self) -> bool:
        """A well-behaved round on this secured session: one ping echoed, or (a node without
        ``/ipfs/ping/1.0.0``, as Helia) one identify message and its stream's end."""
        from p2pkit.ipfs.identify import PROTOCOL_ID as IDENTIFY
        from p2pkit.ipfs.ping import PROTOCOL_ID as PING

        try:
            payload = self.rng.randbytes(32)
            sid, lines = await self.open_stream(PING, data=payload)
            if lines == [MULTISTREAM, PING]:
                echo = await self.read_stream(sid, lambda b: len(b) >= 32)
                return echo[:32] == payload
            sid = await self.negotiated(IDENTIFY)
            await self.read_stream(sid, lambda b: False)
            view = self.streams[sid]
            return bool(view.data) and view.ended
        except (Deviation, P2PKitError):
            return False
