"""Making traces: cut a session out of a capture and replay it (round trip), record one
through the loopback proxy between p2pkit's own client and server and replay it, and the
manifest's validation (also fuzzed)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.capture.dissect import dissect
from p2pkit.conformance.trace_manifest import FORMAT, load_manifest, parse_manifest
from p2pkit.conformance.trace_proxy import record_proxy
from p2pkit.conformance.trace_record import record_from_capture
from p2pkit.conformance.trace_replay import load_trace, replay
from p2pkit.conformance.trace_session import TraceError, find_sessions
from tests.conformance.trace_helpers import (
    CAPTURES,
    own_target,
    reasons,
    replay_against_own,
    verdicts,
)

DHT02 = CAPTURES / "dht-02-bep44-put-get.pcap"
TRACKER01 = CAPTURES / "tracker-01-opentracker-libtorrent-aria2.pcap"
GNUTELLA02 = CAPTURES / "gnutella-02-p2pkit-servents.pcap"


def test_cut_keeps_only_the_session_and_the_manifest_names_it(tmp_path):
    manifest = record_from_capture(TRACKER01, "127.0.0.1:6969", tmp_path / "t",
                                   session=3, software="aria2 1.36.0")
    assert (manifest.client, manifest.server, manifest.protocol) == (
        "127.0.0.5:6886", "127.0.0.1:6969", "tracker")
    records = list(dissect(tmp_path / "t" / "trace.pcap"))
    assert {frozenset((r.src, r.dst)) for r in records} == {
        frozenset(("127.0.0.5:6886", "127.0.0.1:6969"))}
    assert [r.message for r in records if r.src == manifest.client] == [
        "connect", "announce", "announce"]
    # the inferred rules: same action, the transaction id echoed, the connection id of the
    # live connect answer reused in the announces
    assert manifest.steps[0].expect[0] == {"exact": {"action": "connect"}}
    assert {"echo": "transaction_id"} in manifest.steps[1].expect
    (cid,) = [f for f in manifest.fresh if f.from_step is not None]
    assert (cid.from_step, cid.path) == (0, "connection_id")
    assert load_manifest(tmp_path / "t") == manifest
    # replayed: fresh info-hash, peer id and port, the live connection id
    from p2pkit.bittorrent.tracker.udp import UdpTrackerRequest

    report = replay_against_own("tracker", [tmp_path / "t"])
    assert verdicts(report) == {"tracker/trace/t": "pass"}
    exchanges = report.results[0].exchanges
    recorded = UdpTrackerRequest.parse(load_trace(tmp_path / "t").sends[1].data)
    sent = UdpTrackerRequest.parse(exchanges[1].sent)
    assert sent.connection_id == exchanges[0].answer.get("connection_id") != \
        recorded.connection_id
    for name in ("info_hash", "peer_id", "port", "transaction_id"):
        assert sent[name] != recorded[name], name
    assert UdpTrackerRequest.parse(exchanges[2].sent).port == sent.port  # one port a run


def test_cut_then_replay_round_trip(tmp_path):
    record_from_capture(DHT02, "127.0.0.10:6881", tmp_path / "d", session=1)
    trace = load_trace(tmp_path / "d")
    methods = [s.note for s in trace.manifest.steps]
    assert methods == ["get", "put", "get", "put", "put", "put", "put"]
    assert [s.expect[0] for s in trace.manifest.steps[-2:]] == [{"error": [302]},
                                                               {"error": [301]}]
    report = replay_against_own("dht", [tmp_path / "d"])
    assert verdicts(report) == {"dht/trace/d": "pass"}
    # the put carried the live node's token, not the recorded one
    sent = [e.sent for e in report.results[0].exchanges]
    recorded_token = next(f.recorded for f in trace.manifest.fresh if f.name.startswith("token"))
    assert recorded_token in trace.sends[1].data and recorded_token not in sent[1]


def test_steps_limit_cuts_the_capture_short(tmp_path):
    """p2pkit's own servents (gnutella-02): the second session of the ultrapeer, 2 turns."""
    manifest = record_from_capture(GNUTELLA02, "127.0.0.10:6346", tmp_path / "g", session=2,
                                   max_steps=2)
    assert manifest.client == "127.0.0.11:59615" and len(manifest.steps) == 2
    assert manifest.steps[0].expect[0]["receives"] == "handshake"
    full = record_from_capture(GNUTELLA02, "127.0.0.10:6346", tmp_path / "all", session=2)
    assert len(full.steps) > 2
    kept = {r.frame for r in dissect(tmp_path / "g" / "trace.pcap")}
    assert len(kept) < len({r.frame for r in dissect(tmp_path / "all" / "trace.pcap")})


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflated"])
def test_proxy_recording_between_p2pkit_servents_replays(tmp_path, deflate):
    """A p2pkit leaf connects to a p2pkit ultrapeer through the proxy; the trace cut from
    what passed replays against a fresh ultrapeer. With ``deflate`` the leaf's side is one
    zlib stream: the fresh GUIDs must go inside it (trace_deflate), or the pong the rules
    expect under the ping's fresh GUID comes back under the recorded one (issue 14)."""
    from p2pkit.gnutella.server import GnutellaServer

    pcap = tmp_path / "proxy.pcap"

    async def run():
        async with own_target("gnutella") as target:
            listening: asyncio.Future = asyncio.get_running_loop().create_future()
            proxy = asyncio.ensure_future(record_proxy(
                ("127.0.0.1", 0), target, pcap, duration=1.5,
                ready=lambda where: listening.set_result(where)))
            where = await listening
            leaf = GnutellaServer(seed=9, deflate=deflate)
            await leaf.start()
            try:
                await leaf.connect(*where)
                await asyncio.wait_for(leaf.connected.wait(), 5)
                await leaf.search("kilo", timeout=0.3)
            finally:
                await leaf.close()
            return await proxy, target
    sessions, target = asyncio.run(run())
    assert len(sessions) == 1 and sessions[0].target == target
    manifest = record_from_capture(pcap, f"{target[0]}:{target[1]}", tmp_path / "trace",
                                   software="p2pkit leaf")
    assert manifest.protocol == "gnutella" and manifest.transport == "tcp"
    assert manifest.steps[0].expect == ({"receives": "handshake", "fields": {"status": 200}},)
    client_messages = [r.message for r in dissect(tmp_path / "trace" / "trace.pcap")
                       if r.src == manifest.client]
    assert "query" in client_messages
    report = replay_against_own("gnutella", [tmp_path / "trace"])
    assert verdicts(report) == {"gnutella/trace/trace": "pass"}, reasons(report)
    trace = load_trace(tmp_path / "trace")
    assert bool(trace.deflated) == deflate
    if deflate:  # the replayed pings went under fresh GUIDs, inside a deflated stream
        from p2pkit.gnutella.stream import StreamReader

        sent = b"".join(e.sent for e in report.results[0].exchanges)
        frames = StreamReader(strict=False).feed(sent)
        pings = [f.descriptor.guid for f in frames if getattr(f, "compressed", False)
                 and f.descriptor.type == "ping"]
        recorded = {f.recorded for f in trace.manifest.fresh}
        assert pings and not recorded & set(pings)


