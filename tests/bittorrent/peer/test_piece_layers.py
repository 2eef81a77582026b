"""BEP 52 piece layers over the wire, against libtorrent 2.0.8's recorded hash request."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from p2pkit.bittorrent.peer import events as ev
from p2pkit.bittorrent.peer.piece_layers import (
    answer_hash_request,
    answer_leaf_request,
    checked_layer,
    layer_request,
    leaf_request_pieces,
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
    leaf = ev.HashRequest(base_layer=0, **base)  # leaf hashes: answer_leaf_request's job
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


def _file_with_data(length: int, piece_length: int):
    """A v2 file of ``length`` bytes (each 16 KiB block different), its leaves and layer."""
    data = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() * (BLOCK_SIZE // 32)
                    for i in range(-(-length // BLOCK_SIZE)))[:length]
    leaves = [hashlib.sha256(data[i:i + BLOCK_SIZE]).digest()
              for i in range(0, length, BLOCK_SIZE)]
    per_piece = piece_length // BLOCK_SIZE
    layer = tuple(merkle_root(leaves[i:i + per_piece], width=per_piece)
                  for i in range(0, len(leaves), per_piece))
    width = 1 << (len(leaves) - 1).bit_length()
    if length > piece_length:
        width = max(width, per_piece * (1 << (len(layer) - 1).bit_length()))
    root = merkle_root(leaves, width=width)
    pieces = {p: data[p * piece_length:(p + 1) * piece_length]
              for p in range(-(-length // piece_length))}
    return FileEntry(path=("f",), length=length, pieces_root=root), leaves, layer, pieces, width


def _climb(answer: ev.Hashes, index: int, length: int) -> tuple[bytes, int]:
    node = merkle_root(answer.hashes[:length])
    position = index // length
    covered = length
    for uncle in answer.hashes[length:]:
        node = hashlib.sha256(node + uncle if position % 2 == 0 else uncle + node).digest()
        position >>= 1
        covered *= 2
    return node, covered


@pytest.mark.parametrize("length_bytes, piece_length, index, length", [
    (5 * 4 * BLOCK_SIZE + 100, 4 * BLOCK_SIZE, 0, 2),     # first blocks of piece 0
    (5 * 4 * BLOCK_SIZE + 100, 4 * BLOCK_SIZE, 6, 2),     # inside piece 1
    (5 * 4 * BLOCK_SIZE + 100, 4 * BLOCK_SIZE, 8, 8),     # pieces 2 and 3 whole
    (5 * 4 * BLOCK_SIZE + 100, 4 * BLOCK_SIZE, 20, 2),    # the last, short block, and padding
    (3 * BLOCK_SIZE, 4 * BLOCK_SIZE, 2, 2),               # a file of less than one piece
    (2 * BLOCK_SIZE, 2 * BLOCK_SIZE, 0, 2),               # exactly one piece
])
def test_leaf_hashes_prove_up_to_the_pieces_root(length_bytes, piece_length, index, length):
    """BEP 52: "Clients MUST NOT reject a hash request with a base layer of zero if it
    immediately follows a request for one of the chunks in the requested range": the leaf
    hashes, and uncles from the piece's other blocks and the piece layer, to the root."""
    file, leaves, layer, pieces, width = _file_with_data(length_bytes, piece_length)
    request = ev.HashRequest(pieces_root=file.pieces_root, base_layer=0, index=index,
                             length=length, proof_layers=20)
    wanted = leaf_request_pieces(request, file, piece_length)
    assert wanted is not None
    answer = answer_leaf_request(request, file, piece_length,
                                 layer if length_bytes > piece_length else None,
                                 {p: pieces[p] for p in wanted})
    assert isinstance(answer, ev.Hashes)
    padded = leaves + [pad_hash(0)] * (width - len(leaves))
    assert list(answer.hashes[:length]) == padded[index:index + length]
    node, covered = _climb(answer, index, length)
    assert covered == width and node == file.pieces_root


def test_leaf_requests_without_the_data_or_outside_the_tree_are_rejected():
    file, _, layer, pieces, width = _file_with_data(5 * 4 * BLOCK_SIZE, 4 * BLOCK_SIZE)
    base = dict(pieces_root=file.pieces_root, base_layer=0, proof_layers=0)
    inside = ev.HashRequest(index=4, length=2, **base)
    assert leaf_request_pieces(inside, file, 4 * BLOCK_SIZE) == range(1, 2)
    assert isinstance(answer_leaf_request(inside, file, 4 * BLOCK_SIZE, layer, {}),
                      ev.HashReject)  # piece 1 not read
    for index, length in ((width, 2), (0, 1024)):
        request = ev.HashRequest(index=index, length=length, **base)
        assert leaf_request_pieces(request, file, 4 * BLOCK_SIZE) is None
        assert isinstance(answer_leaf_request(request, file, 4 * BLOCK_SIZE, layer, pieces),
                          ev.HashReject)
