"""The renderers and converters compiled per shape against the generic ones on every record of
every committed capture (MSE and Noise sessions decrypted with their key logs): the field tree
(tree_shapes against record_tree), the JSON line (json_lines against json.dumps of to_json())
and the JSON conversion of every decoded message (json_shapes against json_mapping item by
item), each compiled from this capture alone and run twice, so that the second pass runs the
compiled functions on the shapes the first met."""

from __future__ import annotations

import pytest

import p2pkit.capture.record as record_module
import p2pkit.capture.render as render
from p2pkit.bittorrent.dissect import SUMMARISED
from p2pkit.bittorrent.mse.keylog import parse_keylog
from p2pkit.capture.dissect import Dissection
from p2pkit.capture.json_lines import json_line, json_line_generic
from p2pkit.capture.json_shapes import ShapeJsonConverter
from p2pkit.capture.record import BINARY_INLINE_LIMIT, json_mapping, json_value
from p2pkit.capture.render import record_tree, render_tree, tree_block, tree_text
from p2pkit.capture.tree_shapes import ShapeTreeRenderer
from p2pkit.ipfs.noise_keylog import parse_noise_keylog
from tests.pcap_payloads import CAPTURES

ALL_CAPTURES = sorted(CAPTURES.glob("*.pcap*"))


def _secrets(path):
    keylog = path.with_suffix(".keylog")
    if not keylog.exists():
        return {}
    text = keylog.read_text(encoding="ascii", errors="replace")
    return {"bittorrent": parse_keylog(text), "ipfs": parse_noise_keylog(text)}


def _tree_reference(record, start: float) -> str:
    lines = [f"Frame {record.frame}: {record.time - start:.6f} {record.transport} {record.src} → "
             f"{record.dst}"]
    return "\n".join(lines + [line.text for line in record_tree(record)])


class _GenericMappings:
    """json_value's mappings converted item by item (no compiled shape)."""

    @staticmethod
    def convert(value, summarised):
        return json_mapping(value, summarised)


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_compiled_renderers_equal_the_generic_ones_on_every_record(path, monkeypatch):
    dissection = Dissection(path, secrets=_secrets(path))
    records = list(dissection)
    assert records
    start = dissection.first_time or 0.0

    # field trees
    trees = ShapeTreeRenderer(tree_text)
    monkeypatch.setattr(render, "_SHAPES", trees)
    expected = [_tree_reference(r, start) for r in records]
    for _ in range(2):
        assert [render_tree(r, start) for r in records] == expected
    # what dissect -V writes: the frame line, then the rest and a blank line
    assert ["".join(tree_block(r, start)) for r in records] == [t + "\n\n" for t in expected]
    assert trees.shapes > 0 or len(records) < 3

    # JSON lines
    assert [json_line(r) for r in records] == [json_line_generic(r) for r in records]

    # the JSON conversion of every decoded message
    decoded = [r.value for r in records if isinstance(r.value, (dict, list))]
    monkeypatch.setattr(record_module, "_SHAPES", _GenericMappings())
    expected = [json_value(v, "", SUMMARISED) for v in decoded]
    converter = ShapeJsonConverter(json_mapping, json_value=json_value,
                                   text_value=record_module.text_value,
                                   binary=record_module._binary, key=record_module._key,
                                   limit=BINARY_INLINE_LIMIT)
    monkeypatch.setattr(record_module, "_SHAPES", converter)
    for _ in range(2):
        got = [json_value(v, "", SUMMARISED) for v in decoded]
        assert got == expected
        assert [repr(v) for v in got] == [repr(v) for v in expected]  # key order too
