"""``p2pkit dissect``: output formats, filters, stats, and damaged or wrong input."""

from __future__ import annotations

import json
import struct
from collections import Counter

from p2pkit.cli import main
from tests.pcap_payloads import CAPTURES

BT02 = CAPTURES / "bt-02-libtorrent-magnet-ut_metadata-pex.pcap"
JSON_KEYS = {"frame", "time", "transport", "src", "dst", "protocol", "message", "fields"}


def run(capsys, args):
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_jsonl_contract_on_a_real_capture(capsys):
    status, out, err = run(capsys, ["dissect", str(BT02), "--format", "jsonl"])
    assert status == 0 and err == ""
    records = [json.loads(line) for line in out.splitlines()]
    assert all(JSON_KEYS <= set(r) for r in records)
    assert {r["transport"] for r in records} == {"tcp"}
    pieces = [r for r in records if r["message"] == "piece"]
    assert len(pieces) == 256  # 64 pieces of 32 KiB in 16 KiB blocks
    assert all(set(r["fields"]["piece"]) == {"length", "sha1"} for r in pieces)
    assert all(r["src"].count(":") == 1 and r["protocol"] == "bittorrent" for r in records)


def test_summary_lines_tree_and_filters(capsys):
    status, out, _ = run(capsys, ["dissect", str(BT02), "--message", "request", "-c", "3"])
    lines = out.splitlines()
    assert status == 0 and len(lines) == 3
    assert all(" bittorrent request index=" in line and "length=16384" in line for line in lines)
    status, out, _ = run(capsys, ["dissect", str(BT02), "--filter",
                                  "message == have and fields.index < 2", "--json"])
    assert {json.loads(line)["fields"]["index"] for line in out.splitlines()} == {0, 1}
    status, out, _ = run(capsys, ["dissect", str(BT02), "-V", "--message", "handshake",
                                  "-c", "1"])
    assert "  bittorrent handshake (stream offset 0, 68 bytes)" in out
    assert "info_hash: \"8e3f4515b630cdb09dfc315577611036fc7ac773\"" in out


def test_stats_count_messages(capsys):
    status, out, _ = run(capsys, ["dissect", str(BT02), "--stats", "--json"])
    stats = json.loads(out.splitlines()[-1])["stats"]
    counts = Counter({(m["protocol"], m["message"]): m["count"] for m in stats["messages"]})
    assert counts[("bittorrent", "piece")] == 256 and counts[("bittorrent", "handshake")] == 10


def test_truncated_capture_prints_partial_output_then_one_warning(capsys, tmp_path):
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(BT02.read_bytes()[:1_500_000])
    status, out, err = run(capsys, ["dissect", str(damaged)])
    assert status == 1 and out
    assert err.count("\n") == 1 and err.startswith("p2pkit: warning: ") and "truncated" in err


def test_two_gigabyte_record_length_is_one_line_not_a_traceback(capsys, tmp_path):
    data = bytearray(BT02.read_bytes()[:200_000])
    struct.pack_into("<I", data, 24 + 8, 2_000_000_000)  # first record's captured length
    bad = tmp_path / "huge.pcap"
    bad.write_bytes(bytes(data))
    status, out, err = run(capsys, ["dissect", str(bad)])
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "captured_length" in err and "limit" in err


def test_not_a_capture_and_missing_file(capsys, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    status, _, err = run(capsys, ["dissect", str(text)])
    assert status == 2 and err.count("\n") == 1 and "not a pcap" in err
    status, _, err = run(capsys, ["dissect", str(tmp_path / "missing.pcap")])
    assert status == 2 and "No such file" in err


def test_bad_filter_and_decode_as_are_usage_errors(capsys):
    status, _, err = run(capsys, ["dissect", str(BT02), "--filter", "__import__('os')"])
    assert status == 2 and "filter" in err
    status, _, err = run(capsys, ["dissect", str(BT02), "--decode-as", "tcp.port=6881"])
    assert status == 2 and "decode-as" in err


def test_count_stats_and_filters_see_the_records_one_by_one(capsys):
    """The output loop takes the records a frame's batch at a time: ``-c`` stops at the same
    record, and ``--stats`` counts the records shown (or, with summary lines, every record
    let through), as a loop over single records does."""
    from p2pkit.capture.dissect import Dissection
    from p2pkit.capture.render import Statistics, render_jsonl, render_summary, render_tree

    path = CAPTURES / "gtkg123-plain-up2-3leaves.pcap"
    dissection = Dissection(path)
    records = list(dissection)
    start = dissection.first_time or 0.0
    kept = [r for r in records if r.message != "undecoded" and r.protocol == "gnutella"]
    assert len(kept) > 40
    for n in (1, 7, 40):
        status, out, _ = run(capsys, ["dissect", str(path), "-c", str(n)])
        assert out == "".join(render_summary(r, start) + "\n" for r in records[:n])
        status, out, _ = run(capsys, ["dissect", str(path), "-c", str(n), "-V", "--stats",
                                      "--protocol", "gnutella", "--no-undecoded"])
        stats = Statistics().extend(kept[:n]).render()
        assert out == "".join(render_tree(r, start) + "\n\n" for r in kept[:n]) + stats + "\n"
        status, out, _ = run(capsys, ["dissect", str(path), "-c", str(n), "--json",
                                      "--filter", 'message == "query"'])
        queries = [r for r in records if r.message == "query"][:n]
        assert out == "".join(render_jsonl(r) + "\n" for r in queries)
    status, out, _ = run(capsys, ["dissect", str(path), "-c", "3", "--stats"])
    assert out == Statistics().extend(records).render() + "\n"  # summary + stats: no -c


def test_summary_lines_of_many_small_batches_come_out_whole(capsys, monkeypatch):
    """Batches of a frame or two gathered and written by the chunk (records or bytes), and
    what is left written at the end or at ``-c``: the lines render_summary gives."""
    from p2pkit.capture.dissect import Dissection
    from p2pkit.capture.render import render_summary
    from p2pkit.cli import dissect as dissect_cli

    path = CAPTURES / "ndpi-gnutella.pcap"
    dissection = Dissection(path)
    records = list(dissection)
    start = dissection.first_time or 0.0
    expected = [render_summary(r, start) + "\n" for r in records]
    assert len(records) > 2 * dissect_cli.SUMMARY_CHUNK
    assert run(capsys, ["dissect", str(path)])[1] == "".join(expected)
    for chunk, chunk_bytes in ((7, 1 << 20), (10 ** 6, 1000)):
        monkeypatch.setattr(dissect_cli, "SUMMARY_CHUNK", chunk)
        monkeypatch.setattr(dissect_cli, "SUMMARY_CHUNK_BYTES", chunk_bytes)
        assert run(capsys, ["dissect", str(path), "-c", "1000"])[1] == "".join(expected[:1000])
