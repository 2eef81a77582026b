"""The tracker catalog as data: ids, levels, transports, and requirements quoted verbatim from
the BEPs."""

from __future__ import annotations

from collections import Counter

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import LEVELS, Case, HttpGet, Raw, UdpTracker, select
from p2pkit.conformance.tracker import MODULES
from p2pkit.conformance.tracker.live import TargetError, parse_tracker_url
from tests.conformance.test_catalog import SPECS, _normalised, _spec_file

CASES = catalog("tracker")


def test_at_least_thirty_five_cases_with_unique_ids() -> None:
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.id.startswith("tracker/") and c.id.count("/") >= 2 for c in CASES)
    assert sum(len(m.CASES) for m in MODULES) == len(CASES)


def test_cases_per_section_and_transport() -> None:
    per = Counter(c.id.split("/")[1] for c in CASES)
    for section in ("bep3", "bep7", "bep15", "bep23", "bep48", "robustness"):
        assert per[section] >= 2, section
    transports = Counter(c.tags[0] for c in CASES)
    assert transports["http"] >= 20 and transports["udp"] >= 20
    robust = Counter(c.tags[0] for c in CASES if c.robustness)
    assert robust["http"] >= 5 and robust["udp"] >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_steps_match_the_transport(case: Case) -> None:
    kinds = {"http": (HttpGet, Raw), "udp": (UdpTracker, Raw)}[case.tags[0]]
    assert case.level in LEVELS and case.rule and " " not in case.rule
    assert all(s.send is None or isinstance(s.send, kinds) for s in case.steps)


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requirement_is_quoted_from_the_spec(case: Case) -> None:
    text = _normalised(_spec_file(case.spec).read_text(encoding="utf-8"))
    assert _normalised(case.requirement) in text
    section = case.spec.partition("§")[2]
    assert section and section in text, f"no section {section!r} in {case.spec}"


def test_every_bep15_action_and_event_is_exercised() -> None:
    sent = {s.send.message.get("action") for c in CASES for s in c.steps
            if isinstance(s.send, UdpTracker)}
    assert sent == {"connect", "announce", "scrape"}
    events = {s.send.message.get("event", "started") for c in CASES for s in c.steps
              if isinstance(s.send, UdpTracker) and s.send.message["action"] == "announce"}
    assert events >= {"started", "stopped", "completed", "none"}


def test_select_by_transport_words() -> None:
    assert all(c.id.startswith("tracker/bep15/") for c in select(CASES, ["tracker/bep15"]))


@pytest.mark.parametrize(("url", "scheme", "address", "scrape"), [
    ("http://127.0.0.1:6969/announce", "http", ("127.0.0.1", 6969), "/scrape"),
    ("http://127.0.0.1:6969/x/announce.php?pk=1", "http", ("127.0.0.1", 6969),
     "/x/scrape.php?pk=1"),
    ("http://[::1]:80/tracker", "http", ("::1", 80), None),
    ("udp://127.0.0.1:6969/announce", "udp", ("127.0.0.1", 6969), "/scrape"),
])
def test_tracker_urls(url: str, scheme: str, address: tuple, scrape: str | None) -> None:
    target = parse_tracker_url(url)
    assert (target.scheme, target.address, target.scrape_path) == (scheme, address, scrape)


@pytest.mark.parametrize("url", ["127.0.0.1:6969", "https://127.0.0.1/announce",
                                 "udp://127.0.0.1", "http://127.0.0.1:99999/announce",
                                 "http:///announce", "udp://127.0.0.1:0"])
def test_bad_tracker_urls(url: str) -> None:
    with pytest.raises(TargetError):
        parse_tracker_url(url)
