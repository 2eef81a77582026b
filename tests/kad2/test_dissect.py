"""The dissector on the real aMule capture: every datagram accounted for."""

from __future__ import annotations

import json
from collections import Counter

from click.testing import CliRunner

from p2pkit.capture.dissect import dissect
from p2pkit.cli import cli as main
from tests.pcap_payloads import CAPTURES

CAPTURE = CAPTURES / "kad2-amule.pcap"


def test_every_datagram_is_a_kad_record():
    records = list(dissect(CAPTURE))
    assert len(records) == 102 and {r.protocol for r in records} == {"emule-kad"}
    undecoded = [r for r in records if r.message == "undecoded"]
    assert [r.frame for r in undecoded] == [7, 41, 75]
    assert all(r.fields["reason"] == "encrypted" and r.fields["encryption"] == "Kad obfuscation"
               for r in undecoded)
    assert Counter(r.message for r in records)["search_res"] == 12
    assert sum(1 for r in records if r.fields.get("packed")) == 9  # 6 from aMule, 3 pings
    assert not any(r.deviations for r in records)


def test_summary_tree_and_json_from_the_command_line():
    runner = CliRunner()
    text = runner.invoke(main, ["dissect", str(CAPTURE)])
    assert text.exit_code == 0
    line = text.output.splitlines()[1]
    assert "emule-kad bootstrap_res client_id=f15b80ce0c3fa2842820c59b3028d21e" in line
    tree = runner.invoke(main, ["dissect", "-V", str(CAPTURE)]).output
    assert 'name: "TAG_FILENAME"' in tree and 'value: "p2pkit kad2 sample 2.txt"' in tree
    docs = [json.loads(x) for x in runner.invoke(main, ["dissect", "--json", str(CAPTURE)])
            .output.splitlines()]
    firewalled = [d for d in docs if d["message"] == "firewalled_res"]
    assert {d["fields"]["ip"] for d in firewalled} == {"127.0.0.40"}


def test_forced_decoding_of_a_non_kad_datagram_says_why():
    from p2pkit.capture.packets import Packet
    from p2pkit.kad2.dissect import KadDecoder

    pkt = Packet(frame=1, time=0.0, transport="udp", src_ip="127.0.0.1", src_port=1,
                 dst_ip="127.0.0.2", dst_port=2, payload=b"\x00\x01")
    assert KadDecoder().datagram(pkt) is None
    [record] = KadDecoder().datagram(pkt, forced=True)
    assert record.message == "undecoded" and record.fields["reason"] == "malformed"
