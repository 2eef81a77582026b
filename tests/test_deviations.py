"""One mechanism for lenient departures: Deviation records on the decoded value, read with
``deviations_of``; the former markers (``type="malformed"`` with an ``error`` field,
``_unconverted``) cannot come back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from construct import Container

from p2pkit.bencode import decode_lenient
from p2pkit.bittorrent.wire.extensions import EXTENSION_MESSAGES_LENIENT, decode_extended
from p2pkit.bittorrent.wire.messages import PeerMessageLenient
from p2pkit.deviations import DEVIATIONS, Deviation, deviations_of, with_deviations
from p2pkit.dht.krpc import decode_lenient as krpc_decode_lenient
from p2pkit.gnutella.descriptors import DescriptorLenient
from p2pkit.gnutella.handshake import HandshakeLenient

PACKAGE = Path(__file__).resolve().parents[1] / "p2pkit"
SOURCES = sorted(PACKAGE.rglob("*.py"))

D = Deviation(offset=3, rule="r/x", message="m", spec="s")


def test_deviations_of_reads_containers_and_results_and_moves_offsets():
    value = with_deviations(Container(a=1), [D])
    assert value == Container(a=1) and DEVIATIONS in value  # hidden from ==, not lost
    assert deviations_of(value) == [D]
    assert [d.offset for d in deviations_of(value, base=10)] == [13]
    assert deviations_of(decode_lenient(b"d1:bi1e1:ai1ee"))[0].rule == "bencode/dict/unsorted-keys"
    for nothing in (None, b"bytes", 5, Container(a=1), {"a": 1}):
        assert deviations_of(nothing) == []


def test_every_lenient_decoder_hands_its_deviations_back_the_same_way():
    """Each lenient decoder's value carries what it found; ``deviations_of`` reads them all."""
    unknown_id = PeerMessageLenient.parse(bytes.fromhex("0000000263ff"))
    unsorted = decode_extended("handshake", b"d1:v1:x1:mdee", strict=False)
    wrong_type = EXTENSION_MESSAGES_LENIENT["ut_pex"].parse(b"d5:addedi1ee")
    krpc = krpc_decode_lenient(b"d1:rd2:id20:abcdefghij01234567891:pi6881ee1:t2:aa1:y1:re")
    bad_pong = DescriptorLenient.parse(bytes(16) + bytes.fromhex("01010003000000ca1800"))
    unknown_payload = DescriptorLenient.parse(bytes(16) + bytes.fromhex("ee01000100000000"))
    handshake = HandshakeLenient.parse(b"GNUTELLA CONNECT/0.6\r\nA : b\r\n\r\n")
    found = {name: [d.rule for d in deviations_of(value)] for name, value in [
        ("unknown_id", unknown_id), ("unsorted", unsorted), ("wrong_type", wrong_type),
        ("krpc", krpc.message), ("bad_pong", bad_pong), ("unknown_payload", unknown_payload),
        ("handshake", handshake)]}
    assert found == {
        "unknown_id": ["bittorrent/message/unknown-id"],
        "unsorted": ["bencode/dict/unsorted-keys"],
        "wrong_type": ["bittorrent/ut_pex/wrong-type"],
        "krpc": ["krpc/unknown-key"],
        "bad_pong": ["gnutella/pong/payload"],
        "unknown_payload": ["gnutella/descriptor/unknown-payload-type"],
        "handshake": ["http/field/space-before-colon"],
    }
    assert deviations_of(krpc.message) == krpc.deviations
    # the values themselves hold no marker: names are the spec's (or "unknown"), no error text
    assert (bad_pong.type, unknown_payload.type, unknown_id.type) == ("pong", "unknown", "unknown")
    for value in (bad_pong, unknown_payload, unknown_id, wrong_type, unsorted):
        assert not {"error", "_unconverted"} & set(value)


#: The former markers, in code: a "malformed" message type, an error string in a decoded
#: value, the list of unconverted keys.
MARKERS = [
    re.compile(r"_unconverted|\bUNCONVERTED\b"),
    re.compile(r"""(type|kind)\s*(=|==|:)\s*["']malformed["']"""),
    re.compile(r"""["'](type|kind)["']\]?\s*(==|:)\s*["']malformed["']"""),
    re.compile(r"""==\s*["']malformed["']"""),
    re.compile(r"""Container\([^)]*\berror\s*="""),
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_lenient_marker_in_the_package(path):
    text = path.read_text(encoding="utf-8")
    for marker in MARKERS:
        hits = [line for line in text.splitlines() if marker.search(line)]
        assert not hits, f"{path.name}: a departure marker instead of a Deviation: {hits}"


#: The dissector modules: each reads what the lenient schemas report, with deviations_of.
DISSECTORS = ["bittorrent/dissect.py", "gnutella/dissect.py", "dht/dissect.py",
              "bittorrent/tracker/dissect.py", "bittorrent/tracker/dissect_http.py"]


@pytest.mark.parametrize("name", DISSECTORS)
def test_dissectors_read_deviations_one_way(name):
    text = (PACKAGE / name).read_text(encoding="utf-8")
    assert "deviations_of(" in text
    assert "_deviations" not in text.replace("deviations_of", "")
    assert ".get(UNCONVERTED" not in text and "decode_lenient(value.payload)" not in text


def test_the_hidden_field_is_written_only_through_with_deviations():
    for path in SOURCES:
        if path.name == "deviations.py":
            continue
        code = path.read_text(encoding="utf-8")
        assert not re.search(r"""\[["']_deviations["']\]\s*=""", code), path
