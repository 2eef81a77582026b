"""Signed envelopes and peer records (libp2p RFC 0002 signed envelopes, RFC 0003 routing records).

``Envelope`` (proto3): ``PublicKey public_key = 1; bytes payload_type = 2; bytes payload = 3;
bytes signature = 5``. The signature covers "the length of the domain separation string [...]
the domain separation string [...] the length of the payload_type field [...] its value [...]
the length of the payload field [...] its value", lengths as unsigned varints (§Signature
Production / Verification). A ``PeerRecord`` travels in an envelope with domain
``libp2p-peer-record`` and payload type the multicodec ``libp2p-peer-record`` (0x0301).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p2pkit.errors import ParseError
from p2pkit.ipfs.keys import Ed25519Identity, PublicKeyMessage, verify_signature
from p2pkit.ipfs.multicodec import CODES
from p2pkit.ipfs.protobuf import Field, Message
from p2pkit.ipfs.varint import encode_uvarint

__all__ = ["PEER_RECORD_DOMAIN", "PEER_RECORD_PAYLOAD_TYPE", "EnvelopeMessage",
           "PeerRecordMessage", "open_envelope", "seal", "signed_content"]

#: The domain of peer records (RFC 0003 routing records; go-libp2p
#: ``PeerRecordEnvelopeDomain``, js-libp2p ``ENVELOPE_DOMAIN_PEER_RECORD``).
PEER_RECORD_DOMAIN = "libp2p-peer-record"
#: The multicodec ``libp2p-peer-record`` (0x0301) as the implementations write it: its two
#: big-endian bytes (go-libp2p ``PeerRecordEnvelopePayloadType = []byte{0x03, 0x01}``,
#: js-libp2p ``ENVELOPE_PAYLOAD_TYPE_PEER_RECORD = [3, 1]``), not its varint ``81 06``.
PEER_RECORD_PAYLOAD_TYPE = CODES["libp2p-peer-record"].to_bytes(2, "big")
#: Largest payload accepted inside an envelope.
MAX_PAYLOAD_LENGTH = 64 * 1024

# fmt: off
EnvelopeMessage = Message(
    "Envelope",
    Field(1, "public_key", PublicKeyMessage, doc="key that signed the payload"),
    Field(2, "payload_type", "bytes", implicit=True, max_length=64, doc="multicodec of the payload"),
    Field(3, "payload", "bytes", implicit=True, max_length=MAX_PAYLOAD_LENGTH),
    Field(5, "signature", "bytes", implicit=True, max_length=1024),
    protocol="libp2p-envelope",
)
AddressInfo = Message("AddressInfo", Field(1, "multiaddr", "bytes", implicit=True, max_length=1024))
PeerRecordMessage = Message(
    "PeerRecord",
    Field(1, "peer_id", "bytes", implicit=True, max_length=128),
    Field(2, "seq", "uint64", implicit=True, doc="increases with each new record"),
    Field(3, "addresses", AddressInfo, repeated=True),
    protocol="libp2p-peer-record",
)
# fmt: on


def signed_content(domain: str, payload_type: bytes, payload: bytes) -> bytes:
    """The buffer an envelope's signature covers (§Signature Production / Verification)."""
    parts = [domain.encode("utf-8"), payload_type, payload]
    return b"".join(encode_uvarint(len(p)) + p for p in parts)


def seal(identity: Ed25519Identity, domain: str, payload_type: bytes, payload: bytes) -> bytes:
    """A serialized ``Envelope`` of ``payload`` signed by ``identity``."""
    return EnvelopeMessage.build({
        "public_key": PublicKeyMessage.parse(identity.public_key),
        "payload_type": payload_type, "payload": payload,
        "signature": identity.sign(signed_content(domain, payload_type, payload)),
    })


def open_envelope(data: bytes, domain: str) -> Any:
    """The parsed ``Envelope`` if its signature verifies for ``domain``; :class:`ParseError`
    otherwise (an envelope that does not verify is never used)."""
    env = EnvelopeMessage.parse(data)
    if env.public_key is None:
        raise ParseError("envelope without a public key", protocol="libp2p-envelope",
                         path="Envelope -> public_key")
    key = PublicKeyMessage.build(env.public_key)
    if not verify_signature(key, signed_content(domain, env.payload_type, env.payload),
                            env.signature):
        raise ParseError("envelope signature does not verify", protocol="libp2p-envelope",
                         path="Envelope -> signature")
    return env


def peer_record(peer_id: bytes, seq: int, addresses: Sequence[bytes]) -> bytes:
    """A serialized ``PeerRecord``."""
    return PeerRecordMessage.build({"peer_id": peer_id, "seq": seq,
                                    "addresses": [{"multiaddr": a} for a in addresses]})
