"""``p2pkit bencode``: text and JSON views of real torrents, strict deviations, bad input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.bencode import decode
from p2pkit.cli import main
from p2pkit.cli.bencode import render_text, to_json

TORRENTS = Path(__file__).parents[1] / "data" / "torrents"
BT05 = TORRENTS / "bt-05-libtorrent-v2-magnet.torrent"


def run(capsys, args, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_text_view_of_a_libtorrent_v2_torrent(capsys):
    status, out, err = run(capsys, ["bencode", str(BT05)])
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == 'created by: "p2pkit-lab (libtorrent 2.0.8.0)"'
    assert "    payload-v2.bin:" in lines
    assert '      "":' in lines  # BEP 52 file entry under the empty key
    assert "        length: 2097152" in lines
    assert "  meta version: 2" in lines
    # The 2048-byte piece layer is shortened unless --full is given.
    layer = next(line for line in lines if line.startswith("  0x"))
    assert layer.endswith("… 2048 bytes>")
    _, full, _ = run(capsys, ["bencode", "--full", str(BT05)])
    assert decode(BT05.read_bytes())[b"piece layers"].popitem()[1].hex() in full


def test_json_view_matches_the_decoded_value(capsys):
    status, out, _ = run(capsys, ["bencode", "--json", str(BT05)])
    assert status == 0
    doc = json.loads(out)
    value = decode(BT05.read_bytes())
    info = doc["value"]["info"]
    assert info["piece length"] == value[b"info"][b"piece length"]
    entry = info["file tree"]["payload-v2.bin"][""]
    assert entry["pieces root"] == {"hex": value[b"info"][b"file tree"][b"payload-v2.bin"][b""][
        b"pieces root"].hex()}
    (key,) = doc["value"]["piece layers"]
    assert key == "0x" + next(iter(value[b"piece layers"])).hex()
    assert "deviations" not in doc


def test_strict_lists_deviations_and_exits_1(capsys, monkeypatch):
    status, out, err = run(capsys, ["bencode", "--strict", "-"], b"d1:bi1e1:ai02ee", monkeypatch)
    assert status == 1
    assert out.splitlines() == ["b: 1", "a: 2"]
    assert "offset 7" in err and "bencode/dict/unsorted-keys" in err
    assert "offset 11" in err and "bencode/integer/leading-zero" in err
    status, out, _ = run(capsys, ["bencode", "--strict", "--json", "-"], b"d1:bi1e1:ai2ee",
                         monkeypatch)
    assert status == 1
    assert [d["offset"] for d in json.loads(out)["deviations"]] == [7]
    # Without --strict the same input is shown, with a note, and succeeds.
    status, _, err = run(capsys, ["bencode", "-"], b"d1:bi1e1:ai2ee", monkeypatch)
    assert status == 0 and err.startswith("note: offset 7")


@pytest.mark.parametrize(("data", "fragment"), [
    (b"i12", "offset 3"),
    (b"", "offset 0"),
    (b"l0:lede", "offset 7"),
    (b"x", "offset 0"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, data, fragment):
    status, out, err = run(capsys, ["bencode", "-"], data, monkeypatch)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("p2pkit: standard input: bencode, ") and fragment in err


def test_missing_file_is_exit_2(capsys, tmp_path):
    status, _, err = run(capsys, ["bencode", str(tmp_path / "nope")])
    assert status == 2 and err == f"p2pkit: {tmp_path / 'nope'}: No such file or directory\n"


def test_keys_that_are_not_printable_text_show_as_hex():
    text = render_text({b"a\nb": 1, b"\xff": 2, b"": 3})
    assert text.splitlines() == ["0x610a62: 1", "0xff: 2", '"": 3']
    assert to_json({b"a\nb": 1, b"\xff": [b"\xfe", b"\x00"]}) == {
        "a\nb": 1, "0xff": [{"hex": "fe"}, "\x00"]}


def _from_json(doc):
    """The inverse of ``to_json`` (for text keys)."""
    if isinstance(doc, str):
        return doc.encode("utf-8")
    if isinstance(doc, dict) and set(doc) == {"hex"} and isinstance(doc["hex"], str):
        return bytes.fromhex(doc["hex"])
    if isinstance(doc, dict):
        return {k.encode("utf-8"): _from_json(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_from_json(v) for v in doc]
    return doc


values = st.recursive(
    st.binary(max_size=8) | st.integers(-(10**20), 10**20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.from_regex(rb"[a-g]{1,4}", fullmatch=True), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(values)
def test_json_view_keeps_every_value(value):
    assert _from_json(json.loads(json.dumps(to_json(value)))) == value
    assert render_text(value)
