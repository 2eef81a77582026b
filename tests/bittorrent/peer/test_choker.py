"""Choker (p2pkit/bittorrent/peer/choker.py): BEP 3's choking algorithm, round by round."""

from __future__ import annotations

import math
import random

import pytest

from p2pkit.bittorrent.peer.choker import ChokeDecision, Choker
from p2pkit.errors import LocalProtocolError


def choker_with(peers, *, seed=0, slots=4, interested=True, now=0.0):
    choker = Choker(slots=slots, rng=random.Random(seed))
    for peer in peers:
        choker.add_peer(peer, now)
        choker.set_interested(peer, interested)
    return choker


def best(choker, peers, now, count, *, seeding=False):
    rate = choker.upload_rate if seeding else choker.download_rate
    return set(sorted(peers, key=lambda p: rate(p, now), reverse=True)[:count])


def test_the_four_best_downloaders_plus_the_optimistic_unchoke():
    peers = list(range(10))
    for seed in range(20):
        choker = choker_with(peers, seed=seed)
        rates = random.Random(seed).sample(range(1000, 100_000), len(peers))
        for peer, amount in zip(peers, rates):
            choker.record(peer, downloaded=amount, now=1.0)
        before = choker.unchoked  # the first interested peers took the idle slots
        decision = choker.run(5.0, seeding=False)
        optimistic = choker.optimistic
        assert optimistic == choker.rotation[0]
        others = [p for p in peers if p != optimistic]
        # the optimistic peer is interested, so it "counts as one of the four"
        expected = {optimistic} | best(choker, others, 5.0, 3)
        assert choker.unchoked == expected
        assert decision == ChokeDecision(unchoke=expected - before, choke=before - expected)


def test_a_non_interested_optimistic_does_not_take_a_slot():
    peers = list(range(8))
    choker = choker_with(peers, seed=1)
    head = choker.rotation[0]
    choker.set_interested(head, False)
    for peer in peers:
        choker.record(peer, downloaded=1000 * (peer + 1), now=1.0)
    choker.run(2.0, seeding=False)
    others = [p for p in peers if p != head]
    assert choker.unchoked == {head} | best(choker, others, 2.0, 4)


def test_better_uploaders_that_are_not_interested_are_unchoked_until_they_become_interested():
    peers = list(range(9))
    choker = choker_with(peers, seed=2)
    rng = random.Random(2)
    for peer in peers:
        choker.record(peer, downloaded=rng.randrange(1000, 50_000), now=1.0)
    optimistic = choker.rotation[0]
    ranked = sorted((p for p in peers if p != optimistic),
                    key=lambda p: choker.download_rate(p, 3.0), reverse=True)
    lazy = ranked[:2]  # the two best uploaders to us do not want anything from us
    for peer in lazy:
        choker.set_interested(peer, False)
    choker.run(3.0, seeding=False)
    interested_ranked = [p for p in ranked if p not in lazy]
    assert choker.unchoked == {optimistic, *lazy, *interested_ranked[:3]}
    # one of them becomes interested: "the worst uploader gets choked", at once
    decision = choker.set_interested(lazy[1], True)
    assert decision == ChokeDecision(choke=frozenset({interested_ranked[2]}))
    assert choker.unchoked == {optimistic, *lazy, *interested_ranked[:2]}
    # becoming not interested, or interested while choked, changes nothing between rounds
    assert not choker.set_interested(lazy[1], False)
    assert not choker.set_interested(interested_ranked[5], False)


def test_no_changes_between_rounds():
    peers = list(range(7))
    choker = choker_with(peers, seed=3)
    choker.run(0.0, seeding=False)
    assert len(choker.unchoked) == 4 and choker.next_round() == 10.0
    before = choker.unchoked
    for peer in peers:
        if peer not in before:
            choker.record(peer, downloaded=10**7, now=4.0)  # much better, but it must wait
    for now in (1.0, 5.0, 9.999):
        assert choker.run(now, seeding=False) == ChokeDecision()
        assert choker.unchoked == before
    decision = choker.run(10.0, seeding=False)
    assert decision.choke and decision.unchoke
    assert choker.unchoked == (before - decision.choke) | decision.unchoke


