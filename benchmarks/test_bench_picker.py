"""Piece picker speed (p2pkit/bittorrent/peer/picker.py): the per-block cost of pick + block_received.

A 65,536-piece torrent (256 KiB pieces, so 16 blocks a piece and 1 Mi blocks) and 10 peers:
7 with random bitfields (each piece with probability 0.6) and 3 seeds, each peer keeping
16 requests pending. One benchmark round answers ``BLOCKS`` requests in a random order, asking
the peer that answered for one more block each time and verifying completed pieces, as the
session does. ``early``: nothing downloaded yet (random first, then rarest first); ``late``:
90 % of the pieces verified (resume), so candidates are few and spread out.

Run: ``python -m pytest benchmarks/test_bench_picker.py --benchmark-enable -p no:doctest``.
"""

from __future__ import annotations

import random

import pytest

from p2pkit.bittorrent.peer.picker import PiecePicker

PIECES = 65_536
PIECE_LENGTH = 256 * 1024
PEERS = 10
SEEDS = 3
DEPTH = 16
BLOCKS = 20_000


def make_picker(have_fraction: float, seed: int = 0) -> tuple[PiecePicker, list]:
    rng = random.Random(seed)
    have = [rng.random() < have_fraction for _ in range(PIECES)] if have_fraction else None
    picker = PiecePicker.uniform(PIECES * PIECE_LENGTH, PIECE_LENGTH, rng=random.Random(seed),
                                 have=have)
    for peer in range(PEERS):
        picker.add_peer(peer)
        if peer < SEEDS:
            picker.peer_has_all(peer)
        else:
            picker.peer_bitfield(peer, [rng.random() < 0.6 for _ in range(PIECES)])
    pending = []
    for peer in range(PEERS):
        pending.extend((peer, block) for block in picker.pick(peer, DEPTH))
    return picker, pending


def answer(picker: PiecePicker, pending: list, rng: random.Random) -> None:
    for _ in range(BLOCKS):
        k = rng.randrange(len(pending))
        peer, block = pending[k]
        pending[k] = pending[-1]
        pending.pop()
        result = picker.block_received(peer, block)
        if result.piece_complete:
            picker.piece_verified(block.index)
        pending.extend((peer, new) for new in picker.pick(peer, 1))


@pytest.mark.parametrize("phase", ["early", "late"])
def test_pick_and_block_received(benchmark, phase):
    def setup():
        picker, pending = make_picker(0.9 if phase == "late" else 0.0)
        return (picker, pending, random.Random(1)), {}

    benchmark.extra_info["blocks_per_round"] = BLOCKS
    benchmark.pedantic(answer, setup=setup, rounds=5, iterations=1)


def test_peer_bitfield_of_65536_pieces(benchmark):
    rng = random.Random(2)
    payload = bytes(rng.getrandbits(8) for _ in range(PIECES // 8))

    def setup():
        picker = PiecePicker.uniform(PIECES * PIECE_LENGTH, PIECE_LENGTH, rng=random.Random(0))
        for peer in range(PEERS - 1):
            picker.add_peer(peer)
            picker.peer_bitfield(peer, bytes(rng.getrandbits(8) for _ in range(PIECES // 8)))
        picker.add_peer("new")
        return (picker,), {}

    benchmark.pedantic(lambda picker: picker.peer_bitfield("new", payload), setup=setup,
                       rounds=5, iterations=1)
