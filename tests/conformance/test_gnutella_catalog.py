"""The Gnutella catalog as data: ids, levels, rules, and requirements quoted verbatim from the
Gnutella documents in the spec texts (``specs/gnutella/<document>``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import LEVELS, Case, select
from p2pkit.conformance.gnutella import MODULES
from tests.conformance.test_catalog import _normalised

SPECS = Path("/work/shared/specs/gnutella")
CASES = catalog("gnutella")


def _document(spec: str) -> Path:
    """``"bye §3. Sending a Bye (0x02) Packet"`` -> ``specs/gnutella/bye``."""
    name = spec.partition(" §")[0]
    assert name and "/" not in name.replace("msg/", ""), spec
    return SPECS / name


def test_at_least_forty_cases_with_unique_ids() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.id.startswith("gnutella/") and c.id.count("/") >= 2 for c in CASES)


def test_cases_per_section() -> None:
    per = Counter(c.id.split("/")[1] for c in CASES)
    for section in ("handshake", "ultrapeer", "compression", "ping", "routing", "qrp", "bye",
                    "robustness"):
        assert per[section] >= 3, section
    assert sum(1 for c in CASES if c.robustness) >= 15
    # the cases that need several harness connections at once
    assert sum(1 for c in CASES if len({s.source for s in c.steps}) >= 3) >= 5


def test_levels_rules_and_modules() -> None:
    for case in CASES:
        assert case.level in LEVELS
        assert case.rule.startswith("gnutella/") and " " not in case.rule
        assert "gnutella/handshake/accept" in case.rules or case.id.startswith(
            "gnutella/robustness/")
    assert sum(len(m.CASES) for m in MODULES) == len(CASES)


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requirement_is_quoted_from_the_spec(case: Case) -> None:
    # QRP holds a few bytes that are not UTF-8 (its figures): read it as Latin-1
    text = _normalised(_document(case.spec).read_text(encoding="latin-1"))
    assert _normalised(case.requirement) in text
    section = case.spec.partition("§")[2]
    assert section and _normalised(section).lower() in text.lower(), \
        f"no section {section!r} in {case.spec}"


def test_select_by_prefix_and_word() -> None:
    assert all(c.id.startswith("gnutella/qrp/") for c in select(CASES, ["gnutella/qrp"]))
    assert {c.id for c in select(CASES, ["*duplicate*"])} >= {
        "gnutella/routing/duplicate-dropped"}
