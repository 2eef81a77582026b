"""Reporters on a tracker run (the compact-ignored mutant, so failures and differences show):
the JSON document validates, JUnit counts the failures, the HTML shows decoded fields."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from p2pkit.bittorrent.tracker.core import TrackerCore
from p2pkit.conformance.case import select
from p2pkit.conformance.reporters import html, json_report, junit
from tests.conformance.tracker_helpers import FAST, run_against_own_tracker


@pytest.fixture(scope="module")
def reports():
    mp = pytest.MonkeyPatch()
    original = TrackerCore._http_announce

    def announce(self, message, ip, now):
        message.compact = 0
        return original(self, message, ip, now)
    mp.setattr(TrackerCore, "_http_announce", announce)
    try:
        return run_against_own_tracker(select(FAST, ["tracker/bep23", "tracker/bep15/scrape/*"]))
    finally:
        mp.undo()


def test_json_junit_html(reports, tmp_path) -> None:
    http, udp = reports
    assert {r.case.id for r in http.results if r.verdict == "non-strict"} == {
        "tracker/bep23/compact/honoured", "tracker/bep23/compact/default"}
    for report in reports:
        doc = json_report.to_document(report)
        assert json_report.validate(json.loads(json.dumps(doc))) == []
        assert doc["target"].startswith(("http://", "udp://"))
    junit.write(udp, tmp_path / "u.xml")
    assert int(ET.parse(tmp_path / "u.xml").getroot().get("tests")) == len(udp.results)
    page = html.render(http)
    assert "tracker/bep23/compact/honoured" in page and "peers.0.peer_id" in page
    assert "It is SUGGESTED that trackers return compact format by default." in page
    udp_page = html.render(udp)
    assert "files.1.seeders" in udp_page and "transaction_id" in udp_page
