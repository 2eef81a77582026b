"""The DHT catalog as data: ids, levels, and requirements quoted verbatim from the BEPs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import LEVELS, Case, select
from p2pkit.conformance.dht import MODULES

SPECS = Path("/work/shared/specs/beps")
CASES = catalog("dht")


def _normalised(text: str) -> str:
    """Whitespace collapsed and table rules dropped, so a quote spanning lines or table
    cells compares with the text."""
    text = re.sub(r"^\s*\+[-=+]+\+\s*$", " ", text, flags=re.M).replace("|", " ")
    return " ".join(text.split())


def _spec_file(spec: str) -> Path:
    number = int(re.match(r"BEP (\d+)", spec).group(1))
    return SPECS / f"bep_{number:04d}.rst"


def test_at_least_sixty_cases_with_unique_ids() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.id.startswith("dht/") and c.id.count("/") >= 2 for c in CASES)


def test_cases_per_section() -> None:
    per = Counter(c.id.split("/")[1] for c in CASES)
    for section in ("bep5", "bep32", "bep33", "bep42", "bep43", "bep44", "bep51",
                    "robustness"):
        assert per[section] >= 3, section


def test_every_error_code_is_exercised() -> None:
    text = " ".join(c.id + " " + c.title + " " + c.requirement for c in CASES)
    for code in (201, 202, 203, 204, 205, 206, 207, 301, 302):
        assert str(code) in text, code


def test_levels_rules_and_modules() -> None:
    for case in CASES:
        assert case.level in LEVELS
        assert case.rule and " " not in case.rule
    assert sum(len(m.CASES) for m in MODULES) == len(CASES)


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requirement_is_quoted_from_the_spec(case: Case) -> None:
    text = _normalised(_spec_file(case.spec).read_text(encoding="utf-8"))
    assert _normalised(case.requirement) in text
    section = case.spec.partition("§")[2]
    assert section and section in text, f"no section {section!r} in {case.spec}"


def test_select_by_glob_and_prefix() -> None:
    assert {c.id for c in select(CASES, ["*token*"])} >= {"dht/bep5/get_peers/token-returned"}
    assert all(c.id.startswith("dht/bep44/") for c in select(CASES, ["dht/bep44"]))
    assert select(CASES, ["nothing-matches-this"]) == []