def test_an_idle_slot_is_filled_when_a_peer_becomes_interested():
    choker = choker_with(range(2), seed=7, slots=3)
    choker.run(0.0, seeding=False)
    assert choker.unchoked == {0, 1}
    choker.add_peer(2, 3.0)
    assert choker.set_interested(2, True) == ChokeDecision(unchoke=frozenset({2}))
    choker.add_peer(3, 4.0)
    assert choker.set_interested(3, True) == ChokeDecision()  # three slots, all busy
    assert choker.unchoked == {0, 1, 2}


def test_a_forced_round_runs_now_and_restarts_the_clock():
    choker = choker_with(range(5), seed=7)
    choker.run(0.0, seeding=False)
    choker.record(next(iter(set(range(5)) - choker.unchoked)), downloaded=10**6, now=1.0)
    assert choker.run(4.0, seeding=False) == ChokeDecision()
    decision = choker.run(4.0, seeding=False, force=True)
    assert len(decision.unchoke) == len(decision.choke) == 1
    assert choker.next_round() == 14.0


def test_seeding_ranks_by_upload_rate():
    peers = list(range(10))
    choker = choker_with(peers, seed=4)
    rng = random.Random(4)
    for peer in peers:
        choker.record(peer, downloaded=rng.randrange(10**6), uploaded=rng.randrange(10**6),
                      now=1.0)
    optimistic = choker.rotation[0]
    others = [p for p in peers if p != optimistic]
    choker.run(2.0, seeding=True)
    seeding = choker.unchoked
    assert seeding == {optimistic} | best(choker, others, 2.0, 3, seeding=True)
    choker.run(12.0, seeding=False)
    assert choker.unchoked == {optimistic} | best(choker, others, 12.0, 3)
    assert choker.unchoked != seeding  # the two rankings differ for this seed


def test_optimistic_unchoke_rotates_every_30_seconds_to_choked_interested_peers():
    peers = list(range(8))
    choker = choker_with(peers, seed=5)
    for peer in peers:
        choker.record(peer, downloaded=1000 * (peer + 1), now=0.0)
    history = []
    for step in range(25):
        now = 10.0 * step
        was_unchoked = choker.unchoked
        choker.run(now, seeding=False)
        if step % 3 == 0 and step:
            assert choker.optimistic not in was_unchoked  # a peer that was choked
        elif step:
            assert choker.optimistic == history[-1]
        history.append(choker.optimistic)
        for peer in peers:  # keep the rates steady
            choker.record(peer, downloaded=10_000 * (peer + 1), now=now + 5)
    turns = set(history)
    regulars = best(choker, peers, 240.0, 3)
    assert turns >= set(peers) - regulars  # every choked interested peer got its turn


def test_new_peers_are_three_times_as_likely_to_start_as_the_optimistic_unchoke():
    existing, trials = 5, 3000
    new_is_optimistic = 0
    positions = [0] * (existing + 1)
    for seed in range(trials):
        choker = choker_with(range(existing), seed=seed)
        choker.run(0.0, seeding=False)
        choker.add_peer("new", 1.0)
        positions[choker.rotation.index("new")] += 1
        choker.set_interested("new", True)
        choker.run(10.0, seeding=False)
        new_is_optimistic += choker.optimistic == "new"
    # randrange(-2, n + 1) clamped to 0: the head has weight 3, each other place weight 1
    p = 3 / (existing + 3)
    sigma = math.sqrt(p * (1 - p) / trials)
    assert abs(new_is_optimistic / trials - p) < 5 * sigma
    assert positions[0] == new_is_optimistic
    q = 1 / (existing + 3)
    sigma_q = math.sqrt(q * (1 - q) / trials)
    for count in positions[1:]:
        assert abs(count / trials - q) < 5 * sigma_q


