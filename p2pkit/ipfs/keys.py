"""libp2p keys: the ``PublicKey``/``PrivateKey`` protobufs and signatures (peer-ids.md §Keys).

"Libp2p encodes keys in a protobuf containing a key type and the encoded key" (proto2,
``required KeyType Type = 1; required bytes Data = 2``). Ed25519 keys are the 32 raw bytes;
private Ed25519 keys are ``[private key][public key]`` (64 bytes, or the older 96-byte form
whose two copies of the public key must match). Secp256k1 public keys are compressed points
(signatures: SHA-256 then ECDSA, DER); ECDSA public keys are PKIX DER; RSA public keys are
PKIX DER (signatures: RSASSA-PKCS1-v1_5 with SHA-256). Verification uses the ``cryptography``
package.

>>> pub = PublicKeyMessage.parse(bytes.fromhex(
...     "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"))
>>> pub.Type, pub.Data[:4].hex()
('Ed25519', '1ed1e8fa')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.protobuf import Field, Message

__all__ = ["MAX_KEY_LENGTH", "Ed25519Identity", "KeyType", "PrivateKeyMessage",
           "PublicKeyMessage", "public_key_bytes", "verify_signature"]

#: Longest serialized key accepted (an RSA-8192 private key is ~4.7 KiB); RSA keys under
#: 2048 bits are refused as peer-ids.md §RSA requires ("MUST" at least 2048 bits).
MAX_KEY_LENGTH = 8192
MIN_RSA_BITS = 2048


class KeyType(enum.IntEnum):
    """``enum KeyType`` (peer-ids.md §Keys)."""

    RSA = 0
    Ed25519 = 1
    Secp256k1 = 2
    ECDSA = 3


# fmt: off
PublicKeyMessage = Message(
    "PublicKey",
    Field(1, "Type", "enum", enum=KeyType, required=True, doc="key algorithm"),
    Field(2, "Data", "bytes", required=True, max_length=MAX_KEY_LENGTH, doc="the encoded key"),
    protocol="libp2p-key",
)
PrivateKeyMessage = Message(
    "PrivateKey",
    Field(1, "Type", "enum", enum=KeyType, required=True, doc="key algorithm"),
    Field(2, "Data", "bytes", required=True, max_length=MAX_KEY_LENGTH, doc="the encoded key"),
    protocol="libp2p-key",
)
# fmt: on


def public_key_bytes(key_type: KeyType | str, data: bytes) -> bytes:
    """The serialized ``PublicKey`` protobuf (what peer ids hash and Noise payloads carry)."""
    name = key_type if isinstance(key_type, str) else KeyType(key_type).name
    return PublicKeyMessage.build({"Type": name, "Data": data})


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``message`` verifies under ``public_key`` (a serialized
    ``PublicKey``), following the signing rules of peer-ids.md for each key type."""
    key = PublicKeyMessage.parse(public_key)
    try:
        if key.Type == "Ed25519":
            if len(key.Data) != 32:
                raise ParseError("an Ed25519 public key is 32 bytes", protocol="libp2p-key",
                                 path="PublicKey -> Data")
            ed25519.Ed25519PublicKey.from_public_bytes(key.Data).verify(signature, message)
        elif key.Type == "Secp256k1":
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), key.Data)
            pub.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif key.Type == "ECDSA":
            pub = serialization.load_der_public_key(key.Data)
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise ParseError("ECDSA key is not an EC key", protocol="libp2p-key")
            pub.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif key.Type == "RSA":
            pub = serialization.load_der_public_key(key.Data)
            if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < MIN_RSA_BITS:
                raise LimitExceeded(f"RSA keys must have at least {MIN_RSA_BITS} bits",
                                    protocol="libp2p-key")
            pub.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise ParseError(f"unknown key type {key.Type}", protocol="libp2p-key",
                             path="PublicKey -> Type")
    except InvalidSignature:
        return False
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ParseError(f"unusable {key.Type} public key: {e}", protocol="libp2p-key",
                         path="PublicKey -> Data") from None
    return True


@dataclass(frozen=True)
class Ed25519Identity:
    """An Ed25519 identity key pair (what p2pkit's nodes use), from 32 secret bytes."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise BuildError("an Ed25519 secret key is 32 bytes", protocol="libp2p-key")

    @classmethod
    def from_private_key(cls, data: bytes) -> Ed25519Identity:
        """From a serialized ``PrivateKey`` (64-byte or legacy 96-byte Ed25519 form)."""
        key = PrivateKeyMessage.parse(data)
        if key.Type != "Ed25519":
            raise ParseError(f"not an Ed25519 key ({key.Type})", protocol="libp2p-key",
                             path="PrivateKey -> Type")
        raw = key.Data
        if len(raw) == 96 and raw[32:64] != raw[64:]:
            raise ParseError("the two public keys of a 96-byte Ed25519 key differ",
                             protocol="libp2p-key", path="PrivateKey -> Data")
        if len(raw) not in (64, 96):
            raise ParseError("an Ed25519 private key is 64 (or 96) bytes",
                             protocol="libp2p-key", path="PrivateKey -> Data")
        identity = cls(raw[:32])
        if identity.public_raw != raw[32:64]:
            raise ParseError("the public half does not belong to the private key",
                             protocol="libp2p-key", path="PrivateKey -> Data")
        return identity

    @property
    def _key(self) -> ed25519.Ed25519PrivateKey:
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.secret)

    @property
    def public_raw(self) -> bytes:
        """The 32-byte public key."""
        return self._key.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)

    @property
    def public_key(self) -> bytes:
        """The serialized ``PublicKey`` protobuf."""
        return public_key_bytes(KeyType.Ed25519, self.public_raw)

    @property
    def private_key(self) -> bytes:
        """The serialized ``PrivateKey`` protobuf (64-byte form)."""
        return PrivateKeyMessage.build({"Type": "Ed25519", "Data": self.secret + self.public_raw})

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature (RFC 8032) of ``message``."""
        return self._key.sign(message)
