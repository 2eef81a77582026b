"""The tracker suite can fail: mutants of p2pkit's tracker, each breaking one rule, fail
exactly the cases that name that rule (``Case.rule`` or ``Case.depends``) and no other."""

from __future__ import annotations

import dataclasses

import pytest

from p2pkit import bencode
from p2pkit.bittorrent.tracker import core as core_module
from p2pkit.bittorrent.tracker.core import ScrapeCounts, SwarmPeer, TrackerCore
from tests.conformance.test_tracker_own import (
    KNOWN_SHOULD_DEVIATIONS,
    _short_lifetime_case,
)
from tests.conformance.tracker_helpers import FAST, not_passing, run_against_own_tracker


def _expected(*rules: str) -> set[str]:
    return {c.id for c in FAST if set(c.rules) & set(rules)}


def mutant_transaction_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every UDP answer carries another transaction id than the request's."""
    original = TrackerCore.receive_datagram

    def receive(self, data, addr, *, now):
        original(self, data, addr, now=now)
        for i, d in enumerate(self._outgoing):
            tid = (int.from_bytes(d.data[4:8], "big") + 1) & 0xFFFFFFFF
            self._outgoing[i] = dataclasses.replace(
                d, data=d.data[:4] + tid.to_bytes(4, "big") + d.data[8:])
    monkeypatch.setattr(TrackerCore, "receive_datagram", receive)


def mutant_connection_id_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrackerCore, "_check_connection_id", lambda self, cid, ip, now: None)


def mutant_compact_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dictionary peers whatever the client asks."""
    original = TrackerCore._http_announce

    def announce(self, message, ip, now):
        message.compact = 0
        return original(self, message, ip, now)
    monkeypatch.setattr(TrackerCore, "_http_announce", announce)


def mutant_stopped_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped announce is taken as a regular one: the peer stays in the swarm."""
    original = TrackerCore.announce

    def announce(self, request, *, now):
        if request.event == "stopped":
            request = dataclasses.replace(request, event="")
        return original(self, request, now=now)
    monkeypatch.setattr(TrackerCore, "announce", announce)


def mutant_scrape_counts_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrapes report seeders as leechers and leechers as seeders."""
    original = TrackerCore.scrape

    def scrape(self, info_hashes, *, now):
        return {h: ScrapeCounts(complete=c.incomplete, downloaded=c.downloaded,
                                incomplete=c.complete)
                for h, c in original(self, info_hashes, now=now).items()}
    monkeypatch.setattr(TrackerCore, "scrape", scrape)


def mutant_interval_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP announce answers without ``interval``."""
    original = TrackerCore._http_announce

    def announce(self, message, ip, now):
        body = bencode.decode(original(self, message, ip, now))
        body.pop(b"interval", None)
        return bencode.encode(body)
    monkeypatch.setattr(TrackerCore, "_http_announce", announce)


def mutant_self_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The announcing peer is handed its own address among the others."""
    original = TrackerCore.announce

    def announce(self, request, *, now):
        result = original(self, request, now=now)
        if request.event == "stopped":
            return result
        me = SwarmPeer(peer_id=request.peer_id, ip=request.ip, port=request.port)
        return dataclasses.replace(result, peers=(*result.peers, me))
    monkeypatch.setattr(TrackerCore, "announce", announce)


MUTANTS = [
    (mutant_transaction_id, ("bep15/transaction-id",)),
    (mutant_connection_id_unchecked, ("bep15/connection-id/checked",)),
    (mutant_compact_ignored, ("bep23/compact/preferred",)),
    (mutant_stopped_kept, ("tracker/announce/stopped",)),
    (mutant_scrape_counts_swapped, ("tracker/scrape/counts",)),
    (mutant_interval_missing, ("bep3/announce/interval",)),
    (mutant_self_listed, ("bep3/announce/not-itself",)),
]


@pytest.mark.parametrize(("mutate", "rules"), MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_mutant_fails_exactly_its_cases(monkeypatch: pytest.MonkeyPatch, mutate,
                                        rules: tuple[str, ...]) -> None:
    mutate(monkeypatch)
    expected = _expected(*rules)
    assert expected, f"no case names {rules}"
    reports = run_against_own_tracker()
    assert not_passing(reports) == expected | KNOWN_SHOULD_DEVIATIONS
    assert not any(r.verdict == "target-died" for rep in reports for r in rep.results)


def test_mutant_short_connection_id_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tracker forgetting connection ids after 0.1 s fails the lifetime case."""
    monkeypatch.setattr(core_module, "CONNECTION_ID_LIFETIME", 0.1)
    (report,) = run_against_own_tracker([_short_lifetime_case(0.3)], ("udp",))
    assert [r.verdict for r in report.results] == ["fail"]
