"""Creating torrents (BEP 3, 52, 47): piece hashes checked against independent hashing, BEP 47
padding, determinism, and the info-hashes of libtorrent's own create_torrent for the same files."""

from __future__ import annotations

import hashlib
import os
import random
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.wire.create import (
    MAX_PIECE_LENGTH,
    choose_piece_length,
    create_from_contents,
    create_torrent,
)
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, Metainfo
from p2pkit.errors import BuildError
from tests.bittorrent.wire.test_metainfo import common


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


# --- creation ----------------------------------------------------------------------------------


def test_create_v1_pieces_are_sha1_of_the_concatenated_files():
    contents = {"b.txt": b"B" * 20000, "a/x.bin": os.urandom(30000), "c": b""}
    meta = Metainfo.parse(create_from_contents("dir", contents, piece_length=16384))
    assert [f.path for f in meta.files] == [("a", "x.bin"), ("b.txt",), ("c",)]
    stream = contents["a/x.bin"] + contents["b.txt"]
    assert meta.pieces == tuple(hashlib.sha1(stream[i:i + 16384]).digest()
                                for i in range(0, len(stream), 16384))
    assert meta.multi_file and meta.version == "v1" and meta.creation_date is None


def test_create_v2_roots_and_piece_layers():
    small = os.urandom(100)
    big = os.urandom(3 * BLOCK_SIZE + 7)
    meta = Metainfo.parse(create_from_contents("d", {"small": small, "big": big, "e": b""},
                                               version="v2", piece_length=2 * BLOCK_SIZE))
    by_path = {f.path: f for f in meta.files}
    assert by_path[("small",)].pieces_root == _sha256(small)
    assert by_path[("e",)].pieces_root is None
    leaves = [_sha256(big[i:i + BLOCK_SIZE]) for i in range(0, len(big), BLOCK_SIZE)]
    zero = bytes(32)
    layer = (_sha256(leaves[0] + leaves[1]), _sha256(leaves[2] + leaves[3]))
    assert meta.piece_layers[by_path[("big",)].pieces_root] == layer
    assert by_path[("big",)].pieces_root == _sha256(layer[0] + layer[1])
    assert leaves[3] != zero
    # BEP 52: "each non-empty file is aligned to a piece boundary".
    assert [f.offset % meta.piece_length for f in meta.files] == [0, 0, 0]
    assert meta.piece_count == 3


def test_create_hybrid_pads_every_file_to_a_piece_boundary():
    contents = {"a": b"a" * 1000, "b": b"b" * (BLOCK_SIZE + 1)}
    meta = Metainfo.parse(create_from_contents("d", contents, version="hybrid"))
    assert [(f.path, f.length, f.attr) for f in meta.files] == [
        (("a",), 1000, ""), ((".pad", str(BLOCK_SIZE - 1000)), BLOCK_SIZE - 1000, "p"),
        (("b",), BLOCK_SIZE + 1, ""), ((".pad", str(BLOCK_SIZE - 1)), BLOCK_SIZE - 1, "p")]
    stream = contents["a"] + bytes(BLOCK_SIZE - 1000) + contents["b"] + bytes(BLOCK_SIZE - 1)
    assert meta.pieces == tuple(hashlib.sha1(stream[i:i + BLOCK_SIZE]).digest()
                                for i in range(0, len(stream), BLOCK_SIZE))
    assert meta.total_length == 1000 + BLOCK_SIZE + 1 and meta.piece_count == 3
    assert all(f.pieces_root for f in meta.files if not f.is_padding)


def test_create_is_deterministic_and_records_options(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "z").write_bytes(b"z" * 5000)
    (tmp_path / "d" / "sub" / "y").write_bytes(b"y" * 40000)
    options = dict(version="hybrid", trackers=["http://t1/announce", ["udp://t2:1", "udp://t3:1"]],
                   web_seeds=["http://ws/"], comment="c", private=True)
    first = create_torrent(tmp_path / "d", **options)
    assert first == create_torrent(tmp_path / "d", **options)
    meta = Metainfo.parse(first)
    assert meta.name == "d" and meta.private and meta.comment == "c"
    assert meta.trackers == (("http://t1/announce",), ("udp://t2:1", "udp://t3:1"))
    assert meta.web_seeds == ("http://ws/",) and meta.creation_date is None
    dated = Metainfo.parse(create_torrent(tmp_path / "d", creation_date=1234))
    assert dated.creation_date == 1234
    single = Metainfo.parse(create_torrent(tmp_path / "d" / "z", version="v2", name="renamed"))
    assert single.name == "renamed" and single.files[0].path == ("renamed",)
    assert not single.multi_file


