"""Noise for libp2p: ``Noise_XX_25519_ChaChaPoly_SHA256`` as a sans-I/O session core.

libp2p noise spec: "the Noise protocol name MUST be: Noise_XX_25519_ChaChaPoly_SHA256"
(§Noise Protocol Name); the XX pattern ``-> e``, ``<- e, ee, s, es``, ``-> s, se`` (§XX);
every message framed by "a 16-bit big-endian unsigned integer" length, "a maximum length of
65535 bytes" (§Wire Format); the second and third handshake messages carry a
``NoiseHandshakePayload`` whose ``identity_sig`` signs ``noise-libp2p-static-key:`` followed by
the static Noise key, and "if the signature is invalid, the connection MUST be terminated
immediately" (§Static Key Authentication). The symmetric state, the HKDF and the nonce layout
follow the Noise Protocol Framework (revision 34, §5 Processing rules; §12.3 ChaChaPoly: a
96-bit nonce of 32 zero bits then the 64-bit little-endian counter). X25519, ChaCha20-Poly1305
and SHA-256 come from the ``cryptography`` package.

Keys are injected (DESIGN.md: no hidden randomness): the caller passes the static and
ephemeral X25519 secrets, drawn from its RNG.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import construct
from construct import Bytes, GreedyBytes, Int16ub, Struct
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from p2pkit.core import NEED_DATA, Event, NeedData, Outbox, Untimed
from p2pkit.errors import LocalProtocolError, ParseError, RemoteProtocolError
from p2pkit.ipfs.keys import Ed25519Identity, verify_signature
from p2pkit.ipfs.noise_payload import SIGNATURE_PREFIX, NoiseHandshakePayload
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.schema import Schema

__all__ = ["MAX_NOISE_MESSAGE", "MAX_PLAINTEXT", "PROTOCOL_ID", "PROTOCOL_NAME",
           "CipherState", "authenticate_payload", "DataReceived", "HandshakeComplete", "HandshakeMessage",
           "NoiseFrame", "NoiseSession", "SendData", "SymmetricState"]

#: The multistream id of noise-libp2p.
PROTOCOL_ID = "/noise"
#: "the Noise protocol name MUST be: Noise_XX_25519_ChaChaPoly_SHA256".
PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
#: "a maximum length of 65535 bytes".
MAX_NOISE_MESSAGE = 65535
#: 16 bytes of the AEAD tag ride in every encrypted message.
TAG_LENGTH = 16
#: Largest plaintext one transport message carries.
MAX_PLAINTEXT = MAX_NOISE_MESSAGE - TAG_LENGTH
DH_LENGTH = 32
#: Noise §5.1: "n [...] if incrementing n results in 2^64 - 1 [...] signal an error".
MAX_NONCE = (1 << 64) - 1

# fmt: off
#: One framed noise message (§Wire Format).
NoiseFrame = Schema(construct.Prefixed(Int16ub, GreedyBytes), protocol="noise")
#: The three XX handshake messages as they appear on the wire, before decryption.
HandshakeMessage = {
    1: Schema(Struct(
        "e" / Bytes(DH_LENGTH) * "initiator's ephemeral key, in clear",
        "payload" / GreedyBytes * "empty for libp2p (no early data in message 1)",
    ), protocol="noise", name="handshake_message_1"),
    2: Schema(Struct(
        "e" / Bytes(DH_LENGTH) * "responder's ephemeral key, in clear",
        "encrypted_static" / Bytes(DH_LENGTH + TAG_LENGTH) * "responder's static key",
        "encrypted_payload" / GreedyBytes * "NoiseHandshakePayload + tag",
    ), protocol="noise", name="handshake_message_2"),
    3: Schema(Struct(
        "encrypted_static" / Bytes(DH_LENGTH + TAG_LENGTH) * "initiator's static key",
        "encrypted_payload" / GreedyBytes * "NoiseHandshakePayload + tag",
    ), protocol="noise", name="handshake_message_3"),
}
# fmt: on
_FRAME_LENGTH = NoiseFrame.subcon.lengthfield


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> tuple[bytes, ...]:
    """Noise §4.3 HKDF: ``temp_key = HMAC(ck, ikm)``, ``output1 = HMAC(temp_key, 0x01)``,
    ``output2 = HMAC(temp_key, output1 || 0x02)``…"""
    temp = hmac.new(chaining_key, ikm, hashlib.sha256).digest()
    out, previous = [], b""
    for i in range(1, outputs + 1):
        previous = hmac.new(temp, previous + bytes([i]), hashlib.sha256).digest()
        out.append(previous)
    return tuple(out)


def _dh(secret: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return secret.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError as e:  # a low-order point gives an all-zero secret
        raise RemoteProtocolError(f"noise: unusable X25519 public key ({e})") from None


def _public(secret: X25519PrivateKey) -> bytes:
    return secret.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass
class CipherState:
    """Noise §5.1: a key ``k`` (or none) and a nonce counter ``n``."""

    k: bytes | None = None
    n: int = 0

    def _nonce(self) -> bytes:
        if self.n >= MAX_NONCE:
            raise LocalProtocolError("noise: nonce exhausted; the connection must be closed")
        return b"\0\0\0\0" + self.n.to_bytes(8, "little")

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        out = ChaCha20Poly1305(self.k).encrypt(self._nonce(), plaintext, ad)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        try:
            out = ChaCha20Poly1305(self.k).decrypt(self._nonce(), ciphertext, ad)
        except InvalidTag:
            raise RemoteProtocolError("noise: authentication tag does not verify") from None
        self.n += 1
        return out


@dataclass
class SymmetricState:
    """Noise §5.2: the chaining key ``ck``, the handshake hash ``h`` and a cipher state."""

    ck: bytes
    h: bytes
    cipher: CipherState = field(default_factory=CipherState)

    @classmethod
    def initialize(cls, protocol_name: bytes = PROTOCOL_NAME) -> SymmetricState:
        # "If protocol_name is less than or equal to HASHLEN bytes in length, sets h equal to
        # protocol_name with zero bytes appended to make HASHLEN bytes. Otherwise sets
        # h = HASH(protocol_name)."
        h = protocol_name.ljust(32, b"\0") if len(protocol_name) <= 32 else _hash(protocol_name)
        return cls(ck=h, h=h)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = _hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(k=temp_k)

    def mix_hash(self, data: bytes) -> None:
        self.h = _hash(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = _hkdf(self.ck, b"", 2)
        return CipherState(k=k1), CipherState(k=k2)


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HandshakeComplete(Event):
    """The handshake finished and the remote proved its identity: ``remote_peer_id`` is the
    peer id of ``remote_public_key`` (a serialized ``PublicKey``), ``stream_muxers`` what it
    offered as early data."""

    remote_peer_id: PeerId
    remote_public_key: bytes
    remote_static: bytes
    stream_muxers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DataReceived(Event):
    """Decrypted application bytes."""

    data: bytes


@dataclass(frozen=True, kw_only=True)
class ConnectionClosed(Event):
    """The remote closed the underlying stream."""


@dataclass(frozen=True, kw_only=True)
class SendData(Event):
    """Application bytes to encrypt (split into messages of at most :data:`MAX_PLAINTEXT`)."""

    data: bytes


class NoiseSession(Outbox, Untimed):
    """One noise-libp2p session, sans-I/O: the XX handshake, then transport messages.

    ``initiator``: the dialer. ``identity``: our Ed25519 identity key. ``static_secret`` and
    ``ephemeral_secret``: 32-byte X25519 secrets (from the caller's RNG). ``expected_peer``:
    the peer id the dialer wanted (a ``/p2p/`` component); a handshake proving another
    identity is refused. ``stream_muxers``: early data announced in our payload.

    Keys are logged for dissection in ``keys`` once the handshake is over
    (``(send key, receive key)``).
    """

    def __init__(self, *, initiator: bool, identity: Ed25519Identity, static_secret: bytes,
                 ephemeral_secret: bytes, expected_peer: PeerId | None = None,
                 stream_muxers: tuple[str, ...] = ()) -> None:
        self.initiator = initiator
        self.identity = identity
        self._s = X25519PrivateKey.from_private_bytes(static_secret)
        self._e = X25519PrivateKey.from_private_bytes(ephemeral_secret)
        self.expected_peer = expected_peer
        self.stream_muxers = stream_muxers
        self.state = SymmetricState.initialize()
        self.state.mix_hash(b"")  # the empty prologue (§5.3 Initialize)
        self._re: bytes | None = None
        self._rs: bytes | None = None
        self._step = 1  # the next handshake message (1, 2, 3), then 4 = transport
        self._buffer = bytearray()
        self._out = bytearray()
        self._events: list[Event] = []
        self._send: CipherState | None = None
        self._recv: CipherState | None = None
        self.remote_peer_id: PeerId | None = None
        self.keys: tuple[bytes, bytes] | None = None
        self.closed = False
        if initiator:
            self._write_message_1()

    # -- the sans-I/O surface ----------------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        return self._step == 4

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the underlying stream (``b""``: it closed)."""
        if self.closed:
            return
        if not data:
            self.closed = True
            self._events.append(ConnectionClosed())
            return
        self._buffer += data
        while len(self._buffer) >= 2:
            length = _FRAME_LENGTH.parse(self._buffer[:2])
            if len(self._buffer) < 2 + length:
                break
            message = bytes(self._buffer[2:2 + length])
            del self._buffer[:2 + length]
            self._handle(message)

    def next_event(self) -> Event | NeedData:
        return self._events.pop(0) if self._events else NEED_DATA

    def send(self, event: Event, now: float) -> bytes:
        """Encrypt ``SendData`` (only after the handshake)."""
        if not isinstance(event, SendData):
            raise LocalProtocolError(f"a noise session sends SendData, not {type(event).__name__}")
        if not self.handshake_complete:
            raise LocalProtocolError("noise: application data before the handshake completed")
        out = bytearray()
        view = memoryview(event.data)
        for start in range(0, len(view), MAX_PLAINTEXT):
            chunk = bytes(view[start:start + MAX_PLAINTEXT])
            out += NoiseFrame.build(self._send.encrypt_with_ad(b"", chunk))
        return bytes(out)


    # -- handshake ---------------------------------------------------------------------------

    def _frame(self, message: bytes) -> None:
        if len(message) > MAX_NOISE_MESSAGE:
            raise LocalProtocolError(f"noise message of {len(message)} bytes")
        self._out += NoiseFrame.build(message)

    def _payload(self) -> bytes:
        signature = self.identity.sign(SIGNATURE_PREFIX + _public(self._s))
        extensions = {"stream_muxers": list(self.stream_muxers)} if self.stream_muxers else None
        return NoiseHandshakePayload.build({"identity_key": self.identity.public_key,
                                            "identity_sig": signature,
                                            "extensions": extensions})

    def _write_message_1(self) -> None:
        e = _public(self._e)
        self.state.mix_hash(e)
        payload = self.state.encrypt_and_hash(b"")
        self._frame(HandshakeMessage[1].build({"e": e, "payload": payload}))
        self._step = 2

    def _handle(self, message: bytes) -> None:
        if self._step == 4:
            plaintext = self._recv.decrypt_with_ad(b"", message)
            self._events.append(DataReceived(data=plaintext))
            return
        try:
            if self._step == 1 and not self.initiator:
                self._read_message_1(message)
            elif self._step == 2 and self.initiator:
                self._read_message_2(message)
            elif self._step == 3 and not self.initiator:
                self._read_message_3(message)
            else:
                raise RemoteProtocolError("noise: handshake message out of turn")
        except ParseError as e:
            raise RemoteProtocolError(f"noise handshake: {e}") from None

    def _read_message_1(self, message: bytes) -> None:
        msg = HandshakeMessage[1].parse(message)
        self._re = msg.e
        self.state.mix_hash(self._re)
        self.state.decrypt_and_hash(msg.payload)
        # <- e, ee, s, es
        e = _public(self._e)
        self.state.mix_hash(e)
        self.state.mix_key(_dh(self._e, self._re))
        encrypted_static = self.state.encrypt_and_hash(_public(self._s))
        self.state.mix_key(_dh(self._s, self._re))
        encrypted_payload = self.state.encrypt_and_hash(self._payload())
        self._frame(e + encrypted_static + encrypted_payload)
        self._step = 3

    def _read_message_2(self, message: bytes) -> None:
        msg = HandshakeMessage[2].parse(message)
        self._re = msg.e
        self.state.mix_hash(self._re)
        self.state.mix_key(_dh(self._e, self._re))
        self._rs = self.state.decrypt_and_hash(msg.encrypted_static)
        self.state.mix_key(_dh(self._e, self._rs))
        payload = self.state.decrypt_and_hash(msg.encrypted_payload)
        remote = self._authenticate(payload)
        # -> s, se
        encrypted_static = self.state.encrypt_and_hash(_public(self._s))
        self.state.mix_key(_dh(self._s, self._re))
        encrypted_payload = self.state.encrypt_and_hash(self._payload())
        self._frame(encrypted_static + encrypted_payload)
        self._finish(remote)

    def _read_message_3(self, message: bytes) -> None:
        msg = HandshakeMessage[3].parse(message)
        self._rs = self.state.decrypt_and_hash(msg.encrypted_static)
        self.state.mix_key(_dh(self._e, self._rs))
        payload = self.state.decrypt_and_hash(msg.encrypted_payload)
        self._finish(self._authenticate(payload))

    def _authenticate(self, payload: bytes) -> tuple[PeerId, bytes, tuple[str, ...]]:
        """§Static Key Authentication: decode the identity key, check the signature of the
        static key, derive the peer id (and check it is the one dialed)."""
        peer, key, muxers = authenticate_payload(payload, self._rs)
        if self.expected_peer is not None and peer != self.expected_peer:
            raise RemoteProtocolError(f"noise: remote is {peer}, not the dialed "
                                      f"{self.expected_peer}")
        return peer, key, muxers

    def _finish(self, remote: tuple[PeerId, bytes, tuple[str, ...]]) -> None:
        c1, c2 = self.state.split()
        self._send, self._recv = (c1, c2) if self.initiator else (c2, c1)
        self.keys = (self._send.k, self._recv.k)
        self._step = 4
        peer, key, muxers = remote
        self.remote_peer_id = peer
        self._events.append(HandshakeComplete(remote_peer_id=peer, remote_public_key=key,
                                              remote_static=self._rs, stream_muxers=muxers))

    @property
    def initiator_ephemeral(self) -> bytes | None:
        """The initiator's ephemeral public key (in clear in message 1): what a key log names a
        session by."""
        return _public(self._e) if self.initiator else self._re

    def handshake_secrets(self) -> tuple[bytes, bytes]:
        """``(static secret, ephemeral secret)`` of this end: with them a dissector replays the
        whole handshake (decrypts both payloads; :mod:`p2pkit.ipfs.noise_replay`). The static
        key is drawn per session, never the identity key."""
        raw = (Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return self._s.private_bytes(*raw), self._e.private_bytes(*raw)

    def transport_keys(self) -> tuple[bytes, bytes] | None:
        """``(initiator-to-responder key, responder-to-initiator key)`` once the handshake is
        over (Noise §5.2 Split), for key logs; None before."""
        if self.keys is None:
            return None
        send, receive = self.keys
        return (send, receive) if self.initiator else (receive, send)

    @property
    def handshake_hash(self) -> bytes:
        """``h`` (Noise §11.2 channel binding): equal on both ends after the handshake."""
        return self.state.h

    def __repr__(self) -> str:  # keys never shown
        role = "initiator" if self.initiator else "responder"
        return f"<NoiseSession {role} step={self._step}>"


def authenticate_payload(payload: bytes, static: bytes
                         ) -> tuple[PeerId, bytes, tuple[str, ...]]:
    """libp2p noise §Static Key Authentication: the peer id, identity key and early-data
    ``stream_muxers`` of a decrypted ``NoiseHandshakePayload`` whose ``identity_sig`` signs
    ``noise-libp2p-static-key:`` + ``static``; :class:`~p2pkit.errors.RemoteProtocolError`
    when the key or the signature is missing or the signature does not verify."""
    parsed = NoiseHandshakePayload.parse(payload)
    if not parsed.identity_key or not parsed.identity_sig:
        raise RemoteProtocolError("noise: handshake payload without identity key or signature")
    if not verify_signature(parsed.identity_key, SIGNATURE_PREFIX + static, parsed.identity_sig):
        raise RemoteProtocolError("noise: the identity signature of the static key does not "
                                  "verify")
    peer = PeerId.from_public_key(parsed.identity_key)
    muxers = tuple(parsed.extensions.stream_muxers) if parsed.extensions else ()
    return peer, parsed.identity_key, muxers


def describe_message(step: int, message: bytes) -> Any:
    """The handshake message ``step`` (1, 2 or 3) parsed into its clear and encrypted parts
    (what a dissector can show without keys)."""
    return HandshakeMessage[step].parse(message)
