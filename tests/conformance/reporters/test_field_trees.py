"""Side by side, per step: what the harness sent and what the target answered, as the trees
``p2pkit dissect -V`` prints, with the first difference marked; on real runs against p2pkit's
node, seeder and tracker, with mutants so that differences appear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from p2pkit.conformance import catalog
from p2pkit.conformance.case import select
from p2pkit.conformance.reporters.field_trees import case_trees, raw_lines
from p2pkit.dht.node import Node
from tests.conformance import test_bt_mutants as bt_mutants
from tests.conformance.bt_helpers import run_against_own_seeder
from tests.conformance.helpers import run_against_own_node
from tests.conformance.tracker_helpers import run_against_own_tracker

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dht_mutant_report():
    mp = pytest.MonkeyPatch()
    original = Node._reply
    mp.setattr(Node, "_reply", lambda self, m, t, addr: original(self, m, t + b"!", addr))
    try:
        return run_against_own_node(select(catalog("dht"), ["dht/bep5/krpc",
                                                            "dht/robustness/random-bytes"]))
    finally:
        mp.undo()


def _dissect_v(datagrams: list[tuple[bytes, bool]], tmp_path: Path) -> list[list[str]]:
    """``p2pkit dissect -V`` over a capture of ``datagrams`` (harness → target when True):
    each message's lines under its frame line."""
    packets = []
    for data, outgoing in datagrams:
        a, b = ("127.0.0.5", 40000), ("127.0.0.6", 6881)
        (src, sport), (dst, dport) = (a, b) if outgoing else (b, a)
        packets.append(Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / data)
    path = tmp_path / "step.pcap"
    wrpcap(str(path), packets)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "p2pkit", "dissect", "-V", str(path)],
                         capture_output=True, text=True, timeout=60, env=env, check=True)
    return [block.splitlines()[1:] for block in out.stdout.strip().split("\n\n")]


def test_dht_trees_are_dissect_v_and_mark_the_echo(dht_mutant_report, tmp_path) -> None:
    failing = [r for r in dht_mutant_report.results if r.verdict == "fail"]
    assert len(failing) == 6
    for result in failing:
        (exchange,) = result.exchanges
        (trees,) = case_trees(result)
        # the very lines the dissector prints for the same two datagrams
        sent, received = _dissect_v([(exchange.sent, True), (exchange.answer.data, False)],
                                    tmp_path)
        assert [line.text for line in trees.sent] == sent
        assert [line.text for line in trees.received] == received
        marked = trees.received[trees.marked]
        assert marked.path == "transaction_id"
        t = exchange.sent[exchange.sent.index(b"1:t") + 3:]
        sent_t = t[t.index(b":") + 1:][:int(t[:t.index(b":")])]
        assert marked.text.endswith(f'"{(sent_t + b"!").hex()}"')
        assert trees.difference.expected == sent_t.hex()
        assert trees.difference.got == (sent_t + b"!").hex()
    passing = [r for r in dht_mutant_report.results if r.verdict == "pass"]
    assert passing and all(t.marked is None for r in passing for t in case_trees(r))


def test_undecodable_bytes_are_hex(dht_mutant_report) -> None:
    result = next(r for r in dht_mutant_report.results if r.case.id.endswith("random-bytes"))
    trees = case_trees(result)
    sent = result.exchanges[0].sent
    text = "\n".join(line.text for line in trees[0].sent)
    assert "raw" in text and sent[:8].hex() in text.replace(" ", "")
    assert [str(x) for x in raw_lines(bytes(range(40)), "x")][1:] == [
        "    0000  0001020304050607 08090a0b0c0d0e0f 1011121314151617 18191a1b1c1d1e1f",
        "    0020  2021222324252627"]


def test_peer_wire_trees_mark_the_spare_bit(tmp_path, monkeypatch) -> None:
    bt_mutants.mutant_bitfield_spare_bits(monkeypatch)
    report = run_against_own_seeder(tmp_path, select(catalog("bittorrent"),
                                                     ["bitfield/spare-bits"]))
    (result,) = report.results
    assert result.verdict == "fail"
    steps = case_trees(result)
    assert steps[0].sent[0].text.startswith("  bittorrent handshake (stream offset 0, 68 bytes)")
    assert steps[0].received[0].text.startswith("  bittorrent handshake")
    # the session rule failed at a later step; the bitfield it judged came in step 1
    marked = [(n, s.received[s.marked]) for n, s in enumerate(steps) if s.marked is not None]
    assert len(marked) == 1
    n, line = marked[0]
    assert line.path == "bitfield" and "bitfield" in line.text
    failing = steps[result.failed_step].difference
    assert failing.path == "bitfield" and failing.got.startswith("spare bits set")


def test_peer_wire_missing_field_gets_a_line(tmp_path, monkeypatch) -> None:
    bt_mutants.mutant_info_hash_not_echoed(monkeypatch)
    report = run_against_own_seeder(tmp_path, select(catalog("bittorrent"),
                                                     ["handshake/info-hash-echo"]))
    (result,) = report.results
    assert result.verdict == "fail", result.reason
    trees = case_trees(result)[result.failed_step]
    line = trees.received[trees.marked]
    assert line.path == "info_hash" and trees.difference.got in line.text


def test_tracker_trees_are_decoded() -> None:
    cases = select(catalog("tracker"), ["tracker/bep15/announce/layout",
                                        "tracker/bep3/announce/interval"])
    for report in run_against_own_tracker(cases):
        for result in report.results:
            for trees in case_trees(result):
                assert trees.sent and trees.received
                assert not any(line.path == "raw" for line in trees.sent + trees.received)
                assert trees.received[0].text.split()[0] in ("bt-tracker", "bt-tracker-http")
