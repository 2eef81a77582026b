"""p2pkit's own DHT node passes every MUST case of the DHT catalog."""

from __future__ import annotations

from tests.conformance.helpers import run_against_own_node

#: SHOULD cases p2pkit's node does not meet today (reported, not hidden: see
#: docs/conformance.md §Findings).
KNOWN_SHOULD_DEVIATIONS = {
    "dht/bep44/get/nodes6",          # BEP 44: get answers "should always include nodes6"
    "dht/bep44/get/seq-omits-value",  # BEP 44: k and sig SHOULD be omitted as well as v
}


def test_every_must_case_passes() -> None:
    report = run_against_own_node()
    assert len(report.results) >= 60
    failing = {r.case.id: r.reason for r in report.results
               if r.verdict in ("fail", "target-died", "skipped", "unsupported")}
    assert failing == {}
    assert report.ok
    non_strict = {r.case.id for r in report.results if r.verdict == "non-strict"}
    assert non_strict == KNOWN_SHOULD_DEVIATIONS


def test_strict_turns_should_failures_into_failures() -> None:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.case import select

    report = run_against_own_node(select(catalog("dht"), ["dht/bep44/get/*"]), strict=True)
    assert {r.case.id for r in report.results if r.verdict == "fail"} == {
        "dht/bep44/get/nodes6", "dht/bep44/get/seq-omits-value"}
    assert not report.ok


def test_run_deadline_skips_the_rest() -> None:
    from p2pkit.conformance import catalog
    from p2pkit.conformance.case import select

    cases = select(catalog("dht"), ["dht/bep5/ping"])
    report = run_against_own_node(cases, deadline=0.0)
    assert {r.verdict for r in report.results} == {"skipped"}
    assert report.ok  # nothing ran, nothing failed
