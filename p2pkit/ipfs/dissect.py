"""Dissecting libp2p over TCP: multistream-select in clear, then a Noise session.

What a capture shows without keys (libp2p connections spec §Upgrading connections): the
multistream-select lines in clear (``/multistream/1.0.0``, ``/noise``, ``na``, ``ls``), then
Noise frames (a 16-bit length each, libp2p noise §Wire Format). The first two handshake
messages carry the ephemeral keys in clear (``-> e``, ``<- e, ee, s, es``); everything else is
encrypted, and reported as ``noise_transport`` records of an encrypted libp2p session (their
sizes and timing), never dropped.

With a key log (``secrets``: a :class:`~p2pkit.ipfs.noise_keylog.NoiseKeyLog`, from
``p2pkit dissect --keylog FILE``), the session is found by the initiator's ephemeral key of
handshake message 1, and each direction's transport messages are decrypted with its key and a
nonce counting from 0 (Noise §5.1, §5.2 Split; libp2p noise §Wire Format): the
``noise_transport`` record says ``decrypted``, and the plaintext is decoded by
:class:`~p2pkit.ipfs.session_dissect.PlaintextDirection` (muxer negotiation, yamux frames,
streams reassembled, ping, identify, kad-dht and Bitswap messages). A session the key log does
not name, or a message whose tag does not verify, stays ``encrypted``.

Such a direction is recognised by ``p2pkit.ipfs.detect.detect_libp2p``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from p2pkit.capture.record import Record, json_fields
from p2pkit.capture.stream_buffer import StreamBuffer
from p2pkit.deviations import Deviation
from p2pkit.errors import ParseError, RemoteProtocolError
from p2pkit.ipfs.detect import detect_libp2p
from p2pkit.ipfs.multistream import NA, MultistreamMessage
from p2pkit.ipfs.noise import DH_LENGTH, PROTOCOL_ID, CipherState, HandshakeMessage, NoiseFrame
from p2pkit.ipfs.noise_keylog import NoiseKeyLog
from p2pkit.ipfs.noise_replay import HandshakeReplay
from p2pkit.ipfs.session_dissect import SESSION_MESSAGES, PlaintextDirection, line_kind
from p2pkit.ipfs.varint import decode_uvarint

__all__ = ["MESSAGES", "Libp2pStream", "detect_libp2p", "libp2p_stream"]

PROTOCOL = "ipfs"
_NOISE_LENGTH = NoiseFrame.subcon.lengthfield
#: Message names of the records this decoder writes.
MESSAGES = ("multistream", "noise_handshake", "noise_transport", *SESSION_MESSAGES,
            "undecoded")


def libp2p_stream(*, src: str, dst: str, transport: str = "tcp",
                  peer: Libp2pStream | None = None,
                  secrets: NoiseKeyLog | None = None) -> Libp2pStream:
    """The ``ipfs`` descriptor's stream-decoder factory (``peer``: the other direction;
    ``secrets``: a Noise key log)."""
    stream = Libp2pStream(transport=transport, src=src, dst=dst, secrets=secrets)
    if peer is not None:
        stream.peer, peer.peer = peer, stream
    return stream


class Libp2pStream:
    """One direction of a libp2p TCP connection."""

    def __init__(self, *, transport: str, src: str, dst: str,
                 secrets: NoiseKeyLog | None = None) -> None:
        self.transport, self.src, self.dst = transport, src, dst
        self.secrets = secrets
        #: The initiator's ephemeral key, from handshake message 1 (dialer direction).
        self.ephemeral: bytes | None = None
        #: This direction's transport CipherState once its key is known; False: no key.
        self.cipher: CipherState | bool | None = None
        self.plaintext = PlaintextDirection(transport=transport, src=src, dst=dst)
        #: On the dialer's direction: the handshake replayed from logged secrets, and the
        #: transport keys it derived.
        self.replay: HandshakeReplay | None = None
        self.replayed_keys: tuple[bytes, bytes] | None = None
        #: The peer id this direction's sender proved in the handshake (when replayed).
        self.peer_id: Any = None
        self._inner: list[Record] = []
        self.buffer = StreamBuffer()
        self.peer: Libp2pStream | None = None
        self.phase = "multistream"  # then "noise"; "failed" after a frame that does not parse
        self.lines: list[str] = []
        self.noise_messages = 0
        self.dialer = False
        self.skipped = 0

    # -- framing -----------------------------------------------------------------------------

    def _frame_length(self) -> int | None:
        data = bytes(self.buffer.data[:12])
        if self.phase == "multistream":
            try:
                length, after = decode_uvarint(data)
            except ParseError:
                return None if len(data) < 10 else -1
            return after + length
        if len(data) < 2:
            return None
        return 2 + _NOISE_LENGTH.parse(data[:2])

    def _noise_follows(self) -> bool:
        """After our ``/noise`` line, Noise frames follow unless the listener said ``na``."""
        if not self.lines or self.lines[-1] != PROTOCOL_ID:
            return False
        other = self.peer.lines if self.peer is not None else []
        return not other or other[-1] != NA

    # -- the StreamDecoder surface -----------------------------------------------------------

    def data(self, offset: int, data: bytes, frame: int, time: float) -> Iterator[Record]:
        if self.phase == "failed":
            self.skipped += len(data)
            return
        buf = self.buffer
        buf.append(offset, data, frame, time)
        while True:
            if self.phase == "multistream" and len(buf) and self._noise_follows():
                self.phase = "noise"
            size = self._frame_length()
            if size is None or len(buf) < size:
                return
            if size < 0:
                yield self._fail("a multistream length that is not a varint")
                return
            at, when = buf.frame_of(size - 1)
            self._inner = []
            record = Record(frame=at, time=when, transport=self.transport, src=self.src,
                            dst=self.dst, protocol=PROTOCOL, message="undecoded",
                            offset=buf.start, length=size)
            raw = bytes(buf.data[:size])
            try:
                self._decode(record, raw)
            except ParseError as e:
                record.deviations.append(Deviation(
                    offset=buf.start + (e.offset or 0), rule=f"{PROTOCOL}/{self.phase}",
                    message=e.reason, spec="libp2p connections"))
                self.phase = "failed"
                self.skipped += len(buf) - size
                buf.skip(len(buf))
                yield record
                return
            buf.skip(size)
            yield record
            yield from self._inner

    def _decode(self, record: Record, raw: bytes) -> None:
        if self.phase == "multistream":
            line = MultistreamMessage.parse(raw)
            self.lines.append(line)
            if line == PROTOCOL_ID:
                # the dialer proposes /noise before the listener echoes it
                self.dialer = self.peer is None or PROTOCOL_ID not in self.peer.lines
            kind = line_kind(line)
            record.message = "multistream"
            record.fields = {"line": line, "kind": kind}
            return
        body = NoiseFrame.parse(raw)
        self.noise_messages += 1
        dialer = self.dialer
        step = (1 if dialer else 2) if self.noise_messages == 1 else \
            3 if dialer and self.noise_messages == 2 else None
        if step is not None and (step != 1 or len(body) >= DH_LENGTH):
            value: Any = HandshakeMessage[step].parse(body)
            record.message = "noise_handshake"
            record.fields = {"step": step, **json_fields(value)}
            record.value = value
            if step == 1:
                self.ephemeral = value.e
            self._replay(record, step, value)
        else:
            record.message = "noise_transport"
            record.fields = {"encrypted": len(body), "encryption": "noise"}
            self._decrypt(record, body)

    def _replay(self, record: Record, step: int, value: Any) -> None:
        """With one end's handshake secrets: replay the handshake, show the decrypted static
        key, identity and signature verdict of messages 2 and 3."""
        dialer = self if self.dialer else self.peer
        if dialer is None or self.secrets is None:
            return
        if step == 1:
            entry = self.secrets.find_handshake(value.e)
            if entry is not None:
                dialer.replay = HandshakeReplay(initiator=entry.role == "initiator",
                                                static_secret=entry.static_secret,
                                                ephemeral_secret=entry.ephemeral_secret)
                dialer.replay.message_1(value)
            return
        replay = dialer.replay
        if replay is None:
            return
        try:
            payload = replay.message_2(value) if step == 2 else replay.message_3(value)
        except RemoteProtocolError as e:
            record.deviations.append(Deviation(
                offset=record.offset or 0, rule=f"{PROTOCOL}/noise-handshake",
                message=f"the logged secrets do not decrypt this message: {e}",
                spec="libp2p noise"))
            dialer.replay = None
            return
        record.fields.update({
            "static": payload.static.hex(),
            "peer_id": str(payload.peer_id) if payload.peer_id else None,
            "identity_key": payload.identity_key.hex() if payload.identity_key else None,
            "stream_muxers": list(payload.stream_muxers),
            "signature": "valid" if payload.error is None else payload.error})
        self.peer_id = payload.peer_id
        if payload.error is not None:
            record.deviations.append(Deviation(
                offset=record.offset or 0, rule=f"{PROTOCOL}/noise-signature",
                message=payload.error, spec="libp2p noise §Static Key Authentication"))
        if step == 3:
            dialer.replayed_keys = replay.transport_keys()

    def _transport_cipher(self) -> CipherState | None:
        """This direction's CipherState, from the key log entry of the session (or the keys
        a replayed handshake derived)."""
        if self.cipher is None:
            dialer = self if self.dialer else self.peer
            entry = (self.secrets.find(dialer.ephemeral) if self.secrets is not None and
                     dialer is not None and dialer.ephemeral is not None else None)
            keys = ((entry.initiator_key, entry.responder_key) if entry is not None else
                    dialer.replayed_keys if dialer is not None else None)
            self.cipher = False if keys is None else CipherState(
                k=keys[0] if self.dialer else keys[1])
        return self.cipher or None

    def _decrypt(self, record: Record, body: bytes) -> None:
        cipher = self._transport_cipher()
        if cipher is None:
            return
        nonce = cipher.n
        try:
            plaintext = cipher.decrypt_with_ad(b"", body)
        except RemoteProtocolError as e:
            record.deviations.append(Deviation(
                offset=record.offset or 0, rule=f"{PROTOCOL}/noise-tag",
                message=f"{e} (nonce {nonce}); the rest of this direction stays encrypted",
                spec="libp2p noise"))
            self.cipher = False
            return
        record.fields.update({"decrypted": len(plaintext), "nonce": nonce})
        self._inner = list(self.plaintext.feed(plaintext, record.frame, record.time))

    def _fail(self, reason: str) -> Record:
        buf = self.buffer
        record = Record(frame=buf.frame_of(0)[0] if len(buf) else 0, time=0.0,
                        transport=self.transport, src=self.src, dst=self.dst, protocol=PROTOCOL,
                        message="undecoded", offset=buf.start, length=len(buf))
        record.deviations.append(Deviation(offset=buf.start, rule=f"{PROTOCOL}/framing",
                                           message=reason, spec="multistream-select"))
        self.phase = "failed"
        self.skipped += len(buf)
        buf.skip(len(buf))
        return record

    def gap(self, offset: int, length: int) -> None:
        """Lost bytes: the next frame boundary cannot be found."""
        self.skipped += len(self.buffer) + length
        self.buffer.reset(offset + length)
        self.phase = "failed"

    def end(self) -> Iterator[Record]:
        self.skipped += len(self.buffer)
        return iter(())
