"""The captured hex examples and byte-layout diagrams of the wire-format pages
(docs/_ext/p2pkit_wire_examples.py)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.messages import Handshake, PeerMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_wire_examples as wire  # noqa: E402

EXAMPLES = wire.first_examples("bittorrent")


def test_handshake_example_is_the_first_handshake_of_the_captures():
    example = EXAMPLES["handshake"][0]
    assert example.data[:20] == b"\x13BitTorrent protocol"
    assert len(example.data) == 68
    assert Handshake.parse(example.data).info_hash == example.data[28:48]


@pytest.mark.parametrize("name", ["request", "have", "interested", "bitfield", "piece"])
def test_peer_message_examples_parse_as_their_message(name):
    example = EXAMPLES[name][0]
    assert PeerMessage.parse(example.data).type == name
    assert int.from_bytes(example.data[:4], "big") == len(example.data) - 4


def test_udp_examples_are_whole_datagrams():
    dht = wire.first_examples("bt-dht")
    assert dht, "the captures hold DHT traffic"
    for example in (e for found in dht.values() for e in found):
        assert example.transport == "udp" and example.data[:1] == b"d"


def test_hexdump_offsets_and_truncation():
    text = wire.hexdump(bytes(range(40)), limit=32)
    lines = text.splitlines()
    assert lines[0].startswith("0000  00 01 02") and lines[1].startswith("0010  10 11")
    assert lines[-1] == "…     (8 more bytes, 40 in all)"


@given(st.binary(max_size=200))
def test_hexdump_shows_every_byte_up_to_the_limit(data):
    text = wire.hexdump(data, limit=64)
    shown = "".join(re.findall(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)", text, flags=re.M))
    assert bytes.fromhex(shown) == data[:64]


def test_layout_svg_boxes_every_field_and_wraps_rows():
    fields = [("length", 4), ("id", 1), ("index", 4), ("begin", 4), ("length", 4)]
    svg = wire.layout_svg(fields)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    rects = root.findall(f"{ns}rect")
    # 17 bytes in rows of 4: id ends row 1, index spans rows 1-2, begin rows 2-3, length 3-4.
    assert len(rects) == 1 + 1 + 2 + 2 + 2
    assert sum(int(r.get("width")) for r in rects) == 17 * wire.BYTE_PX
    labels = [t.text for t in root.findall(f"{ns}text") if t.get("class") != "o"]
    assert labels == ["length (4)", "id (1)", "index (4)", "begin (4)", "length (4)"]
    wide = ET.fromstring(wire.layout_svg([("info_hash", 20), ("peer_id", 20)]))
    assert int(wide.get("height")) == 22 + 5 * wire.ROW_PX + 4  # 40 bytes, rows of 8


def test_layout_svg_draws_a_variable_tail_to_the_end_of_its_row():
    root = ET.fromstring(wire.layout_svg([("action", 4), ("id", 2), ("options", None)]))
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in root.findall(f"{ns}text") if t.get("class") != "o"]
    assert labels == ["action (4)", "id (2)", "options (…)"]
    assert int(root.findall(f"{ns}rect")[-1].get("width")) == 2 * wire.BYTE_PX


def test_gnutella_examples_are_whole_descriptors():
    # Gnutella 0.6 §2.2.1: a 23-byte header (payload type at byte 16, little-endian payload
    # length at 19..22), then the payload.
    gnutella = wire.first_examples("gnutella")
    for name, payload_type in (("ping", 0x00), ("pong", 0x01), ("query", 0x80)):
        data = gnutella[name][0].data
        assert data[16] == payload_type
        assert len(data) == 23 + int.from_bytes(data[19:23], "little")
