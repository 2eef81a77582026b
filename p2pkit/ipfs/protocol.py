"""The registry entry of IPFS and libp2p (multiformats, protobuf messages, the connection stack).

Names and ``"module:attribute"`` strings only (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["DESCRIPTORS", "IPFS"]

IPFS = ProtocolDescriptor(
    name="ipfs",
    title="IPFS and libp2p (multistream-select, Noise, yamux, protobuf messages)",
    specs=("multiformats (unsigned-varint, multihash, multibase, CID, multiaddr)",
           "libp2p peer-ids", "libp2p connections (multistream-select)", "libp2p noise",
           "libp2p yamux", "libp2p identify", "libp2p ping", "libp2p kad-dht",
           "IPFS Bitswap", "IPLD dag-pb", "UnixFS", "CARv1"),
    schemas=(
        "p2pkit.ipfs.multihash.Multihash",
        "p2pkit.ipfs.cid.CidV1",
        "p2pkit.ipfs.multiaddr.Component",
        "p2pkit.ipfs.keys.PublicKeyMessage",
        "p2pkit.ipfs.envelope.EnvelopeMessage",
        "p2pkit.ipfs.envelope.PeerRecordMessage",
        "p2pkit.ipfs.noise_payload.NoiseHandshakePayload",
        "p2pkit.ipfs.identify_messages.IdentifyMessage",
        "p2pkit.ipfs.kad_dht_messages.KadMessage",
        "p2pkit.ipfs.bitswap_messages.BitswapMessage",
        "p2pkit.ipfs.dag_pb.PBNode",
        "p2pkit.ipfs.unixfs.UnixfsData",
        "p2pkit.ipfs.car.CarHeader",
        "p2pkit.ipfs.car.CarSection",
    ),
    stream_detector="p2pkit.ipfs.detect:detect_libp2p",
    stream_decoder="p2pkit.ipfs.dissect:libp2p_stream",
    priority=250,
    messages="p2pkit.ipfs.dissect:MESSAGES",
    fields=(*UNDECODED_FIELDS, "line", "kind", "step", "e", "payload", "encrypted_static",
            "encrypted_payload", "encrypted", "encryption", "decrypted", "nonce", "layer",
            "stream_id", "static", "peer_id", "identity_key",
            "stream_muxers", "signature", "data", "protocol_id", "version", "type", "flags",
            "length"),
    summary=("line", "step", "encrypted", "stream_id", "type"),
    cli=("ipfs", "p2pkit.cli.ipfs:ipfs"),
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (IPFS,)
