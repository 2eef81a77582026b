"""The Gnutella catalog against p2pkit's own servent on 127.0.0.1: every MUST case passes.

The servent runs in the test's event loop (:class:`~p2pkit.gnutella.server.GnutellaServer`,
an ultrapeer sharing nothing); the harness joins it as leaves and ultrapeers at once."""

from __future__ import annotations

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from p2pkit.conformance.runner import RunReport
from tests.conformance.gnutella_helpers import run_against_own_servent

CASES = catalog("gnutella")
#: What p2pkit's servent does not do, said by the catalog (docs/conformance-gnutella.md).
KNOWN_NON_STRICT = {"gnutella/handshake/0.4-greeting"}
#: Nothing: it inflates what a peer deflates and, asked with Accept-Encoding: deflate,
#: deflates what it sends (compression/deflated-stream passes).
KNOWN_UNSUPPORTED: set[str] = set()


@pytest.fixture(scope="module")
def report() -> RunReport:
    return run_against_own_servent(CASES)


def test_every_must_case_passes(report: RunReport) -> None:
    failed = {r.case.id: r.reason for r in report.results
              if r.verdict in ("fail", "target-died", "skipped")}
    assert failed == {}
    assert report.ok


def test_the_verdicts_it_gets(report: RunReport) -> None:
    by = {r.case.id: r.verdict for r in report.results}
    assert {i for i, v in by.items() if v == "non-strict"} == KNOWN_NON_STRICT
    assert {i for i, v in by.items() if v == "unsupported"} == KNOWN_UNSUPPORTED
    assert {i for i, v in by.items() if v == "informational"} == {
        c.id for c in CASES if c.level == "INFO"}
    # the multi-connection cases ran, and passed
    for case_id in ("gnutella/routing/hit-reverse-path-only", "gnutella/routing/push-by-"
                    "servent-id", "gnutella/qrp/filter-not-matching",
                    "gnutella/routing/duplicate-other-connection"):
        assert by[case_id] == "pass"


def test_what_the_multi_connection_cases_saw(report: RunReport) -> None:
    """The forwarded query really arrived on the other connection, with TTL 2 and hops 1."""
    result = next(r for r in report.results if r.case.id == "gnutella/routing/ttl-decremented")
    seen = result.exchanges[-1]
    assert seen.source == "tcp b"
    [forwarded] = [m for m in seen.answer.messages if m["type"] == "query"]
    assert (forwarded["ttl"], forwarded["hops"], forwarded["search_criteria"]) == (
        2, 1, "conformance probe")


def test_a_leaf_target_refuses_with_a_status_code() -> None:
    """A leaf servent is shielded: it refuses the harness's CONNECT with 503."""
    cases = select(CASES, ["gnutella/handshake/accept", "gnutella/handshake/refusal-status",
                           "gnutella/ultrapeer/x-ultrapeer"])
    report = run_against_own_servent(cases, ultrapeer=False)
    by = {r.case.id: r for r in report.results}
    assert by["gnutella/handshake/accept"].verdict == "fail"
    assert "503" in by["gnutella/handshake/accept"].reason
    assert by["gnutella/handshake/refusal-status"].verdict == "informational"
    assert by["gnutella/ultrapeer/x-ultrapeer"].verdict == "pass"