def test_udp_proxy_recording_between_p2pkit_dht_nodes_replays(tmp_path):
    from p2pkit.dht.server import DhtServer

    pcap = tmp_path / "proxy.pcap"

    async def run():
        async with own_target("dht") as target:
            listening: asyncio.Future = asyncio.get_running_loop().create_future()
            proxy = asyncio.ensure_future(record_proxy(
                ("127.0.0.1", 0), target, pcap, udp=True, duration=1.5,
                ready=lambda where: listening.set_result(where)))
            where = await listening
            client = await DhtServer.start("127.0.0.1", 0, rng=random.Random(2))
            try:
                await client.ping(where, timeout=1.0)
                await client.get_peers(bytes(range(20)), timeout=1.0)
            finally:
                client.close()
            return await proxy, target
    sessions, target = asyncio.run(run())
    assert sessions and sessions[0].udp
    manifest = record_from_capture(pcap, f"{target[0]}:{target[1]}", tmp_path / "trace")
    assert [s.note for s in manifest.steps][:2] == ["ping", "get_peers"]
    assert verdicts(replay_against_own("dht", [tmp_path / "trace"])) == {
        "dht/trace/trace": "pass"}


# ---- bad traces -----------------------------------------------------------------------------

def _manifest(**changes):
    doc = {"format": FORMAT, "id": "dht/trace/x", "title": "t", "protocol": "dht",
           "provenance": {"source": "s", "software": "w", "cut": "c"},
           "session": {"transport": "udp", "client": "127.0.0.1:1", "server": "127.0.0.2:2"},
           "steps": [{"frame": 1, "expect": [{"response": True}]}]}
    doc.update(changes)
    return doc


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "v0"}, "format: 'v0', expected 'p2pkit-trace/1'"),
    ({"protocol": "ftp"}, "protocol: 'ftp', expected one of"),
    ({"steps": []}, "steps: a trace needs at least one step"),
    ({"steps": [{"frame": "1"}]}, "steps.0.frame: expected an int, got str"),
    ({"steps": [{"frame": 1, "expect": [{"nonsense": 1}]}]},
     "steps.0.expect.0: unknown rule 'nonsense'"),
    ({"steps": [{"frame": 1, "expect": [{"receives": "pong"}]}]},
     "steps.0.expect.0: 'receives' judges stream answers"),
    ({"session": {"transport": "tcp", "client": "127.0.0.1:1", "server": "127.0.0.2:2"}},
     "session.transport: dht traces are replayed over udp"),
    ({"session": {"transport": "udp", "client": "nowhere", "server": "127.0.0.2:2"}},
     "session.client:"),
    ({"fresh": [{"name": "token", "recorded": {"hex": "zz"}}]}, "fresh.0.recorded: hex"),
    ({"fresh": [{"name": "token", "recorded": 1, "from_step": 5, "path": "r.token"}]},
     "from_step: 5: no such step"),
    ({"id": "tracker/trace/x"}, "id: 'tracker/trace/x' must start with 'dht/'"),
])
def test_bad_manifests_are_named_by_field(changes, message):
    with pytest.raises(TraceError) as e:
        parse_manifest(_manifest(**changes), "m.json")
    assert str(e.value).startswith("m.json: ") and message in str(e.value)


