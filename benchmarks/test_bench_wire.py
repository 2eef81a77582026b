"""Peer wire parse/build speed (BEP 3/10): the fixed-size fast paths and the construct paths.

Run: ``python -m pytest benchmarks --benchmark-enable -p no:doctest``. Real bytes from
tests/data/captures/bt-02-libtorrent-magnet-ut_metadata-pex.pcap (libtorrent 2.0.8).
"""

from __future__ import annotations

import pytest

from p2pkit.bittorrent.wire.extensions import ExtendedHandshake
from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage

REQUEST = bytes.fromhex("0000000d06000000220000000000004000")
HAVE = bytes.fromhex("000000050400000003")
PIECE = bytes.fromhex("0000400907" "00000022" "00004000") + bytes(16384)
#: A piece message's fixed part alone (an empty block): the per-message cost without the copy.
PIECE_HEADER = bytes.fromhex("0000000907" "00000022" "00004000")
HANDSHAKE = (bytes.fromhex("13") + b"BitTorrent protocol" + bytes.fromhex("0000000000100005")
             + bytes.fromhex("8e3f4515b630cdb09dfc315577611036fc7ac773") + b"-LT2080-cQtjXnhSGAbC")
EXTENDED_HANDSHAKE = (b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e"
                      b"11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee"
                      b"1:pi6882e4:reqqi2000e1:v29:p2pkit-lab/libtorrent-2.0.8.0"
                      b"6:yourip4:\x7f\x00\x00\x02e")

CASES = {
    "request": (PeerMessage, REQUEST),
    "have": (PeerMessage, HAVE),
    "piece_header": (PeerMessage, PIECE_HEADER),
    "piece_16k": (PeerMessage, PIECE),
    "handshake": (Handshake, HANDSHAKE),
    "extended_handshake": (ExtendedHandshake, EXTENDED_HANDSHAKE),
}


@pytest.mark.parametrize("name", list(CASES))
def test_parse(benchmark, name):
    schema, data = CASES[name]
    result = benchmark(schema.parse, data)
    assert schema.build(result) == data


@pytest.mark.parametrize("name", list(CASES))
def test_build(benchmark, name):
    schema, data = CASES[name]
    obj = schema.parse(data)
    assert benchmark(schema.build, obj) == data
