"""The libp2p handshake payload carried inside Noise messages (libp2p noise spec §The libp2p
Handshake Payload).

proto2: ``NoiseExtensions { repeated bytes webtransport_certhashes = 1; repeated string
stream_muxers = 2; }`` and ``NoiseHandshakePayload { optional bytes identity_key = 1; optional
bytes identity_sig = 2; optional NoiseExtensions extensions = 4; }``. ``identity_key`` is a
serialized ``PublicKey``; ``identity_sig`` signs "the UTF-8 string noise-libp2p-static-key:,
followed by the Noise static public key".
"""

from __future__ import annotations

from p2pkit.ipfs.keys import MAX_KEY_LENGTH
from p2pkit.ipfs.protobuf import Field, Message

__all__ = ["SIGNATURE_PREFIX", "NoiseExtensions", "NoiseHandshakePayload"]

#: "The data to be signed is the UTF-8 string noise-libp2p-static-key:, followed by the Noise
#: static public key".
SIGNATURE_PREFIX = b"noise-libp2p-static-key:"

# fmt: off
NoiseExtensions = Message(
    "NoiseExtensions",
    Field(1, "webtransport_certhashes", "bytes", repeated=True, max_length=256),
    Field(2, "stream_muxers", "string", repeated=True, max_length=256,
          doc="muxers offered as early data (/yamux/1.0.0)"),
)
NoiseHandshakePayload = Message(
    "NoiseHandshakePayload",
    Field(1, "identity_key", "bytes", max_length=MAX_KEY_LENGTH, doc="serialized PublicKey"),
    Field(2, "identity_sig", "bytes", max_length=1024,
          doc="signature of noise-libp2p-static-key: + static key"),
    Field(4, "extensions", NoiseExtensions),
    protocol="noise",
)
# fmt: on
