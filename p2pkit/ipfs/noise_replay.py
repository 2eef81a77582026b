"""Replaying a captured Noise XX handshake with one end's secrets (for dissection).

The transport keys alone (``NOISE_SECRETS``) decrypt what follows the handshake, but not the
handshake payloads: the static keys and the signed identity travel encrypted under
intermediate keys (libp2p noise §XX: ``<- e, ee, s, es``, ``-> s, se``). One end's static and
ephemeral X25519 secrets (``NOISE_HANDSHAKE_SECRETS`` in the key log,
:mod:`p2pkit.ipfs.noise_keylog`) give every DH of the pattern, so the handshake is replayed
message by message with the same ``SymmetricState`` the live session
uses (Noise Protocol Framework §5.2, §5.3): both payloads are decrypted, their signatures
checked (``authenticate_payload``), and ``Split()`` yields the
transport keys.

Each of ``message_1``/``message_2``/``message_3`` takes the parsed wire message (the
``HandshakeMessage`` schemas).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from p2pkit.errors import RemoteProtocolError
from p2pkit.ipfs.noise import SymmetricState, authenticate_payload
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["HandshakeReplay", "ReplayedPayload"]


@dataclass(frozen=True)
class ReplayedPayload:
    """A decrypted handshake payload: the sender's static Noise key, identity and whether
    ``identity_sig`` verifies (``error``: why not)."""

    static: bytes
    peer_id: PeerId | None
    identity_key: bytes | None
    stream_muxers: tuple[str, ...]
    error: str | None = None


def _dh(secret: bytes, public: bytes) -> bytes:
    try:
        return X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(public))
    except ValueError as e:
        raise RemoteProtocolError(f"noise: unusable X25519 public key ({e})") from None


class HandshakeReplay:
    """One session's handshake seen from the logged end (``initiator``: it dialed)."""

    def __init__(self, *, initiator: bool, static_secret: bytes, ephemeral_secret: bytes
                 ) -> None:
        self.initiator = initiator
        self.s, self.e = static_secret, ephemeral_secret
        self.state = SymmetricState.initialize()
        self.state.mix_hash(b"")
        self.remote_e: bytes | None = None
        self.remote_s: bytes | None = None

    def _payload(self, encrypted: bytes, static: bytes) -> ReplayedPayload:
        payload = self.state.decrypt_and_hash(encrypted)
        try:
            peer, key, muxers = authenticate_payload(payload, static)
        except RemoteProtocolError as e:
            return ReplayedPayload(static, None, None, (), error=str(e))
        except Exception as e:  # noqa: BLE001 - a payload that does not parse
            return ReplayedPayload(static, None, None, (), error=str(e))
        return ReplayedPayload(static, peer, key, muxers)

    def message_1(self, message: Any) -> None:
        """``-> e`` (and an empty payload)."""
        if not self.initiator:
            self.remote_e = message.e
        self.state.mix_hash(message.e)
        self.state.decrypt_and_hash(message.payload)

    def message_2(self, message: Any) -> ReplayedPayload:
        """``<- e, ee, s, es``: the responder's static key and payload."""
        if self.initiator:
            self.remote_e = message.e
        self.state.mix_hash(message.e)
        self.state.mix_key(_dh(self.e, self.remote_e))
        responder_static = self.state.decrypt_and_hash(message.encrypted_static)
        if self.initiator:
            self.remote_s = responder_static
            self.state.mix_key(_dh(self.e, responder_static))
        else:
            self.state.mix_key(_dh(self.s, self.remote_e))
        return self._payload(message.encrypted_payload, responder_static)

    def message_3(self, message: Any) -> ReplayedPayload:
        """``-> s, se``: the initiator's static key and payload."""
        initiator_static = self.state.decrypt_and_hash(message.encrypted_static)
        if self.initiator:
            self.state.mix_key(_dh(self.s, self.remote_e))
        else:
            self.remote_s = initiator_static
            self.state.mix_key(_dh(self.e, initiator_static))
        return self._payload(message.encrypted_payload, initiator_static)

    def transport_keys(self) -> tuple[bytes, bytes]:
        """``(initiator-to-responder key, responder-to-initiator key)`` (§5.2 Split)."""
        c1, c2 = self.state.split()
        return c1.k, c2.k
