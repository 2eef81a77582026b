"""Offline tracker rules: opentracker's answers in a real capture pass; a broken answer fails
its rule with the frame."""

from __future__ import annotations

from pathlib import Path

from p2pkit.bittorrent.tracker.udp import UdpTrackerResponse
from p2pkit.capture.record import Record
from p2pkit.conformance.offline import CaptureReport, check_capture, judge

CAPTURE = (Path(__file__).resolve().parents[1] / "data" / "captures" /
           "tracker-01-opentracker-libtorrent-aria2.pcap")
TRACKER = "127.0.0.1:6969"


def test_opentracker_capture_passes_the_tracker_rules() -> None:
    report = check_capture(CAPTURE)
    assert list(report.endpoints) == [TRACKER]  # only answers are judged: the tracker's
    tallies = report.endpoints[TRACKER].tallies
    checked = {rule: (t.checked, t.verdict) for rule, t in tallies.items()}
    assert checked["bep15/connect"] == (2, "pass")
    assert checked["bep15/announce/layout"] == (4, "pass")
    assert checked["bep3/announce/interval"] == (7, "pass")
    assert checked["bep48/scrape/files"] == (1, "pass")
    assert report.ok


def test_an_announce_answer_with_interval_zero_fails() -> None:
    data = UdpTrackerResponse.build(dict(action="announce", transaction_id=7, interval=0,
                                         leechers=0, seeders=1, peers=[]))
    record = Record(frame=9, time=0.0, transport="udp", src=TRACKER, dst="127.0.0.2:6881",
                    protocol="bt-tracker", message="announce", length=len(data),
                    value=UdpTrackerResponse.parse(data), fields={"direction": "response"})
    report = judge([record], CaptureReport("test"))
    tally = report.endpoints[TRACKER].tallies["bep15/announce/layout"]
    assert (tally.checked, tally.failed, tally.verdict) == (1, 1, "fail")
    assert tally.failures[0][0] == 9
    assert not report.ok
