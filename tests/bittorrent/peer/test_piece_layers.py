"""BEP 52 piece layers over the wire, against libtorrent 2.0.8's recorded hash request."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.piece_layers import (
    answer_hash_request,
    checked_layer,
    layer_request,
    needs_layer,
)
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, FileEntry, Metainfo, merkle_root, pad_hash
from p2pkit.errors import LocalProtocolError
from tests.pcap_payloads import tcp_streams

ROOT = Path(__file__).resolve().parents[3]
META = Metainfo.parse((ROOT / "p2pkit/data/libtorrent-v2.torrent").read_bytes())
FILE = META.files[0]


def recorded(kind: str):
    """The hash_request / hashes libtorrent exchanged in bt-05 (same torrent as META)."""
    for data in tcp_streams("bt-05-libtorrent-v2-magnet.pcap").values():
        if data.startswith(b"\x13BitTorrent protocol"):
            for frame in MessageFramer(handshake=True).feed(data):
                if frame.message.get("type") == kind:
                    return frame
    raise AssertionError(kind)


def fields(msg) -> dict:
    return {k: msg[k] for k in ("pieces_root", "base_layer", "index", "length",
                                "proof_layers")}


def test_our_layer_request_is_the_one_libtorrent_sent():
    frame = recorded("hash_request")
    assert frame.message.pieces_root == FILE.pieces_root
    request = layer_request(FILE, META.piece_length)
    assert PeerMessage.build(dict(type="hash_request", **vars_of(request))) == frame.data


def vars_of(event) -> dict:
    return {k: getattr(event, k) for k in ("pieces_root", "base_layer", "index", "length",
                                           "proof_layers")}


def test_our_answer_is_the_hashes_libtorrent_sent_and_checks():
    request = ev.HashRequest(**fields(recorded("hash_request").message))
    answer = answer_hash_request(request, META.piece_layers, META.piece_length)
    frame = recorded("hashes")
    assert isinstance(answer, ev.Hashes)
    assert PeerMessage.build(dict(type="hashes", **vars_of(answer),
                                  hashes=list(answer.hashes))) == frame.data
    assert checked_layer(answer, FILE, META.piece_length) == META.piece_layers[FILE.pieces_root]


def test_a_tampered_layer_is_refused():
    layer = list(META.piece_layers[FILE.pieces_root])
    layer[7] = hashlib.sha256(b"lie").digest()
    answer = ev.Hashes(**vars_of(layer_request(FILE, META.piece_length)), hashes=tuple(layer))
    assert checked_layer(answer, FILE, META.piece_length) is None
    short = ev.Hashes(**vars_of(layer_request(FILE, META.piece_length)),
                      hashes=tuple(layer[:10]))
    assert checked_layer(short, FILE, META.piece_length) is None


@pytest.mark.parametrize("index, length, proof_layers", [(0, 2, 5), (8, 8, 6), (32, 32, 5),
                                                         (60, 4, 2), (6, 2, 9)])
def test_partial_requests_carry_the_uncles_that_lead_to_the_root(index, length, proof_layers):
    """BEP 52: hashes start with the base layer, then the uncles "closest to the root" last;
    the first log2(length)-1 proof layers are omitted."""
    request = ev.HashRequest(pieces_root=FILE.pieces_root, base_layer=1, index=index,
                             length=length, proof_layers=proof_layers)
    answer = answer_hash_request(request, META.piece_layers, META.piece_length)
    height = length.bit_length() - 1
    uncles = answer.hashes[length:]
    # ... and none beyond the root (the 64-piece layer has 6 levels above it).
    assert len(uncles) == min(max(0, proof_layers - (height - 1)), 6 - height)
    node = merkle_root(answer.hashes[:length])
    position = index >> height
    for uncle in uncles:
        pair = (node, uncle) if position % 2 == 0 else (uncle, node)
        node = hashlib.sha256(pair[0] + pair[1]).digest()
        position >>= 1
    if len(uncles) == 6 - height:  # the proof reached the top: it must be the pieces root
        assert node == FILE.pieces_root


def test_requests_we_cannot_serve_are_rejected():
    base = dict(pieces_root=FILE.pieces_root, index=0, length=64, proof_layers=5)
    leaf = ev.HashRequest(base_layer=0, **base)  # leaf hashes: p2pkit keeps none
    assert isinstance(answer_hash_request(leaf, META.piece_layers, META.piece_length),
                      ev.HashReject)
    unknown = ev.HashRequest(**{**base, "pieces_root": bytes(32)}, base_layer=1)
    assert isinstance(answer_hash_request(unknown, META.piece_layers, META.piece_length),
                      ev.HashReject)
    beyond = ev.HashRequest(**{**base, "index": 64}, base_layer=1)
    assert isinstance(answer_hash_request(beyond, META.piece_layers, META.piece_length),
                      ev.HashReject)


def test_small_files_need_no_layer_and_huge_ones_need_proofs():
    small = FileEntry(path=("s",), length=BLOCK_SIZE, pieces_root=pad_hash(0))
    assert not needs_layer(small, 2 * BLOCK_SIZE)
    with pytest.raises(LocalProtocolError):
        layer_request(small, 2 * BLOCK_SIZE)
    huge = FileEntry(path=("h",), length=600 * BLOCK_SIZE, pieces_root=pad_hash(0))
    with pytest.raises(LocalProtocolError, match="proofs"):
        layer_request(huge, BLOCK_SIZE)


@pytest.mark.parametrize("length, index", [(3, 0), (1, 0), (4, 2)])
def test_hash_request_rules(length, index):
    with pytest.raises(LocalProtocolError):
        ev.HashRequest(pieces_root=bytes(32), base_layer=1, index=index, length=length,
                       proof_layers=0)
