"""The IPFS catalog as data: ids, levels, rules, and requirements quoted verbatim from the
libp2p / IPFS spec texts (``specs/libp2p-ipfs/<document>.md``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import LEVELS, Case
from p2pkit.conformance.ipfs import MODULES
from tests.conformance.test_catalog import _normalised

SPECS = Path("/work/shared/specs/libp2p-ipfs")
CASES = catalog("ipfs")
#: The spec name a case cites -> its file.
DOCUMENTS = {"multistream-select": "multistream-select.md", "libp2p-noise": "libp2p-noise.md",
             "libp2p-yamux": "libp2p-yamux.md", "libp2p-identify": "libp2p-identify.md",
             "libp2p-kad-dht": "libp2p-kad-dht.md",
             "ipfs-bitswap-protocol": "ipfs-bitswap-protocol.md",
             "unsigned-varint": "multiformats-unsigned-varint.md"}


def test_at_least_thirty_cases_with_unique_ids() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.id.startswith("ipfs/") and c.id.count("/") >= 2 for c in CASES)


def test_cases_per_layer() -> None:
    per = Counter(c.id.split("/")[1] for c in CASES)
    for layer in ("multistream", "noise", "yamux", "identify", "kad", "bitswap", "robustness"):
        assert per[layer] >= 4, layer
    assert sum(1 for c in CASES if c.robustness) >= 20
    assert {c.level for c in CASES} >= {"MUST", "SHOULD", "MAY", "INFO"}


def test_levels_rules_and_modules() -> None:
    for case in CASES:
        assert case.level in LEVELS
        assert all(r.startswith("ipfs/") and " " not in r for r in case.rules)
    assert sum(len(m.CASES) for m in MODULES) == len(CASES)


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requirement_is_quoted_from_the_spec(case: Case) -> None:
    name, _, section = case.spec.partition(" §")
    text = _normalised((SPECS / DOCUMENTS[name]).read_text(encoding="utf-8"))
    assert _normalised(case.requirement) in text
    assert section and _normalised(section).lower() in text.lower(), \
        f"no section {section!r} in {case.spec}"


@pytest.mark.skipif(not SPECS.is_dir(), reason="spec texts not available")
@pytest.mark.parametrize("case", [c for c in CASES if c.level in ("MUST", "SHOULD", "MAY")],
                         ids=lambda c: c.id)
def test_level_words_agree_with_the_quote(case: Case) -> None:
    """A quote carrying an RFC 2119 word gives the case that level or a stricter reading of
    a lower-case "must"/"should" (robustness cases judge survival: always MUST)."""
    words = {w for w in ("MUST", "SHOULD", "MAY") if w in case.requirement}
    if case.robustness or not words:
        return
    if case.level == "MUST":
        assert "MUST" in words or "SHOULD" not in words, case.requirement
    else:
        assert case.level in words, (case.level, case.requirement)
