"""The Gnutella catalog can fail: mutants of p2pkit's servent, each breaking one rule, fail
exactly the cases that name that rule (``Case.rule`` or ``Case.depends``) and no other.

The servent is patched in-process (it runs in the test's event loop). The mutants run the
catalog without its INFO cases (never failures) and its robustness cases (they judge only
that a fresh session is served after bad input, which none of these mutants changes; the
own-servent test runs them), to keep each run near 12 s."""

from __future__ import annotations

import pytest
from construct import Container

from p2pkit.conformance import catalog
from p2pkit.gnutella import connection_state as cs
from p2pkit.gnutella import servent as servent_module
from p2pkit.gnutella.deflate import Deflater
from p2pkit.gnutella.servent import Servent
from p2pkit.gnutella.stream import DESCRIPTORS
from tests.conformance.gnutella_helpers import run_against_own_servent
from tests.conformance.test_gnutella_own_servent import KNOWN_NON_STRICT

CASES = [c for c in catalog("gnutella") if c.level != "INFO" and not c.robustness]


@pytest.fixture(autouse=True)
def _short_bye_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The servent forces its close 0.5 s after its own Bye instead of BYE_LINGER's 5 s: no
    mutant touches that close, bye/sender-closes still waits for it (the own-servent test runs
    the real linger), and each run is 4.5 s shorter."""
    monkeypatch.setattr(servent_module, "BYE_LINGER", 0.5)


def _expected(*rules: str) -> set[str]:
    return {c.id for c in CASES if set(c.rules) & set(rules)}


def _rewrite_sent(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Rewrite every descriptor the servent sends (``change(d)`` returns the new one)."""
    original = Servent._send

    def send(self, conn, d):
        original(self, conn, change(d))
    monkeypatch.setattr(Servent, "_send", send)


def mutant_ttl_not_decremented(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forwards descriptors (hops > 0) with the TTL they came with."""
    _rewrite_sent(monkeypatch, lambda d: Container(d, ttl=d.ttl + 1) if d.hops else d)


def mutant_hops_not_incremented(monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite_sent(monkeypatch, lambda d: Container(d, hops=d.hops - 1) if d.hops else d)


def mutant_pong_fresh_guid(monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrite_sent(monkeypatch, lambda d: Container(d, guid=bytes(b ^ 0x5A for b in d.guid))
                  if d.type == "pong" else d)


def mutant_duplicate_forwarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remembers the first route of a GUID but never reports a duplicate."""
    original = servent_module._Routes.add

    def add(self, guid, target, now):
        original(self, guid, target, now)
        return True
    monkeypatch.setattr(servent_module._Routes, "add", add)


def mutant_hit_wrong_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes a QueryHit to a connection other than its query's (none when there is none)."""
    original = Servent._forward

    def forward(self, conn, d):
        if d.type == "query_hit":
            others = [c for c in self._established() if c is not conn
                      and c.conn_id != getattr(self, "_hit_from", None)]
            if others:
                original(self, others[0], d)
            return
        original(self, conn, d)

    on_hit = Servent._on_query_hit

    def on_query_hit(self, conn, d, now):
        self._hit_from = conn.conn_id
        on_hit(self, conn, d, now)
    monkeypatch.setattr(Servent, "_forward", forward)
    monkeypatch.setattr(Servent, "_on_query_hit", on_query_hit)


def mutant_bye_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads a Bye and goes on as if nothing came."""
    original = Servent._on_descriptor

    def on_descriptor(self, conn, d, now):
        if d.type != "bye":
            original(self, conn, d, now)
    monkeypatch.setattr(Servent, "_on_descriptor", on_descriptor)


def mutant_no_third_leg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Takes binary messages after its 200 as the end of the handshake, without the client's
    third leg."""
    original = Servent._receive

    def receive(self, conn, data, now):
        if conn.state == cs.AWAITING_FINAL and not data.startswith(b"GNUTELLA"):
            conn.reader.state = DESCRIPTORS
            conn.reader._offset = conn.reader._raw_offset
            conn._move(cs.FINAL_OK)
            self._established_now(conn, now)
        original(self, conn, data, now)
    monkeypatch.setattr(Servent, "_receive", receive)


def mutant_qrp_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ultrapeer that sends every query to every leaf, whatever their tables say."""
    monkeypatch.setattr(Servent, "_leaf_wants", lambda self, conn, query:
                        not conn.peer_is_ultrapeer)


def mutant_says_deflate_sends_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers Accept-Encoding with Content-Encoding: deflate, then sends plain descriptors."""
    monkeypatch.setattr(Deflater, "batch", lambda self, data: bytes(data))


MUTANTS = [
    (mutant_ttl_not_decremented, ("gnutella/routing/ttl-decrement",)),
    (mutant_hops_not_incremented, ("gnutella/routing/hops-increment",)),
    (mutant_pong_fresh_guid, ("gnutella/ping/pong-guid",)),
    (mutant_duplicate_forwarded, ("gnutella/routing/duplicate",)),
    (mutant_hit_wrong_connection, ("gnutella/routing/hit-back",)),
    (mutant_bye_ignored, ("gnutella/bye/close",)),
    (mutant_no_third_leg, ("gnutella/handshake/third-leg",)),
    (mutant_qrp_ignored, ("gnutella/qrp/filter",)),
    (mutant_says_deflate_sends_plain, ("gnutella/compression/deflated-stream",)),
]


@pytest.mark.parametrize(("mutate", "rules"), MUTANTS, ids=[m.__name__ for m, _ in MUTANTS])
def test_mutant_fails_exactly_its_cases(monkeypatch: pytest.MonkeyPatch, mutate,
                                        rules: tuple[str, ...]) -> None:
    mutate(monkeypatch)
    expected = _expected(*rules)
    assert expected, f"no case names {rules}"
    report = run_against_own_servent(CASES, check_target=False, timeout=1.0)
    failing = {r.case.id for r in report.results if r.verdict in (
        "fail", "non-strict", "target-died", "skipped")}
    assert failing - KNOWN_NON_STRICT == expected - KNOWN_NON_STRICT, {
        "unexpected": sorted(failing - expected - KNOWN_NON_STRICT),
        "missed": sorted(expected - failing - KNOWN_NON_STRICT)}