def test_rates_use_a_sliding_window():
    choker = Choker(rng=random.Random(0), rate_window=20.0)
    choker.add_peer("a", 0.0)
    choker.record("a", downloaded=40_000, now=0.5)
    assert choker.download_rate("a", 10.0) == pytest.approx(4000)
    assert choker.download_rate("a", 20.0) == pytest.approx(2000)
    choker.record("a", downloaded=20_000, now=25.0)
    assert choker.download_rate("a", 30.0) == pytest.approx(1000)  # the first bytes left
    assert choker.upload_rate("a", 30.0) == 0


def test_unlimited_slots_unchoke_everyone():
    choker = Choker(slots=None, rng=random.Random(0))
    for peer in "abc":
        choker.add_peer(peer, 0.0)
    assert choker.run(0.0, seeding=True).unchoke == {"a", "b", "c"}
    choker.add_peer("d", 1.0)
    assert choker.run(10.0, seeding=True) == ChokeDecision(unchoke=frozenset("d"))
    choker.add_peer("e", 11.0)
    assert choker.set_interested("e", True) == ChokeDecision(unchoke=frozenset("e"))
    assert choker.unchoked == set("abcde")
    assert choker.run(20.0, seeding=True) == ChokeDecision()


def test_leaving_peers_free_their_slot_at_the_next_round():
    peers = list(range(6))
    choker = choker_with(peers, seed=6)
    choker.run(0.0, seeding=False)
    gone = choker.optimistic
    choker.remove_peer(gone)
    assert gone not in choker.unchoked and choker.optimistic is None
    decision = choker.run(10.0, seeding=False)
    assert len(choker.unchoked) == 4 and gone not in decision.choke
    assert choker.optimistic in choker.unchoked


def test_misuse_raises_local_protocol_error():
    choker = Choker(rng=random.Random(0))
    choker.add_peer("a", 0.0)
    with pytest.raises(LocalProtocolError):
        choker.add_peer("a", 0.0)
    with pytest.raises(LocalProtocolError):
        choker.record("b", downloaded=1, now=0.0)
    with pytest.raises(LocalProtocolError):
        Choker(slots=0, rng=random.Random(0))


@pytest.mark.parametrize("seed", range(10))
def test_random_operations_keep_the_upload_cap(seed):
    rng = random.Random(seed)
    choker = Choker(slots=3, rng=random.Random(seed))
    unchoked, now, names = set(), 0.0, 0
    for _ in range(400):
        now += rng.random() * 4
        op = rng.randrange(6)
        peers = choker.rotation
        if op == 0 or not peers:
            choker.add_peer(names, now)
            names += 1
        elif op == 1:
            peer = rng.choice(peers)
            choker.remove_peer(peer)
            unchoked.discard(peer)
        elif op == 2:
            peer = rng.choice(peers)
            decision = choker.set_interested(peer, rng.random() < 0.6)
            assert decision.choke <= unchoked and not decision.unchoke & unchoked
            assert decision.unchoke <= {peer}
            unchoked = (unchoked - decision.choke) | decision.unchoke
        elif op == 3:
            choker.record(rng.choice(peers), downloaded=rng.randrange(10**5),
                          uploaded=rng.randrange(10**5), now=now)
        else:
            due = now >= choker.next_round()
            decision = choker.run(now, seeding=op == 5)
            assert due or not decision
            assert not decision.unchoke & unchoked and decision.choke <= unchoked
            unchoked = (unchoked - decision.choke) | decision.unchoke
            if due and choker.rotation:
                assert choker.optimistic in unchoked
        assert choker.unchoked == unchoked
        interested = {p for p in unchoked if choker._peers[p].interested}
        assert len(interested) <= 3
