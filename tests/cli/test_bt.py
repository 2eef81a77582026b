"""``p2pkit bt info`` and ``p2pkit bt create`` on libtorrent's torrents and on created ones."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

from p2pkit.bencode import decode, encode
from p2pkit.bittorrent.wire.magnet import MagnetLink
from p2pkit.bittorrent.wire.metainfo import Metainfo
from p2pkit.cli import main

ROOT = Path(__file__).parents[2]
TORRENTS = ROOT / "tests" / "data" / "torrents"
BT02 = TORRENTS / "bt-02-libtorrent-magnet-ut_metadata-pex.torrent"
BT05 = TORRENTS / "bt-05-libtorrent-v2-magnet.torrent"
# Recorded by the traffic README (tests/data/README.md), independent of p2pkit's code.
BT05_V2 = "53a4c27da212ea02bba649b6bc62c681e0ba1a49bb46cf5e3ff543eee19398a9"
BT02_V1 = "8e3f4515b630cdb09dfc315577611036fc7ac773"


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_readme_command_on_bundled_v2_torrent(capsys):
    # README: `p2pkit bt info p2pkit/data/libtorrent-v2.torrent`.
    status, out, err = run(capsys, "bt", "info", str(ROOT / "p2pkit/data/libtorrent-v2.torrent"))
    assert status == 0 and err == ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if not line.startswith(" "))
    assert fields["name"].strip() == "payload-v2.bin"
    assert fields["info-hash v2"].strip() == BT05_V2
    assert fields["info-hash v1"].strip() == "-"
    assert fields["pieces"].strip() == "64"
    assert fields["piece length"].strip().startswith("32768 ")
    assert "  2097152  payload-v2.bin" in out.splitlines()
    assert fields["magnet"].strip() == f"magnet:?xt=urn:btmh:1220{BT05_V2}&dn=payload-v2.bin"


def test_json_of_v2_torrent(capsys):
    status, out, _ = run(capsys, "bt", "info", "--json", str(BT05))
    assert status == 0
    doc = json.loads(out)
    assert doc["info_hash_v2"] == BT05_V2 and doc["info_hash_v1"] is None
    assert (doc["name"], doc["piece_length"], doc["pieces"]) == ("payload-v2.bin", 32768, 64)
    (f,) = doc["files"]
    root = decode(BT05.read_bytes())[b"info"][b"file tree"][b"payload-v2.bin"][b""]
    assert f["path"] == "payload-v2.bin" and f["length"] == root[b"length"]
    assert f["pieces_root"] == root[b"pieces root"].hex()
    assert MagnetLink.parse(doc["magnet"]).info_hash_v2.hex() == BT05_V2
    assert doc["trackers"] == [] and doc["web_seeds"] == []


def test_json_of_v1_torrent(capsys):
    status, out, _ = run(capsys, "bt", "info", "--json", str(BT02))
    doc = json.loads(out)
    assert status == 0 and doc["info_hash_v1"] == BT02_V1 and doc["info_hash_v2"] is None
    assert doc["magnet"] == f"magnet:?xt=urn:btih:{BT02_V1}&dn=payload-02.bin"
    assert doc["pieces"] == 64 and doc["piece_length"] == 32768
    # "info" is the last key of libtorrent's file: its value runs to the final "e".
    data = BT02.read_bytes()
    assert doc["metadata_size"] == len(data) - (data.index(b"4:info") + len(b"4:info")) - 1


def test_bad_torrent_is_one_line_naming_file_field_offset(capsys, tmp_path):
    bad = tmp_path / "bad.torrent"
    top = decode(BT02.read_bytes())
    top[b"info"][b"pieces"] = top[b"info"][b"pieces"][:-1]
    data = encode(top)
    bad.write_bytes(data)
    status, out, err = run(capsys, "bt", "info", str(bad))
    assert status == 2 and out == ""
    offset = data.index(b"1279:")
    assert err == (f"p2pkit: {bad}: metainfo, field info -> pieces, offset {offset}: "
                   "pieces is 1279 bytes, not a multiple of 20\n")
    truncated = tmp_path / "truncated.torrent"
    truncated.write_bytes(BT05.read_bytes()[:100])
    status, _, err = run(capsys, "bt", "info", "--json", str(truncated))
    assert status == 2 and err.count("\n") == 1 and "metainfo" in err and "offset" in err
    status, _, err = run(capsys, "bt", "info", str(tmp_path / "missing.torrent"))
    assert status == 2 and "No such file or directory" in err


def test_lenient_lists_deviations_and_exits_1(capsys, tmp_path):
    top = decode(BT02.read_bytes())
    top[b"info"][b"pieces"] += bytes(20)
    odd = tmp_path / "odd.torrent"
    odd.write_bytes(encode(top))
    status, out, _ = run(capsys, "bt", "info", "--lenient", "--json", str(odd))
    doc = json.loads(out)
    assert status == 1
    assert [d["rule"] for d in doc["deviations"]] == ["metainfo/info/piece-count"]
    assert doc["pieces"] == 65


def test_info_reads_standard_input(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BT02.read_bytes())))
    status, out, _ = run(capsys, "bt", "info", "--json", "-")
    assert status == 0 and json.loads(out)["info_hash_v1"] == BT02_V1


@pytest.mark.parametrize("flag", [None, "--v2", "--hybrid"])
def test_create_then_info(capsys, tmp_path, flag):
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "a.txt").write_bytes(b"a" * 20000)
    (content / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)
    out_file = tmp_path / "out.torrent"

    def args(output):
        return ["bt", "create", str(content), "-o", str(output), "--piece-length", "16384",
                "--tracker", "http://127.0.0.1:6969/announce",
                "--tracker", "udp://127.0.0.2:6969,udp://127.0.0.3:6969",
                "--web-seed", "http://127.0.0.1/seed/", *([flag] if flag else [])]

    status, out, _ = run(capsys, *args(out_file))
    assert status == 0
    meta = Metainfo.parse(out_file.read_bytes())
    assert meta.version == {None: "v1", "--v2": "v2", "--hybrid": "hybrid"}[flag]
    if meta.info_hash_v1:
        assert f"info-hash v1: {meta.info_hash_v1.hex()}" in out
        assert meta.info_hash_v1 == hashlib.sha1(meta.info_bytes).digest()
    if meta.info_hash_v2:
        assert f"info-hash v2: {meta.info_hash_v2.hex()}" in out
    status, out, _ = run(capsys, "bt", "info", "--json", str(out_file))
    doc = json.loads(out)
    assert doc["name"] == "content" and doc["piece_length"] == 16384
    assert [f["path"] for f in doc["files"] if not f["padding"]] == ["a.txt", "sub/b.bin"]
    assert doc["trackers"] == [["http://127.0.0.1:6969/announce"],
                               ["udp://127.0.0.2:6969", "udp://127.0.0.3:6969"]]
    assert doc["web_seeds"] == ["http://127.0.0.1/seed/"]
    assert doc["creation_date"] is None and doc["created_by"].startswith("p2pkit")
    # Same input, same bytes.
    again = tmp_path / "again.torrent"
    assert run(capsys, *args(again))[0] == 0
    assert again.read_bytes() == out_file.read_bytes()


def test_create_rejects_bad_piece_length(capsys, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    status, _, err = run(capsys, "bt", "create", str(tmp_path / "f"), "-o",
                         str(tmp_path / "o.torrent"), "--piece-length", "1000")
    assert status == 2 and "piece length 1000 is not a power of two" in err
    assert not (tmp_path / "o.torrent").exists()


def test_magnet_of_info_parses_back(capsys):
    _, out, _ = run(capsys, "bt", "info", "--json", str(BT05))
    magnet = json.loads(out)["magnet"]
    status, out, _ = run(capsys, "bt", "magnet", "--json", magnet + "&x.pe=127.0.0.2:6881&so=0")
    doc = json.loads(out)
    assert status == 0 and doc["info_hash_v2"] == BT05_V2 and doc["info_hash_v1"] is None
    assert doc["display_name"] == "payload-v2.bin" and doc["peers"] == ["127.0.0.2:6881"]
    assert doc["select_only"] == [[0, 0]]
    status, out, _ = run(capsys, "bt", "magnet", f"magnet:?xt=urn:btih:{BT02_V1}&so=1,3-5")
    lines = out.splitlines()
    assert status == 0 and f"info-hash v1:  {BT02_V1}" in lines and "select only:   1,3-5" in lines


def test_bad_magnet_is_exit_2(capsys):
    status, out, err = run(capsys, "bt", "magnet", "magnet:?xt=urn:btih:zz")
    assert status == 2 and out == ""
    assert err == ("p2pkit: magnet URI: magnet, field xt, offset 11: btih of 2 characters "
                   "(40 hex or 32 base32 expected)\n")