def test_choose_piece_length():
    assert choose_piece_length(0) == BLOCK_SIZE
    assert choose_piece_length(2048 * BLOCK_SIZE) == BLOCK_SIZE
    assert choose_piece_length(2048 * BLOCK_SIZE + 1) == 2 * BLOCK_SIZE
    assert choose_piece_length(10**15) == MAX_PIECE_LENGTH


@pytest.mark.parametrize(("args", "options", "fragment"), [
    (("x", b"1"), {"piece_length": 1000}, "power of two"),
    (("x", b"1"), {"version": "v3"}, "unknown torrent version"),
    (("x", {}), {}, "no files"),
    (("x", {"../a": b"1"}), {}, "unsafe path"),
    (("x", {"a": b"1", "a/b": b"2"}), {}, "a is both a file and a directory"),
    (("x", {"a/b": b"1", ("a", "b"): b"2"}), {}, "same path"),
])
def test_create_rejects_bad_options(args, options, fragment):
    with pytest.raises(BuildError, match=fragment):
        create_from_contents(*args, **options)


def test_create_missing_path_is_build_error(tmp_path):
    with pytest.raises(BuildError, match="No such file"):
        create_torrent(tmp_path / "missing")


# --- cross-check with libtorrent (the wheel on PyPI) --------------------------------------------


def _libtorrent():
    try:
        import libtorrent
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("libtorrent (pip install libtorrent) is not installed")
    return libtorrent


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
@pytest.mark.parametrize("piece_length", [16384, 65536])
def test_info_hashes_equal_libtorrent_create_torrent(tmp_path, version, piece_length):
    lt = _libtorrent()
    root = tmp_path / "content"
    (root / "sub").mkdir(parents=True)
    rng = random.Random(piece_length)
    sizes = {"a.bin": 40000, "c.txt": 5, "empty": 0, "sub/b.bin": 70000,
             "sub/exact": piece_length}
    for rel, size in sizes.items():
        (root / rel).write_bytes(rng.randbytes(size))
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}
    for target in (root, root / "sub" / "b.bin"):
        mine = Metainfo.parse(create_torrent(target, version=version, piece_length=piece_length))
        fs = lt.file_storage()
        for f in mine.files:
            if not f.is_padding:
                rel = "/".join(f.path)
                fs.add_file(f"{target.name}/{rel}" if mine.multi_file else rel, f.length)
        with warnings.catch_warnings():  # file_storage constructors are deprecated in 2.x
            warnings.simplefilter("ignore", DeprecationWarning)
            ct = lt.create_torrent(fs, piece_length, flags=flags[version])
        lt.set_piece_hashes(ct, str(target.parent))
        hashes = lt.torrent_info(ct.generate()).info_hashes()
        theirs = (bytes(hashes.v1.to_bytes()) if hashes.has_v1() else None,
                  bytes(hashes.v2.to_bytes()) if hashes.has_v2() else None)
        assert (mine.info_hash_v1, mine.info_hash_v2) == theirs


# --- properties --------------------------------------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

component = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
                    min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@FAST
@given(st.dictionaries(st.lists(component, min_size=1, max_size=3).map(tuple),
                       st.binary(max_size=3 * BLOCK_SIZE), min_size=1, max_size=4),
       st.sampled_from(["v1", "v2", "hybrid"]),
       st.sampled_from([BLOCK_SIZE, 2 * BLOCK_SIZE]))
def test_created_torrents_round_trip(contents, version, piece_length):
    paths = list(contents)
    if any(a != b and b[:len(a)] == a for a in paths for b in paths):
        with pytest.raises(BuildError, match="both a file and a directory"):
            create_from_contents("root", contents, version=version, piece_length=piece_length)
        return
    data = create_from_contents("root", contents, version=version, piece_length=piece_length)
    meta = common(data, version=version, piece_length=piece_length, name="root")
    real = [f for f in meta.files if not f.is_padding]
    assert {f.path: f.length for f in real} == {p: len(b) for p, b in contents.items()}
    assert meta.total_length == sum(map(len, contents.values()))
