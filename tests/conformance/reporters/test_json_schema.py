"""The JSON report's documented schema (``report.schema.json``) holds for real reports: runs
against p2pkit's own DHT node (a mutant among them, so failures and differences appear) and
its own tracker (HTTP and UDP), and a multi-target matrix; and it refuses broken documents."""

from __future__ import annotations

import asyncio
import copy
import json

import jsonschema
import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.reporters import json_report
from p2pkit.conformance.runner import run_cases
from tests.conformance.helpers import SILENCE
from tests.conformance.matrix_helpers import cases as matrix_cases
from tests.conformance.matrix_helpers import two_nodes
from tests.conformance.tracker_helpers import run_against_own_tracker

SCHEMA = json_report.json_schema()


def _check(doc: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert json_report.validate(doc) == []


@pytest.fixture(scope="module")
def dht_runs():
    """The same cases against a correct node and a mutant one (no transaction-id echo),
    plus BEP 44 and robustness cases against the correct one."""
    async def run(targets):
        extra = select(catalog("dht"), ["dht/bep44/get", "dht/robustness/t*"])
        good = await run_cases([*matrix_cases(), *extra], targets[0], silence=SILENCE)
        bad = await run_cases(matrix_cases(), targets[1], silence=SILENCE)
        good.label, bad.label = "good", "mutant"
        return good, bad

    with two_nodes() as addresses:
        targets = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in addresses)]
        return asyncio.run(run(targets))


def test_dht_run_documents_validate(dht_runs, tmp_path) -> None:
    good, bad = dht_runs
    for report in (good, bad):
        path = tmp_path / f"{report.label}.json"
        json_report.write(report, path)
        doc = json.loads(path.read_text())
        _check(doc)
        assert doc["label"] == report.label
        assert doc["summary"]["total"] == len(report.results) > 10
    doc = json_report.to_document(bad)
    failing = [c for c in doc["cases"] if c["verdict"] == "fail"]
    assert len(failing) == 6
    for case in failing:
        assert case["difference"]["path"] == "t"
        step = case["exchanges"][case["failed_step"]]
        assert case["difference"]["got"] == case["difference"]["expected"] + "21"  # t + "!"
        marked = step["received_tree"][step["marked_line"]]
        assert "transaction_id" in marked and case["difference"]["got"] in marked
        assert any("method" in line for line in step["sent_tree"])


def test_matrix_document_validates(dht_runs) -> None:
    doc = json_report.matrix_document(MatrixReport(list(dht_runs)))
    _check(doc)
    assert doc["exit_status"] == 1
    assert {tuple(sorted(r["verdicts"])) for r in doc["matrix"]} >= {("good", "mutant")}


def test_tracker_documents_validate() -> None:
    cases = select(catalog("tracker"), ["tracker/bep3/announce", "tracker/bep15/connect/",
                                        "tracker/bep15/announce/layout"])
    cases = [c for c in cases if "slow" not in c.tags]
    reports = run_against_own_tracker(cases)
    assert {r.target.split(":")[0] for r in reports} == {"http", "udp"}
    for report in reports:
        doc = json_report.to_document(report)
        _check(doc)
        decoded = [ex for case in doc["cases"] for ex in case["exchanges"] if ex["received"]]
        assert decoded
        names = {"http": "bt-tracker-http", "udp": "bt-tracker"}[report.target.split(":")[0]]
        # the dissector decoded every answer: trees, not hex
        assert all(ex["received_tree"][0].startswith(f"  {names} ") for ex in decoded)


@pytest.mark.parametrize("breakage", ["drop-key", "bad-verdict", "bad-hex", "extra-key",
                                      "bad-total", "matrix-verdict"])
def test_broken_documents_are_refused(dht_runs, breakage: str) -> None:
    doc = copy.deepcopy(json_report.to_document(dht_runs[1]))
    if breakage == "drop-key":
        del doc["cases"][0]["requirement"]
    elif breakage == "bad-verdict":
        doc["cases"][0]["verdict"] = "passed"
    elif breakage == "bad-hex":
        doc["cases"][0]["exchanges"][0]["sent"] = "xyz"
    elif breakage == "extra-key":
        doc["surprise"] = 1
    elif breakage == "bad-total":
        doc["summary"]["total"] += 1
    else:
        doc = json_report.matrix_document(MatrixReport(list(dht_runs)))
        doc["matrix"][0]["verdicts"]["good"] = "great"
    assert json_report.validate(doc)
    if breakage != "bad-total":  # the one rule the schema cannot say
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SCHEMA)
