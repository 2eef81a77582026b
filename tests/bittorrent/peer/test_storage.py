"""Storage (BEP 3 pieces/files, BEP 47 padding, BEP 52 merkle checks): torrents made by
create_torrent from generated files and a real libtorrent v2 torrent whose content is rebuilt
from the captured ``piece`` messages. Expected pieces are cut from the files independently of
the piece map under test."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.bittorrent.peer import storage as storage_module
from p2pkit.bittorrent.peer.storage import Block, PieceMap, Storage, StorageError
from p2pkit.bittorrent.wire.create import create_from_contents, create_torrent
from p2pkit.bittorrent.wire.framer import MessageFramer
from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE, Metainfo
from p2pkit.errors import P2PKitError
from tests.pcap_payloads import tcp_streams

DATA = Path(__file__).parents[3] / "p2pkit" / "data"
PIECE = 2 * BLOCK_SIZE

#: Multi-file layout (sizes in bytes) with files crossing piece boundaries, a zero-length file,
#: a file of exactly one piece, one smaller than a block, and one of several pieces with a
#: short last piece.
MULTI = {
    "a.bin": PIECE + 5000,
    "empty": 0,
    "sub/b.bin": PIECE,
    "sub/c.bin": 700,
    "sub/deep/d.bin": 3 * PIECE + BLOCK_SIZE + 3,
    "z.bin": PIECE - 1,
}


def write_files(root: Path, sizes: dict[str, int], seed: int = 1) -> dict[tuple[str, ...], bytes]:
    rng = random.Random(seed)
    contents = {}
    for name, size in sizes.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size)
        path.write_bytes(data)
        contents[tuple(name.split("/"))] = data
    return contents


def expected_pieces(meta: Metainfo, contents: dict[tuple[str, ...], bytes]) -> list[bytes]:
    """The pieces cut straight from the content: v1 and hybrid from the files (and BEP 47 zero
    padding) laid end to end, v2 from each file on its own (BEP 52 alignment)."""
    def data(f):
        return bytes(f.length) if f.is_padding else contents[f.path if meta.multi_file
                                                             else next(iter(contents))]
    pl = meta.piece_length
    if meta.has_v1:
        stream = b"".join(data(f) for f in meta.files)
        return [stream[i:i + pl] for i in range(0, len(stream), pl)]
    return [data(f)[i:i + pl] for f in meta.files for i in range(0, f.length, pl)]


def make(tmp_path: Path, version: str, multi: bool, piece_length: int = PIECE):
    src = tmp_path / "src"
    if multi:
        contents = write_files(src / "t", MULTI)
        meta = Metainfo.parse(create_torrent(src / "t", version=version,
                                             piece_length=piece_length))
    else:
        contents = write_files(src, {"one.bin": 3 * PIECE + 100})
        meta = Metainfo.parse(create_torrent(src / "one.bin", version=version,
                                             piece_length=piece_length))
    return meta, contents, src


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


LAYOUTS = [(v, m) for v in ("v1", "v2", "hybrid") for m in (False, True)]


# --- reading, verifying, writing ---------------------------------------------------------------


@pytest.mark.parametrize(("version", "multi"), LAYOUTS)
def test_pieces_read_verify_and_write_back(tmp_path, version, multi):
    meta, contents, src = make(tmp_path, version, multi)
    pieces = expected_pieces(meta, contents)
    if version == "hybrid" and multi:
        assert any(f.is_padding for f in meta.files)
    with Storage(meta, src) as original:
        assert original.piece_count == len(pieces) == meta.piece_count
        for index, piece in enumerate(pieces):
            assert original.piece_length(index) == len(piece)
            assert original.read_piece(index) == piece
            assert original.read(index, 1, 3) == piece[1:4]
            assert original.verify(index, piece)
            bad = bytearray(piece)
            bad[-1] ^= 0x80
            assert not original.verify(index, bytes(bad))
            assert not original.verify(index, piece[:-1])
        assert list(original.check()) == [1] * len(pieces)

    out = tmp_path / "out"
    order = list(range(len(pieces)))
    random.Random(7).shuffle(order)
    with Storage(meta, out) as storage:
        assert list(storage.check()) == [0] * len(pieces)
        for index in order:
            storage.write(index, pieces[index])
        storage.flush()
        assert list(storage.check()) == [1] * len(pieces)
    base = out / meta.name
    for path, data in contents.items():
        written = base.joinpath(*path) if multi else base
        assert written.read_bytes() == data
    written_files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert len(written_files) == len(contents)  # padding files never reach the disk
    assert not any(".pad" in p.parts for p in written_files)


def test_v2_piece_must_match_its_place_in_the_piece_layer(tmp_path):
    meta, contents, src = make(tmp_path, "v2", True)
    pieces = expected_pieces(meta, contents)
    with Storage(meta, src) as storage:
        big = [i for i, s in enumerate(storage.spans(i)[0] for i in range(storage.piece_count))
               if s.file.path == ("sub", "deep", "d.bin")]
        assert len(big) == 4 and storage.piece_length(big[-1]) == BLOCK_SIZE + 3
        # The same bytes at another index of the same file fail: the layer hash is per index.
        assert storage.verify(big[1], pieces[big[1]])
        assert not storage.verify(big[2], pieces[big[1]])
        small = {storage.spans(i)[0].file.path: i for i in range(storage.piece_count)
                 if storage.spans(i)[0].file.length <= PIECE}
        assert storage.piece_length(small[("sub", "b.bin")]) == PIECE
        assert storage.piece_length(small[("sub", "c.bin")]) == 700
        assert storage.verify(small[("sub", "c.bin")], contents[("sub", "c.bin")])


def test_hybrid_checks_both_hashes(tmp_path):
    meta, contents, src = make(tmp_path, "hybrid", True)
    pieces = expected_pieces(meta, contents)
    last = len(pieces) - 1
    # Good v2 data with a wrong v1 hash, then good v1 data with a wrong v2 layer: both fail.
    wrong_v1 = dataclasses.replace(meta, pieces=(*meta.pieces[:-1], bytes(20)))
    root = meta.files[[f.path for f in meta.files].index(("sub", "deep", "d.bin"))].pieces_root
    d_piece = next(i for i in range(len(pieces))
                   if PieceMap(meta).spans(i)[0].file.pieces_root == root)
    layers = dict(meta.piece_layers)
    layers[root] = (bytes(32), *layers[root][1:])
    wrong_v2 = dataclasses.replace(meta, piece_layers=layers)
    with Storage(wrong_v1, src) as s1, Storage(wrong_v2, src) as s2:
        assert not s1.verify(last, pieces[last]) and s2.verify(last, pieces[last])
        assert s1.verify(d_piece, pieces[d_piece]) and not s2.verify(d_piece, pieces[d_piece])


def test_piece_layer_can_arrive_later(tmp_path):
    meta, contents, src = make(tmp_path, "v2", False)
    [root] = meta.piece_layers
    bare = dataclasses.replace(meta, piece_layers={})
    piece = expected_pieces(meta, contents)[0]
    layer = meta.piece_layers[root]
    with Storage(bare, src) as storage:
        with pytest.raises(StorageError, match="no piece layer"):
            storage.verify(0, piece)
        assert list(storage.check()) == [0] * len(layer)  # cannot be checked yet
        with pytest.raises(StorageError, match="does not hash"):
            storage.add_piece_layer(root, (bytes(32),) * len(layer))
        with pytest.raises(StorageError, match="4 hashes"):
            storage.add_piece_layer(root, layer[:-1])
        with pytest.raises(StorageError, match="no file"):
            storage.add_piece_layer(bytes(32), layer)
        storage.add_piece_layer(root, layer)
        assert storage.verify(0, piece)
        assert list(storage.check()) == [1] * len(layer)


def test_write_never_truncates_and_creates_empty_files(tmp_path):
    meta, contents, src = make(tmp_path, "v1", True)
    pieces = expected_pieces(meta, contents)
    out = tmp_path / "out"
    with Storage(meta, out) as storage:
        storage.write(0, pieces[0])
    assert (out / "t" / "empty").read_bytes() == b""
    with Storage(meta, out) as storage:
        storage.write(2, pieces[2])
        assert list(storage.check()[:3]) == [1, 0, 1]
        with pytest.raises(StorageError, match="not 1"):
            storage.write(1, b"x")


def test_executable_files_are_created_executable(tmp_path):
    meta = Metainfo.parse(create_from_contents("d", {"run": b"#!", "data": b"x"}))
    meta = dataclasses.replace(meta, files=(meta.files[0],
                                            dataclasses.replace(meta.files[1], attr="x")))
    with Storage(meta, tmp_path) as storage:
        storage.write(0, b"x#!")
    assert os.access(tmp_path / "d" / "run", os.X_OK)
    assert not os.access(tmp_path / "d" / "data", os.X_OK)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_many_files_keep_few_descriptors_open(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_module, "MAX_OPEN_FILES", 3)
    contents = {f"f{i:02}": bytes([i]) * 5000 for i in range(40)}
    meta = Metainfo.parse(create_from_contents("many", contents))
    stream = b"".join(contents[k] for k in sorted(contents))
    before = len(os.listdir("/proc/self/fd"))
    with Storage(meta, tmp_path) as storage:
        for index in range(storage.piece_count):
            storage.write(index, stream[index * meta.piece_length:][:meta.piece_length])
        assert len(os.listdir("/proc/self/fd")) - before <= 3
        storage.flush()
        assert all(storage.check())
    assert len(os.listdir("/proc/self/fd")) == before
    assert (tmp_path / "many" / "f39").read_bytes() == contents["f39"]


# --- resume ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_check_finds_exactly_the_damaged_and_missing_pieces(tmp_path, version):
    meta, contents, src = make(tmp_path, version, True)
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    pieces = expected_pieces(meta, contents)

    def pieces_of(path):
        """Indexes of the pieces holding bytes of ``path``, from the expected pieces."""
        storage = PieceMap(meta)
        return {i for i in range(len(pieces))
                if any(s.file.path == path for s in storage.spans(i))}

    # Byte 40000 of d.bin lies in exactly one piece: find it by content, not by the map.
    d = contents[("sub", "deep", "d.bin")]
    hit = [i for i, p in enumerate(pieces) if d[32768:40001] in p]
    assert len(hit) == 1
    flip(copy / "t" / "sub" / "deep" / "d.bin", 40000)
    (copy / "t" / "sub" / "c.bin").unlink()
    calls = []
    with Storage(meta, copy) as storage:
        have = storage.check(lambda done, total: calls.append((done, total)))
    bad = {i for i, ok in enumerate(have) if not ok}
    assert bad == {hit[0]} | pieces_of(("sub", "c.bin"))
    assert calls[-1] == (len(pieces), len(pieces)) and len(calls) == len(pieces)


def test_check_treats_a_short_file_as_missing_from_the_cut(tmp_path):
    meta, contents, src = make(tmp_path, "v2", False)
    path = src / "one.bin"
    os.truncate(path, PIECE + 10)  # a write torn in the middle of piece 1
    with Storage(meta, src) as storage:
        assert list(storage.check()) == [1, 0, 0, 0]
        with pytest.raises(StorageError, match="ends before"):
            storage.read(1, 0, 100)
        assert storage.read(1, 0, 10) == contents[("one.bin",)][PIECE:PIECE + 10]


def test_fast_resume_vouches_only_for_written_pieces_of_unchanged_files(tmp_path):
    meta, contents, src = make(tmp_path, "hybrid", True)
    pieces = expected_pieces(meta, contents)
    out, record = tmp_path / "out", tmp_path / "resume"
    with Storage(meta, out) as storage:
        assert storage.load_resume(record) is None  # no record yet
        for index in (0, 3, 4):
            storage.write(index, pieces[index])
        assert storage.verify(5, pieces[5])  # verified but not written: not vouched for
        storage.save_resume(record)
    expected = [int(i in (0, 3, 4)) for i in range(len(pieces))]
    with Storage(meta, out) as storage:
        assert list(storage.load_resume(record)) == expected
    with Storage(meta, out) as storage:
        # A record saved after a check vouches for what the check found.
        assert list(storage.check()) == expected
        storage.save_resume(record)
    assert list(Storage(meta, out).load_resume(record)) == expected
    # Any file changed since (here only its modification time) voids the record.
    a = out / "t" / "a.bin"
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    assert Storage(meta, out).load_resume(record) is None


def test_fast_resume_rejects_foreign_and_broken_records(tmp_path):
    meta, contents, src = make(tmp_path, "v1", True)
    # Same files, same piece count, another info-hash.
    other = Metainfo.parse(create_torrent(src / "t", piece_length=PIECE, private=True))
    record = tmp_path / "resume"
    with Storage(other, src) as storage:
        storage.check()
        storage.save_resume(record)
        assert storage.load_resume(record) is not None
    with Storage(meta, src) as storage:
        assert storage.load_resume(record) is None  # another torrent's record
        record.write_bytes(b"d5:piecesi3ee")
        assert storage.load_resume(record) is None
        record.write_bytes(b"not bencoding")
        assert storage.load_resume(record) is None
        assert not (tmp_path / "resume.tmp").exists()


# --- helpers for the session -------------------------------------------------------------------


def test_blocks_and_bytes_left_exclude_padding(tmp_path):
    meta, contents, src = make(tmp_path, "hybrid", True)
    storage = PieceMap(meta)
    total = sum(len(c) for c in contents.values())
    n = storage.piece_count
    assert storage.left([False] * n) == total and storage.have_bytes([True] * n) == total
    assert storage.left([True] * n) == 0
    with pytest.raises(StorageError):
        storage.left([True] * (n - 1))
    # c.bin (700 bytes) shares its piece with 32068 bytes of padding.
    c_piece = next(i for i in range(n) if storage.spans(i)[0].file.path == ("sub", "c.bin"))
    assert storage.content_length(c_piece) == 700
    assert storage.have_bytes([i == c_piece for i in range(n)]) == 700
    assert storage.blocks(c_piece) == [Block(0, BLOCK_SIZE), Block(BLOCK_SIZE, BLOCK_SIZE)]
    v2 = PieceMap(make(tmp_path / "v2", "v2", True)[0])
    assert [b for i in range(v2.piece_count) for b in v2.blocks(i) if b.length < BLOCK_SIZE] == [
        Block(0, 5000), Block(0, 700), Block(BLOCK_SIZE, 3), Block(BLOCK_SIZE, BLOCK_SIZE - 1)]


@pytest.mark.parametrize(("index", "begin", "length"), [
    (-1, 0, 1), (5, 0, 1), (0, -1, 2), (0, 0, PIECE + 1), (0, PIECE, 1), (3, 0, 101),
    (0, 5, -1)])
def test_out_of_range_raises_storage_error(tmp_path, index, begin, length):
    meta, contents, src = make(tmp_path, "v1", False)
    with Storage(meta, src) as storage:
        assert storage.piece_count == 4
        with pytest.raises(StorageError) as info:
            storage.read(index, begin, length)
        assert isinstance(info.value, P2PKitError)


def test_missing_file_read_is_storage_error(tmp_path):
    meta, _, _ = make(tmp_path, "v1", True)
    with Storage(meta, tmp_path / "nowhere") as storage, pytest.raises(StorageError):
        storage.read(0, 0, 10)


@pytest.mark.parametrize("change", [
    {"name": ".."}, {"name": ""}, {"name": "/etc"}, {"name": "a/b"},
    {"files_path": ("..", "x")}, {"files_path": ("ok", "")}, {"files_path": ("/abs",)}])
def test_unsafe_paths_are_rejected(tmp_path, change):
    meta = Metainfo.parse(create_from_contents("d", {"a": b"1", "b": b"2"}))
    if "files_path" in change:
        files = (dataclasses.replace(meta.files[0], path=change["files_path"]), *meta.files[1:])
        meta = dataclasses.replace(meta, files=files)
    else:
        meta = dataclasses.replace(meta, name=change["name"])
    with pytest.raises(StorageError, match="unsafe"):
        Storage(meta, tmp_path)


def test_inconsistent_piece_count_is_rejected():
    meta = Metainfo.parse(create_from_contents("d", bytes(40000), piece_length=BLOCK_SIZE))
    with pytest.raises(StorageError, match="do not cover"):
        PieceMap(dataclasses.replace(meta, pieces=meta.pieces[:2]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.sampled_from([0, 1, 700, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1,
                                       PIECE, PIECE + 3, 3 * PIECE - 5]), min_size=1, max_size=6),
       version=st.sampled_from(["v1", "v2", "hybrid"]))
def test_spans_tile_the_content_exactly(sizes, version):
    if not any(sizes):
        sizes = [*sizes, 1]
    contents = {f"f{i}": bytes(n) for i, n in enumerate(sizes)}
    meta = Metainfo.parse(create_from_contents("d", contents, version=version,
                                               piece_length=PIECE))
    pieces = PieceMap(meta)
    covered: dict[int, int] = {}  # file index -> bytes covered so far, in order
    for index in range(pieces.piece_count):
        at = content = 0
        for span in pieces.spans(index):
            content += 0 if span.file.is_padding else span.length
            assert span.piece_offset == at and span.length > 0
            assert span.offset == covered.get(span.file_index, 0)
            covered[span.file_index] = span.offset + span.length
            at += span.length
        assert at == pieces.piece_length(index) > 0
        assert content == pieces.content_length(index)
        assert at == PIECE or index == pieces.piece_count - 1 or version == "v2"
    assert covered == {i: f.length for i, f in enumerate(meta.files) if f.length}
    assert pieces.left([False] * pieces.piece_count) == sum(sizes)


# --- a real torrent: libtorrent 2.0.8, content from the captured piece messages ----------------


def captured_v2_content() -> dict[int, bytes]:
    """piece index -> bytes, from the ``piece`` messages of bt-05's seeder-to-leecher stream."""
    blocks: dict[int, dict[int, bytes]] = {}
    for stream in tcp_streams("bt-05-libtorrent-v2-magnet.pcap").values():
        for frame in MessageFramer(handshake=True).feed(stream):
            if getattr(frame.message, "type", None) == "piece":
                m = frame.message
                blocks.setdefault(m.index, {})[m.begin] = m.piece
    return {i: b"".join(b[k] for k in sorted(b)) for i, b in blocks.items()}


