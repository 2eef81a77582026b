"""Offline rules on records the dissector would produce: they can fail, with frame numbers."""

from __future__ import annotations

from p2pkit.capture.record import Record
from p2pkit.conformance.offline import CaptureReport, judge
from p2pkit.dht import krpc


def _record(frame: int, src: str, dst: str, data: bytes, method: str | None = None) -> Record:
    decoded = krpc.decode_lenient(data)
    if method is not None:
        decoded.message.method = method
    return Record(frame=frame, time=0.0, transport="udp", src=src, dst=dst,
                  protocol=krpc.PROTOCOL, message=decoded.message.y, length=len(data),
                  value=decoded.message, deviations=list(decoded.deviations))


NODE, PEER = "10.0.0.1:6881", "10.0.0.2:6881"
QUERY = krpc.encode(krpc.query("get_peers", b"aa", id=b"q" * 20, info_hash=b"h" * 20))


def test_a_get_peers_answer_without_token_fails_its_must_rule() -> None:
    answer = krpc.encode(krpc.response(b"aa", id=b"n" * 20, nodes=b""))
    records = [_record(1, PEER, NODE, QUERY), _record(2, NODE, PEER, answer, "get_peers")]
    report = judge(records, CaptureReport("test"))
    node = report.endpoints[NODE]
    tally = node.tallies["bep5/get_peers/token"]
    assert (tally.checked, tally.failed, tally.verdict) == (1, 1, "fail")
    assert tally.failures == [(2, "r.token: missing")]
    assert node.tallies["krpc/version"].verdict == "non-strict"  # no "v": a SHOULD
    assert not node.ok and not report.ok
    assert report.endpoints[PEER].ok


def test_endpoint_filter_and_a_conforming_answer() -> None:
    answer = krpc.encode(dict(krpc.response(b"aa", id=b"n" * 20, nodes=b"", token=b"tok"),
                              v=b"XX\x00\x01", ip=b"\x0a\x00\x00\x02\x1a\xe1"))
    records = [_record(1, PEER, NODE, QUERY), _record(2, NODE, PEER, answer, "get_peers")]
    report = judge(records, CaptureReport("test"), endpoint=NODE)
    assert list(report.endpoints) == [NODE]
    node = report.endpoints[NODE]
    assert node.implementation == "XX 0001"
    assert all(t.verdict in ("pass", "n/a") for t in node.tallies.values())
