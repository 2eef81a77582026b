"""Peer-wire dissection (p2pkit.bittorrent.dissect): piece records whose block digest is worked
out only when the tree or JSON reads it, against eager records, on real captures."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from p2pkit.capture.dissect import dissect
from p2pkit.capture.lazy_record import LazyRecord
from p2pkit.capture.record import Record
from p2pkit.capture.render import render_jsonl, render_summary, render_tree
from tests.pcap_payloads import CAPTURES


@pytest.mark.parametrize("name", ["bt-06-p2pkit-leech-libtorrent.pcap",
                                  "bt-07-p2pkit-seed-aria2.pcap", "ndpi-bittorrent.pcap"])
def test_piece_summary_lines_need_no_digest_and_match_the_eager_record(name):
    pieces = 0
    for record in dissect(CAPTURES / name):
        if record.message != "piece":
            continue
        pieces += 1
        assert isinstance(record, LazyRecord)
        line = render_summary(record, 0.0)
        assert not record.decoded  # the line read the header fields only
        assert "piece=<" in line
        eager = Record(**{f.name: getattr(record, f.name) for f in dataclasses.fields(Record)})
        assert record.decoded
        assert render_summary(eager, 0.0) == line
        assert render_tree(eager, 0.0) == render_tree(record, 0.0)
        assert render_jsonl(eager) == render_jsonl(record)
        block = record.value.piece
        assert record.fields["piece"] == {"length": len(block),
                                          "sha1": hashlib.sha1(block).hexdigest()}
    assert pieces