_KEYS = ["format", "id", "protocol", "session", "steps", "frame", "expect", "fresh", "hex",
         "field", "receives", "transport", "client", "server"]


def _containers(children):
    return st.one_of(st.lists(children, max_size=4),
                     st.dictionaries(st.sampled_from(_KEYS), children, max_size=5))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     _containers, max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(_manifest())), _json, max_size=8))
def test_random_manifests_raise_only_trace_errors(changes):
    try:
        parse_manifest(_manifest(**changes))
    except TraceError:
        pass


def test_missing_manifest_and_missing_session(tmp_path):
    with pytest.raises(TraceError, match="no manifest.json"):
        load_trace(tmp_path)
    record_from_capture(TRACKER01, "127.0.0.1:6969", tmp_path / "t", session=1)
    doc = json.loads((tmp_path / "t" / "manifest.json").read_text())
    doc["session"]["client"] = "127.0.0.9:1"
    (tmp_path / "t" / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(TraceError, match="no packet of the session 127.0.0.9:1"):
        load_trace(tmp_path / "t")


def test_replay_of_a_trace_against_nothing_is_a_target_error(tmp_path):
    from p2pkit.conformance.runner import TargetError

    record_from_capture(TRACKER01, "127.0.0.1:6969", tmp_path / "t", session=1)
    trace = load_trace(tmp_path / "t")
    with pytest.raises(TargetError):
        asyncio.run(replay([trace], ("127.0.0.1", 9), timeout=0.3))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_capture_bytes_raise_only_trace_errors(data):
    import io
    import struct

    from p2pkit.conformance.trace_session import SessionInfo, read_turns

    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    for blob in (data, head + data):
        try:
            find_sessions(io.BytesIO(blob), "127.0.0.1:1")
            read_turns(io.BytesIO(blob), SessionInfo("tcp", "127.0.0.1:2", "127.0.0.1:1",
                                                     "bittorrent", 0))
        except TraceError:
            pass


def test_html_report_of_stream_traces_shows_decoded_fields(tmp_path):
    from p2pkit.conformance.reporters import html
    from tests.conformance.trace_helpers import shipped

    path = next(p for p in shipped("gnutella") if "leaf" in p.name)
    report = replay_against_own("gnutella", [path])
    html.write(report, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert "gnutella/trace/gtk-gnutella-leaf" in text
    assert "GNUTELLA CONNECT" in text or "connect" in text  # the sent handshake, decoded
    assert "pong" in text
