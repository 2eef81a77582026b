"""noise-libp2p (libp2p-noise.md): the XX handshake between two p2pkit sessions with fixed
keys, byte for byte against the ``noiseprotocol`` package, and the refusals the spec demands."""

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.core import NEED_DATA
from p2pkit.errors import LocalProtocolError, P2PKitError, RemoteProtocolError
from p2pkit.ipfs.keys import Ed25519Identity
from p2pkit.ipfs.noise import (
    MAX_PLAINTEXT,
    DataReceived,
    HandshakeComplete,
    NoiseFrame,
    NoiseSession,
    SendData,
    describe_message,
)
from p2pkit.ipfs.noise_payload import SIGNATURE_PREFIX, NoiseHandshakePayload
from p2pkit.ipfs.peer_id import PeerId

ALICE = Ed25519Identity(bytes(range(32)))
BOB = Ed25519Identity(bytes(range(1, 33)))
KEYS = {"a_s": bytes([1]) * 32, "a_e": bytes([2]) * 32, "b_s": bytes([3]) * 32,
        "b_e": bytes([4]) * 32}


def sessions(**bob_options):
    a = NoiseSession(initiator=True, identity=ALICE, static_secret=KEYS["a_s"],
                     ephemeral_secret=KEYS["a_e"])
    b = NoiseSession(initiator=False, identity=BOB, static_secret=KEYS["b_s"],
                     ephemeral_secret=KEYS["b_e"], **bob_options)
    return a, b


def events(core):
    return list(iter(core.next_event, NEED_DATA))


def handshake(a, b):
    m1 = a.data_to_send()
    b.receive_data(m1, 0)
    m2 = b.data_to_send()
    a.receive_data(m2, 0)
    m3 = a.data_to_send()
    b.receive_data(m3, 0)
    return m1, m2, m3


def test_handshake_and_transport():
    a, b = sessions(stream_muxers=("/yamux/1.0.0",))
    m1, m2, m3 = handshake(a, b)
    # §Wire Format: 2-byte big-endian lengths; message 1 is the bare ephemeral key
    assert m1[:2] == b"\x00\x20" and len(m1) == 34
    assert len(NoiseFrame.parse(m2)) == 32 + 48 + len(NoiseHandshakePayload.build(
        {"identity_key": BOB.public_key, "identity_sig": bytes(64),
         "extensions": {"stream_muxers": ["/yamux/1.0.0"]}})) + 16
    assert describe_message(2, NoiseFrame.parse(m2)).e == m2[2:34]
    [done_a], [done_b] = events(a), events(b)
    assert done_a.remote_peer_id == PeerId.from_public_key(BOB.public_key)
    assert done_b.remote_peer_id == PeerId.from_public_key(ALICE.public_key)
    assert done_a.stream_muxers == ("/yamux/1.0.0",) and done_b.stream_muxers == ()
    assert a.handshake_hash == b.handshake_hash
    assert a.keys == tuple(reversed(b.keys))
    # frames of at most 65535 bytes: a large write is split
    big = bytes(range(256)) * 600
    wire = a.send(SendData(data=big), 0)
    assert len(wire) == len(big) + 3 * (2 + 16)  # 153600 bytes in 3 messages
    b.receive_data(wire, 0)
    got = events(b)
    assert [len(e.data) for e in got] == [MAX_PLAINTEXT, MAX_PLAINTEXT, len(big) - 2 * MAX_PLAINTEXT]
    assert b"".join(e.data for e in got) == big
    a.receive_data(b.send(SendData(data=b"pong"), 0), 0)
    assert events(a) == [DataReceived(data=b"pong")]


def test_fixed_keys_give_fixed_bytes():
    first = handshake(*sessions())
    again = handshake(*sessions())
    assert first == again  # no hidden randomness: keys and Ed25519 signatures are deterministic


def _reference(initiator: bool, static: bytes, ephemeral: bytes):
    noise = pytest.importorskip("noise.connection", reason="noiseprotocol cross-checks Noise")
    proto = noise.NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_SHA256")
    proto.set_as_initiator() if initiator else proto.set_as_responder()
    proto.set_keypair_from_private_bytes(noise.Keypair.STATIC, static)
    proto.set_keypair_from_private_bytes(noise.Keypair.EPHEMERAL, ephemeral)
    with warnings.catch_warnings():  # "fixed ephemeral keys are OK for testing"
        warnings.simplefilter("ignore")
        proto.start_handshake()
    return proto


