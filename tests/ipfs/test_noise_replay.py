"""Replaying a Noise XX handshake from one end's logged secrets: the bytes of two live
:class:`~p2pkit.ipfs.noise.NoiseSession` ends, decrypted by either end's secrets."""

from __future__ import annotations

import pytest

from p2pkit.errors import RemoteProtocolError
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise import HandshakeMessage, NoiseFrame, NoiseSession
from p2pkit.ipfs.noise_replay import HandshakeReplay
from p2pkit.ipfs.peer_id import PeerId

ALICE = Ed25519Identity(bytes(range(32)))
BOB = Ed25519Identity(bytes(range(1, 33)))
SECRETS = {"a": (bytes([1] * 32), bytes([2] * 32)), "b": (bytes([3] * 32), bytes([4] * 32))}


def handshake(bob_identity=BOB):
    a = NoiseSession(initiator=True, identity=ALICE, static_secret=SECRETS["a"][0],
                     ephemeral_secret=SECRETS["a"][1], stream_muxers=("/yamux/1.0.0",))
    b = NoiseSession(initiator=False, identity=bob_identity, static_secret=SECRETS["b"][0],
                     ephemeral_secret=SECRETS["b"][1])
    m1 = a.data_to_send()
    b.receive_data(m1, 0.0)
    m2 = b.data_to_send()
    a.receive_data(m2, 0.0)
    m3 = a.data_to_send()
    b.receive_data(m3, 0.0)
    return a, b, [HandshakeMessage[i + 1].parse(NoiseFrame.parse(m))
                  for i, m in enumerate((m1, m2, m3))]


@pytest.mark.parametrize("end", ["a", "b"])
def test_either_end_replays_the_whole_handshake(end):
    a, b, (m1, m2, m3) = handshake()
    static, ephemeral = (a if end == "a" else b).handshake_secrets()
    assert (static, ephemeral) == SECRETS[end]
    replay = HandshakeReplay(initiator=end == "a", static_secret=static, ephemeral_secret=ephemeral)
    replay.message_1(m1)
    responder = replay.message_2(m2)
    initiator = replay.message_3(m3)
    assert responder.error is None and responder.peer_id == PeerId.from_public_key(BOB.public_key)
    assert initiator.error is None and initiator.peer_id == PeerId.from_public_key(ALICE.public_key)
    assert initiator.stream_muxers == ("/yamux/1.0.0",) and responder.stream_muxers == ()
    assert replay.transport_keys() == a.transport_keys() == b.transport_keys()
    assert replay.state.h == a.handshake_hash == b.handshake_hash


def test_a_forged_signature_is_reported(monkeypatch):
    """The responder signs another static key: the replay says so, the dialer refuses."""
    original = NoiseSession._payload

    def payload(self):
        real = self._s
        try:
            from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
            self._s = X25519PrivateKey.from_private_bytes(bytes([9] * 32))
            return original(self)
        finally:
            self._s = real

    monkeypatch.setattr(NoiseSession, "_payload", payload)
    with pytest.raises(RemoteProtocolError, match="does not verify"):
        handshake()
    monkeypatch.undo()
    a = NoiseSession(initiator=True, identity=ALICE, static_secret=SECRETS["a"][0],
                     ephemeral_secret=SECRETS["a"][1])
    b = NoiseSession(initiator=False, identity=BOB, static_secret=SECRETS["b"][0],
                     ephemeral_secret=SECRETS["b"][1])
    m1 = a.data_to_send()
    monkeypatch.setattr(NoiseSession, "_payload", payload)
    b.receive_data(m1, 0.0)
    m2 = b.data_to_send()
    replay = HandshakeReplay(initiator=False, static_secret=SECRETS["b"][0],
                             ephemeral_secret=SECRETS["b"][1])
    replay.message_1(HandshakeMessage[1].parse(NoiseFrame.parse(m1)))
    got = replay.message_2(HandshakeMessage[2].parse(NoiseFrame.parse(m2)))
    assert got.peer_id is None and "does not verify" in got.error


def test_wrong_secrets_fail_to_decrypt():
    _, _, (m1, m2, _) = handshake()
    replay = HandshakeReplay(initiator=True, static_secret=bytes([7] * 32),
                             ephemeral_secret=bytes([8] * 32))
    replay.message_1(m1)
    with pytest.raises(RemoteProtocolError, match="tag"):
        replay.message_2(m2)
