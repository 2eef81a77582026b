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
    assert not any(r.message == "undecoded" for r in records)
    # aMule's obfuscated answers to the peer announcing version 8, read with that peer's id
    obfuscated = [r for r in records if r.fields.get("encryption") == "Kad obfuscation"]
    assert [(r.frame, r.message) for r in obfuscated] == [(7, "hello_res"), (41, "hello_res"),
                                                          (75, "hello_res")]
    plain_answers = {r.frame: r for r in records if r.message == "hello_res"}
    assert obfuscated[0].fields["client_id"] == plain_answers[4].fields["client_id"]
    assert obfuscated[0].fields["obfuscation"]["padding"] == 0
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


def test_obfuscated_packets_to_a_node_whose_id_was_not_seen_are_labelled_encrypted():
    from p2pkit.capture.packets import Packet
    from p2pkit.kad2.dissect import KadDecoder
    from tests.pcap_payloads import udp_datagrams

    datagrams = udp_datagrams("kad2-amule.pcap")

    def pkt(n):
        (sip, sport), (dip, dport), payload = datagrams[n - 1]
        return Packet(frame=n, time=0.0, transport="udp", src_ip=sip, src_port=sport,
                      dst_ip=dip, dst_port=dport, payload=payload)

    decoder = KadDecoder()
    assert decoder.datagram(pkt(7)) is None  # nothing says these endpoints speak Kad yet
    decoder.datagram(pkt(1))  # a plain packet to aMule: now it is a Kad endpoint
    [record] = decoder.datagram(pkt(7))
    assert record.message == "undecoded" and record.fields["reason"] == "encrypted"
    assert record.fields["encryption"] == "Kad obfuscation" and record.length == 43


def test_forced_decoding_of_a_non_kad_datagram_says_why():
    from p2pkit.capture.packets import Packet
    from p2pkit.kad2.dissect import KadDecoder

    pkt = Packet(frame=1, time=0.0, transport="udp", src_ip="127.0.0.1", src_port=1,
                 dst_ip="127.0.0.2", dst_port=2, payload=b"\x00\x01")
    assert KadDecoder().datagram(pkt) is None
    [record] = KadDecoder().datagram(pkt, forced=True)
    assert record.message == "undecoded" and record.fields["reason"] == "malformed"
