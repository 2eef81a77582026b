"""The committed records of the last real matrix runs (docs/conformance-matrix/*.json, drawn
by docs/conformance-matrix.md) stay true to the catalogs and to the findings of
docs/conformance.md, without running any third-party software (the real runs are
test_real_peers.py, test_real_nodes.py and test_real_trackers.py)."""

from __future__ import annotations

import pytest

from p2pkit.conformance import catalog
from tests.conformance.real_matrix import FINDINGS, ROOT, failing, load_record

#: The protocols with a real matrix, and the cases each one's run leaves out.
PROTOCOLS = {"bittorrent": set(), "dht": set(),
             "tracker": {c.id for c in catalog("tracker") if "slow" in c.tags}}
FINDINGS_PAGE = ROOT / "docs" / "conformance.md"


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_record_has_exactly_the_catalog_cases(protocol: str) -> None:
    record = load_record(protocol)
    assert record["protocol"] == protocol
    ids = [c.id for c in catalog(protocol) if c.id not in PROTOCOLS[protocol]]
    assert sorted(record["verdicts"]) == sorted(ids), (
        "the catalog changed: rerun the real matrix with P2PKIT_UPDATE_MATRIX=1 "
        f"({record['command']})")
    labels = [t["label"] for t in record["targets"]]
    assert "p2pkit" in labels or {"p2pkit-http", "p2pkit-udp"} <= set(labels)
    for verdicts in record["verdicts"].values():
        assert set(verdicts) <= set(labels) and verdicts


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_findings_agree_with_verdicts_and_counts(protocol: str) -> None:
    record = load_record(protocol)
    listed = {(f["label"], f["case"]) for f in record["findings"]}
    assert listed == {(label, case) for case, per in record["verdicts"].items()
                      for label, verdict in per.items() if verdict in FINDINGS}
    for target in record["targets"]:
        seen = [per[target["label"]] for per in record["verdicts"].values()
                if target["label"] in per]
        assert {v: seen.count(v) for v in set(seen)} == {
            v: n for v, n in target["counts"].items() if n}


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_must_finding_is_on_the_findings_page(protocol: str) -> None:
    """Each case a real implementation fails has a row of its client in docs/conformance.md
    (the evidence: what was sent and received, the spec sentence); p2pkit fails none."""
    page = FINDINGS_PAGE.read_text().splitlines()
    record = load_record(protocol)
    for target in record["targets"]:
        label = target["label"]
        cases = failing(record["verdicts"], label)
        if label.startswith("p2pkit"):
            assert cases == set(), (label, cases)
            continue
        client = label.removesuffix("-http").removesuffix("-udp")
        rows = [line for line in page if line.startswith(f"| {client} ")]
        for case in cases:
            last = case.rsplit("/", 1)[1]
            assert any(f"`{case}`" in row or f"…/{last}`" in row for row in rows), (
                f"{client}: {case} is not in the findings of docs/conformance.md")
