"""The shipped traces replayed against p2pkit's own peers pass; mutants of those peers fail
with the first difference named (step, field path, expected vs got)."""

from __future__ import annotations

import json

import pytest
from construct import Container

from p2pkit.conformance.trace_replay import load_trace, shipped_traces, trace_case
from p2pkit.gnutella.servent import Servent
from tests.conformance import test_bt_mutants, test_mutants, test_tracker_mutants
from tests.conformance.trace_helpers import reasons, replay_against_own, shipped, verdicts

PROTOCOLS = ("dht", "tracker", "bittorrent", "gnutella")


def test_at_least_six_traces_across_the_protocols_each_with_provenance():
    traces = [load_trace(p) for p in shipped_traces()]
    assert len(traces) >= 6
    assert {t.manifest.protocol for t in traces} == set(PROTOCOLS)
    for t in traces:
        p = t.manifest.provenance
        assert p["source"].endswith(".pcap") and p["software"] != "unknown" and p["cut"]
        assert t.id.startswith(f"{t.manifest.protocol}/trace/")
        assert all(s.expect for s in t.manifest.steps[:1]), t.id  # the first answer is judged
    assert len({t.id for t in traces}) == len(traces)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shipped_traces_pass_against_p2pkits_own_peer(protocol, tmp_path):
    for path in shipped(protocol):
        report = replay_against_own(protocol, [path], tmp_path / path.name)
        assert verdicts(report) == {load_trace(path).id: "pass"}, reasons(report)
        # every step was played and the rules were judged on real answers
        result = report.results[0]
        assert len(result.exchanges) == len(load_trace(path).manifest.steps)
        judged = [e for e in result.exchanges if e.check is not None]
        assert judged and all(e.check.ok for e in judged)


def _first_failure(report):
    (result,) = report.results
    return result.verdict, result.failed_step, result.path, result.reason


def test_dht_node_not_echoing_the_transaction_id_fails_at_the_first_step(monkeypatch):
    test_mutants.mutant_transaction_id(monkeypatch)
    path = next(p for p in shipped("dht") if "bittorrent-dht" in p.name)
    verdict, step, field, reason = _first_failure(replay_against_own("dht", [path]))
    assert (verdict, step, field) == ("fail", 0, "t")
    assert reason.startswith("step 1: t is ") and "expected" in reason


def test_dht_node_not_checking_tokens_fails_where_the_recorded_put_was_refused(monkeypatch):
    """The replayed puts carry the live token, so a node that checks nothing still answers
    them; the trace's error steps (301, 302) catch a node that stores without rules."""
    from p2pkit.dht.items import ItemStore

    monkeypatch.setattr(ItemStore, "put", lambda self, *a, **k: None)
    path = next(p for p in shipped("dht") if "bittorrent-dht" in p.name)
    verdict, step, field, reason = _first_failure(replay_against_own("dht", [path]))
    manifest = load_trace(path).manifest
    assert verdict == "fail"
    assert manifest.steps[step].expect[0] == {"error": [302]}
    assert field == "y" and "expected an error 302" in reason


def test_tracker_not_echoing_the_transaction_id_fails(monkeypatch):
    test_tracker_mutants.mutant_transaction_id(monkeypatch)
    path = shipped("tracker")[0]
    verdict, step, field, reason = _first_failure(replay_against_own("tracker", [path]))
    assert (verdict, step, field) == ("fail", 0, "transaction_id")
    assert "expected" in reason


def test_seeder_not_echoing_the_info_hash_fails_at_the_handshake(monkeypatch, tmp_path):
    test_bt_mutants.mutant_info_hash_not_echoed(monkeypatch)
    path = next(p for p in shipped("bittorrent") if "v2" not in p.name)
    verdict, step, field, reason = _first_failure(
        replay_against_own("bittorrent", [path], tmp_path, timeout=1.0))
    assert (verdict, step, field) == ("fail", 0, "info_hash")
    assert reason.startswith("step 1: handshake.info_hash: '71c0baea")
    assert reason.endswith("expected '8e3f4515b630cdb09dfc315577611036fc7ac773'")


def test_servent_not_echoing_the_ping_guid_fails_at_the_ping(monkeypatch):
    original = Servent._send

    def send(self, conn, d):
        if d.get("type") == "pong":
            d = Container(d, guid=bytes(b ^ 0xFF for b in d.guid))
        return original(self, conn, d)
    monkeypatch.setattr(Servent, "_send", send)
    path = next(p for p in shipped("gnutella") if "leaf" in p.name)
    verdict, step, field, reason = _first_failure(
        replay_against_own("gnutella", [path], timeout=1.0))
    manifest = load_trace(path).manifest
    assert verdict == "fail" and manifest.steps[step].expect[0]["receives"] == "pong"
    assert field == "guid" and f"step {step + 1}: pong.guid: '" in reason
    got, expected = reason.split(": ")[-1].split(", expected ")
    # the pong carries the fresh ping GUID, every byte flipped
    assert bytes.fromhex(got.strip("'")) == bytes(b ^ 0xFF for b in bytes.fromhex(
        expected.strip("'")))


def test_a_trace_is_a_case_every_reporter_reads(tmp_path):
    from p2pkit.conformance.reporters import html, json_report, junit

    path = next(p for p in shipped("dht") if "libtorrent" in p.name)
    case = trace_case(load_trace(path))
    assert case.id == "dht/trace/libtorrent-bep44-put-get" and case.level == "MUST"
    report = replay_against_own("dht", [path])
    for module, name in ((junit, "r.xml"), (json_report, "r.json"), (html, "r.html")):
        module.write(report, tmp_path / name)
    doc = json.loads((tmp_path / "r.json").read_text())
    text = json.dumps(doc)
    assert case.id in text and "get_peers" in text
    assert case.id in (tmp_path / "r.xml").read_text()