def test_byte_for_byte_against_noiseprotocol_as_responder():
    a, b = sessions()
    m1, m2, m3 = handshake(a, b)
    ref = _reference(False, KEYS["b_s"], KEYS["b_e"])
    assert ref.read_message(NoiseFrame.parse(m1)) == b""
    # the reference responder, given the same keys and the same libp2p payload, writes the
    # very bytes p2pkit's responder wrote
    payload = NoiseHandshakePayload.build({
        "identity_key": BOB.public_key,
        "identity_sig": BOB.sign(SIGNATURE_PREFIX + _x25519_public(KEYS["b_s"]))})
    assert NoiseFrame.build(ref.write_message(payload)) == m2
    alice_payload = NoiseHandshakePayload.parse(ref.read_message(NoiseFrame.parse(m3)))
    assert alice_payload.identity_key == ALICE.public_key
    assert ref.get_handshake_hash() == a.handshake_hash
    # transport both ways
    assert ref.decrypt(NoiseFrame.parse(a.send(SendData(data=b"hello"), 0))) == b"hello"
    a.receive_data(NoiseFrame.build(ref.encrypt(b"world")), 0)
    assert events(a)[-1] == DataReceived(data=b"world")


def test_against_noiseprotocol_as_initiator():
    ref = _reference(True, KEYS["a_s"], KEYS["a_e"])
    _, b = sessions()
    b.receive_data(NoiseFrame.build(ref.write_message(b"")), 0)
    m2 = NoiseFrame.parse(b.data_to_send())
    bob_payload = NoiseHandshakePayload.parse(ref.read_message(m2))
    assert PeerId.from_public_key(bob_payload.identity_key) == PeerId.from_public_key(BOB.public_key)
    static_a = _x25519_public(KEYS["a_s"])
    payload = NoiseHandshakePayload.build({
        "identity_key": ALICE.public_key, "identity_sig": ALICE.sign(SIGNATURE_PREFIX + static_a)})
    b.receive_data(NoiseFrame.build(ref.write_message(payload)), 0)
    [done] = events(b)
    assert isinstance(done, HandshakeComplete)
    assert done.remote_peer_id == PeerId.from_public_key(ALICE.public_key)


def _x25519_public(secret: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def test_bad_signature_is_refused():
    # §Static Key Authentication: "If the signature is invalid, the connection MUST be
    # terminated immediately."
    ref = _reference(True, KEYS["a_s"], KEYS["a_e"])
    _, b = sessions()
    b.receive_data(NoiseFrame.build(ref.write_message(b"")), 0)
    ref.read_message(NoiseFrame.parse(b.data_to_send()))
    payload = NoiseHandshakePayload.build({
        "identity_key": ALICE.public_key, "identity_sig": ALICE.sign(b"something else")})
    with pytest.raises(RemoteProtocolError, match="does not verify"):
        b.receive_data(NoiseFrame.build(ref.write_message(payload)), 0)


def test_peer_id_not_the_dialed_one_is_refused():
    a = NoiseSession(initiator=True, identity=ALICE, static_secret=KEYS["a_s"],
                     ephemeral_secret=KEYS["a_e"],
                     expected_peer=PeerId.from_public_key(ALICE.public_key))
    _, b = sessions()
    b.receive_data(a.data_to_send(), 0)
    with pytest.raises(RemoteProtocolError, match="not the dialed"):
        a.receive_data(b.data_to_send(), 0)


def test_tampering_and_misuse():
    a, b = sessions()
    handshake(a, b)
    wire = bytearray(a.send(SendData(data=b"secret"), 0))
    wire[-1] ^= 1
    with pytest.raises(RemoteProtocolError, match="tag"):
        b.receive_data(bytes(wire), 0)
    fresh, _ = sessions()
    with pytest.raises(LocalProtocolError):
        fresh.send(SendData(data=b"early"), 0)


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_random_handshake_bytes_raise_only_p2pkit_errors(data):
    _, b = sessions()
    try:
        b.receive_data(data, 0)
        b.receive_data(NoiseFrame.build(data[:100]), 0)
    except P2PKitError:
        pass