def test_libtorrent_v2_torrent_with_captured_content(tmp_path):
    meta = Metainfo.parse((DATA / "libtorrent-v2.torrent").read_bytes())
    pieces = captured_v2_content()
    if len(pieces) != meta.piece_count:
        pytest.skip("the capture does not hold the whole content")
    with Storage(meta, tmp_path) as storage:
        assert storage.piece_count == 64 and not storage.verify(0, pieces[1])
        for index in range(64):
            assert storage.verify(index, pieces[index])
            storage.write(index, pieces[index])
        assert list(storage.check()) == [1] * 64
    content = (tmp_path / "payload-v2.bin").read_bytes()
    assert content == b"".join(pieces[i] for i in range(64)) and len(content) == 2 * 1024 * 1024


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_torrents_made_by_libtorrent_check_and_rebuild(tmp_path, version):
    try:
        import libtorrent as lt
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("libtorrent (pip install libtorrent) is not installed")
    contents = write_files(tmp_path / "src" / "t", MULTI)
    flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}
    with warnings.catch_warnings():  # file_storage and add_files are deprecated in 2.x
        warnings.simplefilter("ignore", DeprecationWarning)
        fs = lt.file_storage()
        lt.add_files(fs, str(tmp_path / "src" / "t"))
        ct = lt.create_torrent(fs, PIECE, flags=flags[version])
    lt.set_piece_hashes(ct, str(tmp_path / "src"))
    meta = Metainfo.parse(lt.bencode(ct.generate()))
    assert meta.version == version
    assert any(f.is_padding for f in meta.files) == (version == "hybrid")
    with Storage(meta, tmp_path / "src") as original, Storage(meta, tmp_path / "out") as copy:
        assert list(original.check()) == [1] * original.piece_count
        for index in range(original.piece_count):
            copy.write(index, original.read_piece(index))
    for path, data in contents.items():
        assert (tmp_path / "out" / "t").joinpath(*path).read_bytes() == data
