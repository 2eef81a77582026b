"""Piece picker (p2pkit/bittorrent/peer/picker.py): BEP 3 piece selection, endgame, BEP 6 allowed fast."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from p2pkit.bittorrent.peer.picker import Block, PiecePicker
from p2pkit.errors import LimitExceeded, LocalProtocolError, P2PKitError, RemoteProtocolError

KIB16 = 16384


def make(lengths, *, seed=0, **options):
    options.setdefault("random_first", 0)
    return PiecePicker(lengths, rng=random.Random(seed), **options)


def check_invariants(picker: PiecePicker) -> None:
    """The sorted-by-availability array, the per-peer marks and the request books agree."""
    n = picker.piece_count
    order, start, pos, avail = picker._order, picker._start, picker._pos, picker._avail
    assert start[0] == 0 and start[-1] == len(order)
    assert len(start) == len(picker._partial_peers) + 2
    assert all(start[k] <= start[k + 1] for k in range(len(start) - 1))
    for a in range(len(start) - 1):
        for k in range(start[a], start[a + 1]):
            assert avail[order[k]] == a and pos[order[k]] == k
    candidates = set(order)
    assert len(candidates) == len(order)
    for i in range(n):
        assert (pos[i] >= 0) == (i in candidates)
        holders = [p for p in picker._partial_peers if p.marks[i]]
        assert avail[i] == len(holders)
        assert not (picker.has_piece(i) and i in candidates)
        assert not (i in picker._downloading and (i in candidates or picker.has_piece(i)))
    for p in picker._partial_peers:
        assert p.count == sum(1 for i in range(n) if p.marks[i])
        assert p.candidates == sum(1 for i in range(n) if p.marks[i] == 1)
        assert all((p.marks[i] == 1) == (i in candidates) for i in range(n) if p.marks[i])
        assert p.wanted == sum(1 for i in range(n) if p.marks[i] and not picker.has_piece(i))
    requested = Counter()
    for peer in picker.peers:
        for block in picker.outstanding(peer):
            requested[block] += 1
            assert not picker.has_piece(block.index)
            download = picker._downloading[block.index]
            j = block.begin // picker.block_size
            assert download.state[j] == 1 and peer in download.requesters[j]
    for index, download in picker._downloading.items():
        assert download.open == download.state.count(0)
        assert download.received == download.state.count(2)
        assert (index in picker._open) == (download.open > 0)
        assert set(download.requesters) == {j for j, s in enumerate(download.state) if s == 1}
    # duplicates come only from endgame (checked when they are made, in PickerMachine.pick);
    # they may outlive it, when a lost peer's blocks or a new peer's pieces end it
    assert all(count <= picker._endgame_requests for count in requested.values())


# ---------------------------------------------------------------- geometry, inputs


def test_blocks_are_16k_with_a_short_last_block():
    picker = PiecePicker.uniform(3 * 40000 + 5, 40000, rng=random.Random(0))
    assert picker.piece_count == 4
    assert picker.blocks(0) == [Block(0, 0, KIB16), Block(0, KIB16, KIB16),
                                Block(0, 2 * KIB16, 40000 - 2 * KIB16)]
    assert picker.blocks(3) == [Block(3, 0, 5)]


def test_bitfield_payload_high_bit_first_and_spare_bits():
    picker = make([KIB16] * 10)
    picker.add_peer("a")
    picker.peer_bitfield("a", bytes([0b10100000, 0b01000000]))
    assert [picker.availability(i) for i in range(10)] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    picker.add_peer("b")
    with pytest.raises(RemoteProtocolError):
        picker.peer_bitfield("b", bytes([0, 0b00100000]))  # spare bit set
    with pytest.raises(RemoteProtocolError):
        picker.peer_bitfield("b", bytes(3))
    with pytest.raises(RemoteProtocolError):
        picker.peer_has("b", 10)
    with pytest.raises(LocalProtocolError):
        picker.pick("nobody", 1)
    check_invariants(picker)


def test_our_bitfield_round_trips_through_peer_bitfield():
    rng = random.Random(5)
    have = [rng.random() < 0.5 for _ in range(21)]
    ours = make([KIB16] * 21, have=have)
    other = make([KIB16] * 21)
    other.add_peer("x")
    other.peer_bitfield("x", ours.bitfield())
    assert [other.availability(i) == 1 for i in range(21)] == have
    assert ours.have_count == sum(have) and ours.missing_count == 21 - sum(have)
    assert ours.missing_length == KIB16 * (21 - sum(have))


def test_limits():
    with pytest.raises(LimitExceeded):
        PiecePicker.uniform(1 << 40, KIB16, rng=random.Random(0))
    with pytest.raises(LimitExceeded):
        make([1 << 31])


def test_full_bitfield_and_have_all_make_a_seed():
    picker = make([KIB16] * 9)
    picker.add_peer("a")
    picker.peer_has("a", 3)
    picker.peer_has_all("a")
    picker.add_peer("b")
    picker.peer_bitfield("b", [True] * 9)
    assert [picker.availability(i) for i in range(9)] == [2] * 9
    assert picker.interested_in("a")
    check_invariants(picker)
    assert picker.remove_peer("a") == []
    assert picker.availability(0) == 1
    check_invariants(picker)


# ---------------------------------------------------------------- strategies


def test_rarest_first_on_constructed_availability():
    # piece i is held by (i % 5) + 1 of five peers; the lone seed "s" can give every piece
    n = 40
    picker = make([KIB16] * n, seed=3)
    for k in range(5):
        picker.add_peer(k)
        picker.peer_bitfield(k, [(i % 5) >= k for i in range(n)])
    picker.add_peer("s")
    picker.peer_has_all("s")
    check_invariants(picker)
    taken = [picker.pick("s", 1)[0].index for _ in range(n)]
    rarity = [picker.availability(i) for i in taken]
    assert rarity == sorted(rarity)
    assert rarity[0] == 2 and rarity[-1] == 6
    check_invariants(picker)


def test_rarest_first_for_a_peer_with_few_pieces_and_many_pieces():
    n = 400
    picker = make([KIB16] * n, seed=4)
    rng = random.Random(9)
    for k in range(6):
        picker.add_peer(k)
        picker.peer_bitfield(k, [rng.random() < 0.6 for _ in range(n)])
    picker.add_peer("few")  # 5 pieces: c*c < candidates, served from its own bitfield
    few = rng.sample(range(n), 5)
    for i in few:
        picker.peer_has("few", i)
    for peer in (0, "few"):
        pieces = [i for i in range(n) if picker._peers[peer].marks[i] == 1]
        rarest = min(picker.availability(i) for i in pieces)
        block = picker.pick(peer, 1)[0]
        assert picker.availability(block.index) == rarest
    check_invariants(picker)


def test_rarest_first_when_the_peers_pieces_sit_behind_a_crowded_rare_bucket():
    # "w" alone has pieces 0..1499 (availability 1); "x" and three others have 1500..1999
    n = 2000
    picker = make([KIB16] * n, seed=5)
    picker.add_peer("w")
    picker.peer_bitfield("w", [i < 1500 for i in range(n)])
    for peer in ("x", 1, 2, 3):
        picker.add_peer(peer)
        picker.peer_bitfield(peer, [i >= 1500 for i in range(n)])
    picker.peer_has("w", 1700)  # two of x's pieces are less rare than the others
    picker.peer_has("w", 1999)
    taken = {picker.pick("x", 1)[0].index for _ in range(40)}
    assert all(1500 <= i < 2000 for i in taken) and not taken & {1700, 1999}
    assert len(taken) == 40
    check_invariants(picker)


def test_random_first_pieces_vary_across_seeds_but_are_held_by_the_peer():
    n = 64
    held = set(range(0, n, 3))
    firsts = set()
    for seed in range(30):
        picker = make([KIB16] * n, seed=seed, random_first=2)
        picker.add_peer("a")
        picker.peer_bitfield("a", [i in held for i in range(n)])
        picker.add_peer("b")
        picker.peer_bitfield("b", [i % 2 == 0 for i in range(n)])  # makes rarity uneven
        block = picker.pick("a", 1)[0]
        assert block.index in held
        firsts.add(block.index)
    assert len(firsts) > 8  # rarest first would pick only the pieces "b" lacks


def test_random_first_ends_after_random_first_pieces():
    n = 50
    picker = make([KIB16] * n, seed=1, random_first=1)
    picker.add_peer("a")
    picker.peer_has_all("a")
    picker.add_peer("b")
    picker.peer_bitfield("b", [i != 7 for i in range(n)])  # piece 7 is the rarest
    first = picker.pick("a", 1)[0]
    picker.block_received("a", first)
    picker.piece_verified(first.index)
    if first.index != 7:
        assert picker.pick("a", 1)[0].index == 7


def test_partial_pieces_are_finished_first():
    picker = make([4 * KIB16] * 20, seed=2)
    for peer in "ab":
        picker.add_peer(peer)
        picker.peer_has_all(peer)
    started = picker.pick("a", 2)
    assert {b.index for b in started} == {started[0].index}
    picker.request_failed("a", started[1])
    following = picker.pick("b", 3)  # the open blocks of the started piece come first
    assert [b.index for b in following] == [started[0].index] * 3
    assert {b.begin for b in following} == {KIB16, 2 * KIB16, 3 * KIB16}
    check_invariants(picker)


def test_allowed_fast_honoured_when_choked():
    picker = make([KIB16] * 30, seed=6)
    picker.add_peer("a")
    picker.peer_has_all("a")
    allowed = {4, 17, 29, 99}  # BEP 6: may list pieces the sender does not have, or any index
    got = picker.pick("a", 10, allowed=allowed)
    assert {b.index for b in got} == {4, 17, 29}
    assert picker.pick("a", 10, allowed=allowed) == []
    assert len(picker.pick("a", 5)) == 5  # unchoked: anything
    check_invariants(picker)


def test_interest_follows_what_the_peer_has():
    picker = make([KIB16] * 4)
    picker.add_peer("a")
    assert not picker.interested_in("a")
    picker.peer_has("a", 2)
    assert picker.interested_in("a")
    block = picker.pick("a", 5)[0]
    assert picker.block_received("a", block).piece_complete
    picker.piece_verified(2)
    assert not picker.interested_in("a")


# ---------------------------------------------------------------- failures, loss, endgame


def test_peer_loss_returns_its_blocks():
    picker = make([3 * KIB16] * 8, seed=7)
    for peer in "ab":
        picker.add_peer(peer)
        picker.peer_has_all(peer)
    mine = picker.pick("a", 4)
    picker.block_received("a", mine[0])
    returned = picker.remove_peer("a")
    assert returned == sorted(mine[1:])
    check_invariants(picker)
    assert [b.index for b in mine] == [mine[0].index] * 3 + [mine[3].index]
    again = picker.pick("b", 2)
    assert again == mine[1:3]  # strict priority: the rest of the piece that had a block
    rest = [b for _ in range(30) for b in picker.pick("b", 1)]
    assert mine[3] in rest and mine[0] not in rest  # the untouched piece is a candidate again
    assert len(rest) == 7 * 3  # the seven other pieces, each once


def test_failed_piece_is_downloaded_again_from_scratch():
    picker = make([2 * KIB16] * 3, seed=8)
    for peer in "ab":
        picker.add_peer(peer)
        picker.peer_has_all(peer)
    first, second = picker.pick("a", 1)[0], picker.pick("b", 1)[0]
    assert first.index == second.index
    picker.block_received("a", first)
    assert picker.block_received("b", second).piece_complete
    with pytest.raises(LocalProtocolError):
        picker.piece_failed((first.index + 1) % 3)
    assert picker.piece_failed(first.index) == {"a", "b"}
    check_invariants(picker)
    assert not picker.has_piece(first.index)
    remaining = [b for _ in range(3) for b in picker.pick("a", 2)]
    assert sorted(b for b in remaining if b.index == first.index) == sorted([first, second])


def test_duplicates_and_unrequested_blocks_are_not_new():
    picker = make([2 * KIB16, 100], seed=9)
    picker.add_peer("a")
    picker.peer_has_all("a")
    blocks = picker.pick("a", 3)
    assert picker.block_received("a", blocks[0]).new
    assert not picker.block_received("a", blocks[0]).new
    assert not picker.block_received("a", Block(0, 1, KIB16)).new  # off the grid
    assert not picker.block_received("a", Block(1, 0, 99)).new  # wrong length
    assert not picker.block_received("a", Block(5, 0, KIB16)).new  # no such piece


def test_endgame_duplicates_and_cancels():
    picker = make([2 * KIB16] * 2, seed=10, endgame_requests=2)
    for peer in "abc":
        picker.add_peer(peer)
        picker.peer_has_all(peer)
    first = picker.pick("a", 4)  # every block requested
    assert len(first) == 4 and picker.in_endgame
    dup_b = picker.pick("b", 4)
    assert sorted(dup_b) == sorted(first)
    assert picker.pick("c", 4) == []  # each block already at endgame_requests peers
    check_invariants(picker)
    result = picker.block_received("b", first[0])
    assert result.new and result.cancel == ("a",)
    assert first[0] not in picker.outstanding("a")
    late = picker.block_received("a", first[0])  # the cancel crossed the piece on the wire
    assert not late.new
    assert picker.pick("c", 4) == []  # the other blocks are still at two peers each
    picker.request_failed("a", first[1])  # e.g. "a" choked us: first[1] is at "b" alone
    assert picker.pick("c", 4) == [first[1]]
    check_invariants(picker)


def test_endgame_waits_for_blocks_nobody_connected_has():
    picker = make([KIB16] * 3, seed=11)
    picker.add_peer("a")
    picker.peer_bitfield("a", [True, True, False])
    picker.pick("a", 5)
    assert picker.in_endgame  # piece 2 is missing but no connected peer has it
    picker.add_peer("b")
    picker.peer_has("b", 2)
    assert not picker.in_endgame


def test_choke_drops_requests_back_to_the_pool():
    picker = make([KIB16] * 6, seed=12)
    picker.add_peer("a")
    picker.peer_has_all("a")
    blocks = picker.pick("a", 6)
    for block in blocks[:3]:
        picker.request_failed("a", block)
    assert picker.drop_requests("a") == sorted(blocks[3:])
    assert picker.outstanding("a") == []
    assert not picker._downloading and len(picker._order) == 6
    check_invariants(picker)


def test_verified_from_disk_cancels_pending_requests():
    picker = make([2 * KIB16] * 2, seed=13)
    picker.add_peer("a")
    picker.peer_has_all("a")
    blocks = picker.pick("a", 1)
    cancels = picker.piece_verified(blocks[0].index)
    assert cancels == {"a": blocks}
    assert picker.outstanding("a") == []
    picker.piece_verified(1 - blocks[0].index)
    assert picker.is_complete and picker.pick("a", 3) == []


# ---------------------------------------------------------------- simulated download


def simulate(seed: int, *, pieces: int = 60, peers: int = 6, piece_length: int = 3 * KIB16 + 7,
             depth: int = 4):
    """Fake peers with random bitfields, random arrival order; returns (picker, receipts)."""
    rng = random.Random(seed)
    picker = PiecePicker.uniform(pieces * piece_length - 1000, piece_length,
                                 rng=random.Random(seed), random_first=3)
    holders = {}
    for k in range(peers):
        picker.add_peer(k)
        bits = [rng.random() < 0.5 for _ in range(pieces)]
        holders[k] = bits
        picker.peer_bitfield(k, bits)
    picker.add_peer("seed")
    picker.peer_has_all("seed")
    holders["seed"] = [True] * pieces
    pending = []  # (peer, block)
    receipts = Counter()
    outside_endgame = Counter()
    steps = 0
    while not picker.is_complete:
        steps += 1
        assert steps < 100_000
        for peer in list(holders):
            room = depth - sum(1 for other, _ in pending if other == peer)
            for block in picker.pick(peer, rng.randrange(0, room + 1)):
                assert holders[peer][block.index]
                pending.append((peer, block))
        if not pending:
            continue
        rng.shuffle(pending)
        peer, block = pending.pop()
        endgame = picker.in_endgame
        result = picker.block_received(peer, block)
        assert result.new
        receipts[block] += 1
        if not endgame:
            outside_endgame[block] += 1
        for other in result.cancel:
            pending.remove((other, block))
        if result.piece_complete:
            picker.piece_verified(block.index)
    return picker, receipts, outside_endgame, pending


@pytest.mark.parametrize("seed", range(4))
def test_simulated_download_receives_every_block_exactly_once(seed):
    picker, receipts, outside, pending = simulate(seed)
    every = [b for i in range(picker.piece_count) for b in picker.blocks(i)]
    assert set(receipts) == set(every)
    assert all(count == 1 for count in receipts.values())
    assert sum(outside.values()) >= len(every) // 2
    assert pending == []  # every duplicate request was cancelled on arrival
    check_invariants(picker)


# ---------------------------------------------------------------- random operations


class PickerMachine(RuleBasedStateMachine):
    """Random peers, haves, picks, arrivals, failures and hash results keep the books right."""

    def __init__(self):
        super().__init__()
        self.picker = PiecePicker([KIB16 * 2, KIB16 * 3, 5000, KIB16, KIB16 * 2, 77] * 3,
                                  rng=random.Random(0), random_first=2)
        self.n = self.picker.piece_count
        self.names = 0
        self.verified = set()
        self.complete = set()

    def live(self):
        return self.picker.peers

    @rule()
    def add(self):
        self.picker.add_peer(self.names)
        self.names += 1

    @precondition(lambda self: self.live())
    @rule(data=st.data(), index=st.integers(0, 17))
    def have(self, data, index):
        self.picker.peer_has(data.draw(st.sampled_from(self.live())), index)

    @precondition(lambda self: self.live())
    @rule(data=st.data(), bits=st.lists(st.booleans(), min_size=18, max_size=18))
    def bitfield(self, data, bits):
        self.picker.peer_bitfield(data.draw(st.sampled_from(self.live())), bits)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def have_all(self, data):
        self.picker.peer_has_all(data.draw(st.sampled_from(self.live())))

    @precondition(lambda self: self.live())
    @rule(data=st.data(), count=st.integers(0, 6),
          allowed=st.none() | st.sets(st.integers(0, 20), max_size=4))
    def pick(self, data, count, allowed):
        peer = data.draw(st.sampled_from(self.live()))
        before = set(self.picker.outstanding(peer))
        elsewhere = {b for p in self.live() if p != peer for b in self.picker.outstanding(p)}
        blocks = self.picker.pick(peer, count, allowed=allowed)
        assert len(blocks) <= count
        assert len(set(blocks)) == len(blocks) and not set(blocks) & before
        if set(blocks) & elsewhere:  # "requests for everything to everyone", only in endgame
            assert self.picker.in_endgame
        for block in blocks:
            assert allowed is None or block.index in allowed
            assert block.index not in self.verified

    @precondition(lambda self: any(self.picker.outstanding(p) for p in self.live()))
    @rule(data=st.data(), fail=st.booleans())
    def answer(self, data, fail):
        peer = data.draw(st.sampled_from([p for p in self.live() if self.picker.outstanding(p)]))
        block = data.draw(st.sampled_from(self.picker.outstanding(peer)))
        if fail:
            self.picker.request_failed(peer, block)
            return
        result = self.picker.block_received(peer, block)
        assert result.new
        assert peer not in result.cancel
        if result.piece_complete:
            self.complete.add(block.index)

    @precondition(lambda self: self.complete)
    @rule(data=st.data(), good=st.booleans())
    def hash_check(self, data, good):
        index = data.draw(st.sampled_from(sorted(self.complete)))
        self.complete.discard(index)
        if good:
            self.picker.piece_verified(index)
            self.verified.add(index)
        else:
            self.picker.piece_failed(index)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def choked(self, data):
        peer = data.draw(st.sampled_from(self.live()))
        pending = self.picker.outstanding(peer)
        returned = self.picker.drop_requests(peer)
        assert set(returned) <= set(pending) and not self.picker.outstanding(peer)

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def remove(self, data):
        self.picker.remove_peer(data.draw(st.sampled_from(self.live())))

    @invariant()
    def books_agree(self):
        check_invariants(self.picker)
        assert {i for i in range(self.n) if self.picker.has_piece(i)} == self.verified
        assert self.picker.missing_length == sum(self.picker.piece_length(i)
                                                 for i in range(self.n) if i not in self.verified)


TestPickerMachine = PickerMachine.TestCase
TestPickerMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5), st.integers(-3, 40), st.integers(-5, 40000), st.integers(-1, 20000))
def test_hostile_inputs_raise_only_p2pkit_errors(bitfield, index, begin, length):
    picker = make([KIB16 * 2] * 17)
    picker.add_peer("x")
    for call in (lambda: picker.peer_bitfield("x", bitfield),
                 lambda: picker.peer_has("x", index),
                 lambda: picker.block_received("x", Block(index, begin, length)),
                 lambda: picker.request_failed("x", Block(index, begin, length))):
        try:
            call()
        except P2PKitError:
            pass
    check_invariants(picker)
