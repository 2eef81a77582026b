"""Keys and peer ids (libp2p-peer-ids-peer-ids.md): the spec's key test vectors and examples."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.errors import ParseError
from p2pkit.ipfs.keys import (
    Ed25519Identity,
    PrivateKeyMessage,
    PublicKeyMessage,
    verify_signature,
)
from p2pkit.ipfs.peer_id import PeerId
from tests.ipfs.spec_protos import SPECS, require_specs


def _vectors():
    rows = {}
    if not SPECS.is_dir():
        return rows
    for line in (SPECS / "libp2p-peer-ids-peer-ids.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 4 and cells[1].endswith("key") and set(cells[2]) <= set(
                "0123456789abcdefABCDEF") and cells[2]:
            rows[cells[1]] = bytes.fromhex(cells[2])
    return rows


VECTORS = _vectors()


def test_vectors_found():
    require_specs()
    assert len(VECTORS) == 8


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_key_vectors_round_trip(name):
    schema = PrivateKeyMessage if "private" in name else PublicKeyMessage
    msg = schema.parse(VECTORS[name])
    assert msg.Type == {"ECDSA": "ECDSA", "ED25519": "Ed25519", "secp256k1": "Secp256k1",
                        "rsa": "RSA"}[name.split()[0]]
    assert schema.build(msg) == VECTORS[name]


def test_ed25519_private_key_gives_the_public_key():
    require_specs()
    # "Implementations SHOULD check that they can produce the provided public key"
    identity = Ed25519Identity.from_private_key(VECTORS["ED25519 private key"])
    assert identity.public_key == VECTORS["ED25519 public key"]
    assert identity.private_key == VECTORS["ED25519 private key"]
    sig = identity.sign(b"message")
    assert verify_signature(identity.public_key, b"message", sig)
    assert not verify_signature(identity.public_key, b"other", sig)


def test_other_key_types_parse_and_hash():
    require_specs()
    for name in ("ECDSA public key", "secp256k1 public key", "rsa public key"):
        pid = PeerId.from_public_key(VECTORS[name])
        # keys over 42 bytes are hashed with sha256, shorter ones inlined
        assert pid.multihash[0] == (0x12 if len(VECTORS[name]) > 42 else 0x00)
        assert pid.matches(VECTORS[name])
        # verifying with them is possible (a wrong signature is simply false)
        assert verify_signature(VECTORS[name], b"m", b"\x30\x06\x02\x01\x01\x02\x01\x01" if
                                "rsa" not in name else bytes(512)) is False


def test_spec_examples():
    ed = PeerId.from_text("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
    assert ed.multihash[0] == 0x00 and ed.public_key is not None
    assert PublicKeyMessage.parse(ed.public_key).Type == "Ed25519"
    assert str(ed) == "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    sha = PeerId.from_text("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
    assert sha.multihash[:2] == b"\x12\x20" and sha.public_key is None
    cid = PeerId.from_text("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
    assert cid.to_cid_text() == "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    assert PeerId.from_text(ed.to_cid_text()) == ed


def test_ed25519_vector_peer_id_is_inline():
    require_specs()
    pid = PeerId.from_public_key(VECTORS["ED25519 public key"])
    assert pid.public_key == VECTORS["ED25519 public key"]
    assert str(pid).startswith("12D3KooW")


def test_bad_peer_ids():
    with pytest.raises(ParseError):
        PeerId.from_text("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")  # raw
    with pytest.raises(ParseError):
        PeerId.from_text("xyz")
    with pytest.raises(ParseError):
        PeerId(bytes.fromhex("0003010203"))  # identity of something that is not a PublicKey


@given(st.binary(min_size=32, max_size=32))
def test_generated_identities(secret):
    identity = Ed25519Identity(secret)
    pid = PeerId.from_public_key(identity.public_key)
    assert PeerId.from_text(str(pid)) == pid == PeerId.from_text(pid.to_cid_text())
    assert Ed25519Identity.from_private_key(identity.private_key) == identity
