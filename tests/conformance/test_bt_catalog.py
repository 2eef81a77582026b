"""The BitTorrent peer-wire catalog as data: ids, levels, and requirements quoted verbatim from
the BEPs."""

from __future__ import annotations

from collections import Counter

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.bittorrent import MODULES
from p2pkit.conformance.case import LEVELS, Case, select
from tests.conformance.test_catalog import SPECS, _normalised, _spec_file

CASES = catalog("bittorrent")


def test_at_least_eighty_cases_with_unique_ids() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.id.startswith("bittorrent/bep") and c.id.count("/") >= 3 for c in CASES)


def test_cases_per_section() -> None:
    per = Counter("/".join(c.id.split("/")[1:3]) for c in CASES)
    for section in ("bep3/handshake", "bep3/bitfield", "bep3/choke", "bep3/request",
                    "bep3/cancel", "bep3/keep-alive", "bep3/robustness", "bep6/have",
                    "bep6/reject", "bep6/disabled", "bep10/handshake", "bep9/request",
                    "bep9/data", "bep11/message", "bep52/hash-request", "bep52/hashes"):
        assert per[section] >= 1, section
    assert sum(1 for c in CASES if c.robustness) >= 20


def test_levels_rules_and_modules() -> None:
    for case in CASES:
        assert case.level in LEVELS
        assert case.rule and " " not in case.rule
        # a case needs the target's handshake to be readable, and says so
        assert "bep3/handshake/pstr" in case.rules or case.id.endswith("unknown-info-hash")
    assert sum(len(m.CASES) for m in MODULES) == len(CASES)


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requirement_is_quoted_from_the_spec(case: Case) -> None:
    text = _normalised(_spec_file(case.spec).read_text(encoding="utf-8"))
    assert _normalised(case.requirement) in text
    section = case.spec.partition("§")[2]
    assert section and section.lower() in text.lower(), f"no {section!r} in {case.spec}"


def test_select_by_prefix() -> None:
    assert all(c.id.startswith("bittorrent/bep6/") for c in select(CASES, ["bittorrent/bep6"]))
    assert {c.id for c in select(CASES, ["*pstr*"])} >= {"bittorrent/bep3/handshake/pstr"}
