"""Exercises of chapter 10: questions asked of real captures through the dissection API.

The learner answers with :func:`p2pkit.capture.dissect.dissect` (or the CLI, or scapy) and the
checker asks the same question of the same committed captures: KRPC queries of three DHT
captures (libtorrent, BEP 44, the bundled sample) and the announces of tracker-01 (libtorrent
and aria2 talking to opentracker over HTTP and UDP).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from p2pkit.capture.dissect import dissect
from p2pkit.tutorial.course_data import capture
from p2pkit.tutorial.exercise import Exercise, ExerciseFailed, expect

__all__ = ["EXERCISES"]

DATA = Path(__file__).resolve().parent.parent / "data"


def _krpc_captures() -> list[Path]:
    return [capture("dht-03-p2pkit-libtorrent-bittorrent-dht.pcap"),
            capture("dht-02-bep44-put-get.pcap"), DATA / "sample-bittorrent-utp-dht.pcap"]


def _check_krpc(krpc_query_counts: Callable[[str], dict[str, int]]) -> None:
    for path in _krpc_captures():
        want = Counter(r.fields["method"] for r in dissect(path)
                       if r.protocol == "bt-dht" and r.message == "query")
        got = krpc_query_counts(str(path))
        expect(dict(Counter(got)), dict(want), f"krpc_query_counts({path.name!r})")


def _check_events(tracker_events: Callable[[str], dict[str, set[str]]]) -> None:
    path = capture("tracker-01-opentracker-libtorrent-aria2.pcap")
    want: dict[str, set[str]] = {}
    for r in dissect(path):
        if r.message == "announce" and r.fields.get("peer_id") and r.fields.get("event"):
            client = bytes.fromhex(r.fields["peer_id"])[:8].decode("ascii", "replace")
            want.setdefault(client, set()).add(r.fields["event"])
    if len(want) < 2:
        raise ExerciseFailed("tracker-01 holds fewer than two clients' announces (it changed?)")
    got = tracker_events(str(path))
    expect({str(k): set(v) for k, v in dict(got).items()}, want,
           f"tracker_events({path.name!r})")


EXERCISES: dict[int, list[Exercise]] = {
    10: [Exercise(10, 4, "krpc_query_counts", "KRPC queries in a capture, by method",
                  "dissect(path) yields records; keep those with protocol 'bt-dht' and message "
                  "'query', and count record.fields['method']", _check_krpc),
         Exercise(10, 5, "tracker_events", "who announced what to the tracker",
                  "announce records (HTTP and UDP alike) carry fields 'peer_id' (hex) and "
                  "'event'; the client is the first 8 characters of the peer id (BEP 20), "
                  "e.g. '-LT2080-'; skip announces without an event", _check_events)],
}
