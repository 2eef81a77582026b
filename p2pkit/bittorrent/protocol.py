"""The registry entries of the BitTorrent peer wire (over TCP and uTP) and of uTP itself.

Names and ``"module:attribute"`` strings only: importing this module imports no schema, no
dissector and no scapy (see :mod:`p2pkit.registry`).
"""

from __future__ import annotations

from p2pkit.registry import ProtocolDescriptor
from p2pkit.undecoded import UNDECODED_FIELDS

__all__ = ["BITTORRENT", "DESCRIPTORS", "UTP"]


def peer_wire_messages() -> tuple[str, ...]:
    """Every message name a peer-wire record can carry (BEP 3, 6, 10, 52, and the dissector's
    own ``mse_preamble`` and ``unknown``)."""
    from p2pkit.bittorrent.wire.messages import MESSAGE_IDS

    return ("handshake", "mse_preamble", "keep_alive", "unknown", "undecoded", *MESSAGE_IDS)


BITTORRENT = ProtocolDescriptor(
    name="bittorrent",
    title="BitTorrent peer wire protocol",
    specs=("BEP 3", "BEP 6", "BEP 9", "BEP 10", "BEP 11", "BEP 52"),
    schemas=(
        "p2pkit.bittorrent.wire.messages.Handshake",
        "p2pkit.bittorrent.wire.messages.PeerMessage",
        "p2pkit.bittorrent.wire.extensions.ExtendedHandshake",
        "p2pkit.bittorrent.wire.extensions.UtMetadata",
        "p2pkit.bittorrent.wire.extensions.UtPex",
        "p2pkit.bittorrent.wire.mse.KeyExchange",
        "p2pkit.bittorrent.wire.mse.SyncHashes",
        "p2pkit.bittorrent.wire.mse.CryptoProvide",
        "p2pkit.bittorrent.wire.mse.CryptoSelect",
    ),
    stream_detector="p2pkit.bittorrent.dissect:detect_peer_wire",
    stream_decoder="p2pkit.bittorrent.dissect:peer_wire_stream",
    # the catch-all heuristic (a run of plausible messages): after every marked protocol
    priority=1000,
    messages="p2pkit.bittorrent.protocol:peer_wire_messages",
    fields=(*UNDECODED_FIELDS, "extension", "message", "length", "id", "payload",
            # an mse_preamble decrypted with a key log (MSE (Vuze wiki))
            "encryption", "decrypted", "side", "pad", "pad_c", "pad_d", "initial_payload"),
    summary=("index", "begin", "length", "port", "extension", "msg_type", "piece", "info_hash",
             "extended_id"),
    scapy="p2pkit.bittorrent.scapy_layers:LAYERS",
    cli=("bt", "p2pkit.cli.bt:bt"),
)

UTP = ProtocolDescriptor(
    name="bt-utp",
    title="uTorrent transport protocol (uTP)",
    specs=("BEP 29",),
    schemas=("p2pkit.bittorrent.wire.utp.UtpPacket",),
    datagram_detector="p2pkit.bittorrent.wire.utp:looks_like_utp",
    datagram_decoder="p2pkit.bittorrent.dissect:UtpDecoder",
    priority=300,
    messages=("st_data", "st_fin", "st_state", "st_reset", "st_syn", "undecoded"),
    fields=(*UNDECODED_FIELDS, "payload_length",),
    summary=("extension", "connection_id", "seq_nr", "ack_nr"),
    scapy="p2pkit.bittorrent.scapy_layers:UTP_LAYERS",
)

#: What :mod:`p2pkit.registry` registers from this module.
DESCRIPTORS = (BITTORRENT, UTP)
