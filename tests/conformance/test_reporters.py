"""Reporters tested on real output: a run against p2pkit's node (with a mutant, so failures
and differences appear in the reports)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from p2pkit.conformance.reporters import console, html, json_report, junit
from p2pkit.conformance.runner import RunReport
from p2pkit.dht.node import Node
from tests.conformance.helpers import run_against_own_node


@pytest.fixture(scope="module")
def report() -> RunReport:
    """A run of three sections with the transaction id broken (6 failing MUST cases)."""
    mp = pytest.MonkeyPatch()
    original = Node._reply
    mp.setattr(Node, "_reply", lambda self, m, t, addr: original(self, m, t + b"!", addr))
    try:
        cases = select(catalog("dht"), ["dht/bep5/krpc", "dht/bep44/get", "dht/robustness/t*"])
        return run_against_own_node(cases)
    finally:
        mp.undo()


def test_junit_parses_and_counts_match(report: RunReport, tmp_path) -> None:
    path = tmp_path / "junit.xml"
    junit.write(report, path)
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    counts = report.counts()
    assert len(cases) == int(root.get("tests")) == len(report.results)
    assert int(root.get("failures")) == counts["fail"] == len(root.findall(".//failure")) == 6
    assert int(root.get("errors")) == counts["target-died"]
    assert int(root.get("skipped")) == counts["unsupported"] + counts["skipped"]
    assert {c.get("name") for c in cases} == {r.case.id for r in report.results}
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))


def test_json_validates_against_its_documented_shape(report: RunReport, tmp_path) -> None:
    path = tmp_path / "report.json"
    json_report.write(report, path)
    doc = json.loads(path.read_text())
    assert json_report.validate(doc) == []
    assert doc["summary"]["total"] == len(doc["cases"]) == len(report.results)
    assert doc["summary"]["exit_status"] == 1
    failing = [c for c in doc["cases"] if c["verdict"] == "fail"]
    assert {c["rule"] for c in failing} == {"krpc/transaction-id"}
    assert all(c["path"] == "t" and c["exchanges"][0]["received_fields"]["t"] for c in failing)
    broken = dict(doc, cases=[{"id": 1}])
    assert json_report.validate(broken)


def test_html_holds_every_case_and_highlights_the_difference(report: RunReport,
                                                              tmp_path) -> None:
    path = tmp_path / "report.html"
    html.write(report, path)
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    for result in report.results:
        assert f'id="{result.case.id}"' in page
    assert page.count('class="diff"') >= 6  # the echoed t of each failing case
    assert "is echoed in the response" in page  # the quoted requirement
    assert "http://" not in page and "https://" not in page  # self-contained


def test_console_lines_and_summary(report: RunReport) -> None:
    out = io.StringIO()
    reporter = console.ConsoleReporter(file=out)
    for result in report.results:
        reporter.line(result)
    reporter.summary(report)
    text = out.getvalue()
    for result in report.results:
        assert result.case.id in text
    assert "6 case(s) fail the run" in text
    assert "dht/bep5/krpc" in text and "total" in text
