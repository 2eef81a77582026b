"""Metainfo (BEP 3, 12, 19, 47, 52): libtorrent's torrents and their captured swarms, merkle
trees, validation errors with field paths and offsets, lenient deviations, and fuzzing."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pkit.bencode import decode, encode
from p2pkit.bittorrent.wire.create import create_from_contents
from p2pkit.bittorrent.wire.metainfo import (
    BLOCK_SIZE,
    MAX_DEVIATIONS,
    FileEntry,
    Metainfo,
    locate,
    merkle_root,
    pad_hash,
    piece_layer_root,
)
from p2pkit.errors import ParseError
from tests.pcap_payloads import tcp_streams

TORRENTS = Path(__file__).parents[2] / "data" / "torrents"
BUNDLED = Path(__file__).parents[3] / "p2pkit" / "data"
BT02 = (TORRENTS / "bt-02-libtorrent-magnet-ut_metadata-pex.torrent").read_bytes()
BT04 = (TORRENTS / "bt-04-libtorrent-utp-only.torrent").read_bytes()
BT05 = (TORRENTS / "bt-05-libtorrent-v2-magnet.torrent").read_bytes()


def common(data: bytes, **expected) -> Metainfo:
    """Parse strictly and leniently, check the info-hashes over the exact info bytes, the bare
    info dictionary (BEP 9 metadata) and every expected attribute."""
    meta = Metainfo.parse(data)
    start = data.index(b"4:info") + len(b"4:info")
    assert meta.info_bytes == data[start:start + len(meta.info_bytes)]
    assert decode(meta.info_bytes) == decode(data)[b"info"]
    if meta.has_v1:
        assert meta.info_hash_v1 == hashlib.sha1(meta.info_bytes).digest()
    if meta.has_v2:
        assert meta.info_hash_v2 == hashlib.sha256(meta.info_bytes).digest()
    lenient = Metainfo.parse_lenient(data)
    assert lenient.deviations == ()
    assert lenient.metainfo == meta
    bare = Metainfo.parse_info(meta.info_bytes)
    assert (bare.files, bare.pieces, bare.info_hash_v1, bare.info_hash_v2) == (
        meta.files, meta.pieces, meta.info_hash_v1, meta.info_hash_v2)
    for key, value in expected.items():
        assert getattr(meta, key) == value, key
    return meta


# --- libtorrent 2.0.8's torrents (tests/data/README.md) ---------------------------------------


def test_bt02_v1_single_file():
    # Values from the traffic README: "Info-hash v1 8e3f45…, 64 x 32 KiB pieces".
    meta = common(BT02, version="v1", name="payload-02.bin", piece_length=32 * 1024,
                  piece_count=64, total_length=2 * 1024 * 1024, multi_file=False,
                  info_hash_v2=None, created_by="p2pkit-lab (libtorrent 2.0.8.0)")
    assert meta.info_hash_v1.hex() == "8e3f4515b630cdb09dfc315577611036fc7ac773"
    assert meta.files == (FileEntry(path=("payload-02.bin",), length=2097152, offset=0),)
    assert meta.trackers == () and meta.web_seeds == ()


def test_bt04_v1_single_file():
    # "2 MiB in 32 x 64 KiB pieces".
    common(BT04, version="v1", piece_length=64 * 1024, piece_count=32,
           total_length=2 * 1024 * 1024)


def test_bt05_v2_single_file():
    meta = common(BT05, version="v2", meta_version=2, name="payload-v2.bin", piece_count=64,
                  piece_length=32 * 1024, info_hash_v1=None)
    assert meta.info_hash_v2.hex() == (
        "53a4c27da212ea02bba649b6bc62c681e0ba1a49bb46cf5e3ff543eee19398a9")
    assert meta.info_hash == meta.info_hash_v2[:20] == meta.info_hash_v2_truncated
    (f,) = meta.files
    assert f.length == 2 * 1024 * 1024 and f.pieces_root is not None
    layer = meta.piece_layers[f.pieces_root]
    assert len(layer) == 64
    assert piece_layer_root(layer, meta.piece_length) == f.pieces_root


def test_bt05_captured_traffic_agrees_with_the_torrent():
    """The libtorrent peers sent this very info dictionary (ut_metadata), its truncated v2
    info-hash (handshake) and every piece-layer hash (BEP 52 ``hashes``) over the wire."""
    wire = b"".join(tcp_streams("bt-05-libtorrent-v2-magnet.pcap").values())
    meta = Metainfo.parse(BT05)
    assert meta.info_bytes in wire
    assert meta.info_hash_v2[:20] in wire
    (layer,) = meta.piece_layers.values()
    assert all(h in wire for h in layer)


def test_bt02_captured_metadata_is_the_info_dictionary():
    wire = b"".join(tcp_streams("bt-02-libtorrent-magnet-ut_metadata-pex.pcap").values())
    meta = Metainfo.parse(BT02)
    assert meta.info_bytes in wire and meta.info_hash_v1 in wire


@pytest.mark.parametrize(("bundled", "original"), [
    ("libtorrent-v2.torrent", BT05),
    ("libtorrent-magnet-pex.torrent", BT02),
    ("libtorrent-utp.torrent", BT04),
])
def test_bundled_data_is_the_recorded_torrents(bundled, original):
    assert (BUNDLED / bundled).read_bytes() == original
    assert "libtorrent 2.0.8" in (BUNDLED / "README.md").read_text()


# --- merkle trees (BEP 52 §pieces root) --------------------------------------------------------


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def test_merkle_root_pads_leaves_with_zero_hashes():
    a, b, c = _sha256(b"a"), _sha256(b"b"), _sha256(b"c")
    zero = bytes(32)
    assert merkle_root([a, b, c]) == _sha256(_sha256(a + b) + _sha256(c + zero))
    assert merkle_root([a], width=4) == _sha256(_sha256(a + zero) + _sha256(zero + zero))
    assert pad_hash(2) == _sha256(_sha256(zero + zero) * 2)


def test_piece_layer_root_equals_root_over_blocks():
    blocks = [bytes([i]) * BLOCK_SIZE for i in range(5)]
    leaves = [_sha256(b) for b in blocks]
    piece_length = 2 * BLOCK_SIZE
    layer = [merkle_root(leaves[i:i + 2], width=2) for i in range(0, 5, 2)]
    assert piece_layer_root(layer, piece_length) == merkle_root(leaves)


# --- validation: strict errors name field and offset; lenient lists deviations --------------


def _v1(info_extra=None, top_extra=None, **info):
    base = {"name": "x", "piece length": 16384, "length": 5, "pieces": bytes(20)}
    base.update(info)
    base.update(info_extra or {})
    top = {"info": {k: v for k, v in base.items() if v is not None}}
    top.update(top_extra or {})
    return encode(top)


def _multi(paths, **info):
    files = [{"length": 1, "path": p} for p in paths]
    return _v1(length=None, files=files, **info)


def _v2(length=2 * BLOCK_SIZE, piece_length=BLOCK_SIZE, layer=None, **info):
    blocks = [_sha256(bytes(min(BLOCK_SIZE, length - i))) for i in range(0, length, BLOCK_SIZE)]
    root = merkle_root(blocks)
    base = {"name": "f", "piece length": piece_length, "meta version": 2,
            "file tree": {"f": {"": {"length": length, "pieces root": root}}}}
    base.update(info)
    top = {"info": base}
    if length > piece_length:
        top["piece layers"] = {root: b"".join(blocks) if layer is None else layer}
    return encode(top)


BAD = [
    # (data, field path, the bytes the offset must point at, reason fragment, lenient rule)
    (b"li1ee", "", b"li1ee", "must be a dictionary", None),
    (encode({"announce": "x"}), "", b"d8:announce", "missing required key 'info'", None),
    (encode({"info": [1]}), "info", b"li1ee", "must be a dictionary", None),
    (_v1(pieces=bytes(21)), "info -> pieces", b"21:", "not a multiple of 20", None),
    (_v1(pieces=bytes(40)), "info -> pieces", b"40:", "2 piece hashes for 5 bytes",
     "metainfo/info/piece-count"),
    (_v1(**{"piece length": 0}), "info -> piece length", b"i0e", "not positive", None),
    (_v1(length=-1), "info -> length", b"i-1e", "negative", None),
    (_multi([["..", "etc"]]), "info -> files[0] -> path[0]", b"2:..", "unsafe path component",
     "metainfo/path/unsafe"),
    (_multi([["/etc", "passwd"]]), "info -> files[0] -> path[0]", b"4:/etc", "separator",
     "metainfo/path/unsafe"),
    (_multi([["a", ""]]), "info -> files[0] -> path[1]", b"0:e", "unsafe path component",
     "metainfo/path/unsafe"),
    (_multi([[]]), "info -> files[0] -> path", b"lee", "path is an empty list",
     "metainfo/path/empty"),
    (_v1(name=b"\xff"), "info -> name", b"1:\xff", "UTF-8", "metainfo/text/not-utf-8"),
    (_v2(**{"piece length": 3 * BLOCK_SIZE}), "info -> piece length", b"i49152e",
     "power of two", None),
    (_v2(**{"meta version": 3}), "info -> meta version", b"i3e", "not supported", None),
    (_v2(length=3 * BLOCK_SIZE, layer=bytes(96)), "piece layers -> 0x", b"96:",
     "does not hash to its pieces root", "metainfo/piece-layers/root-mismatch"),
    (_v2(length=3 * BLOCK_SIZE, layer=bytes(32)), "piece layers -> 0x", b"32:",
     "needs 3 hashes", None),
    (encode({"info": {"name": "f", "piece length": 16384, "meta version": 2,
                      "file tree": {"": {"length": 1}}}}),
     "info -> file tree -> ", b"d6:length", "root must not be a file", None),
    (encode({"info": {"name": "f", "piece length": 16384, "meta version": 2,
                      "file tree": {"f": {"": {"length": 1}}}}}),
     "info -> file tree -> f -> ", b"d6:length", "missing required key 'pieces root'", None),
    (encode({"info": {"name": "f", "piece length": 16384, "meta version": 2,
                      "file tree": {"..": {"": {"length": 0}}}}}),
     "info -> file tree -> ..", b"d0:d6:length", "unsafe", "metainfo/path/unsafe"),
]


@pytest.mark.parametrize(("data", "path", "at", "reason", "rule"), BAD)
def test_invalid_metainfo_names_field_and_offset(data, path, at, reason, rule):
    with pytest.raises(ParseError) as info:
        Metainfo.parse(data)
    err = info.value
    assert err.protocol == "metainfo"
    assert err.path.startswith(path) if path.endswith("0x") else err.path == path
    assert reason in err.reason
    assert data[err.offset:].startswith(at)
    if rule is None:
        with pytest.raises(ParseError):
            Metainfo.parse_lenient(data)
    else:
        result = Metainfo.parse_lenient(data)
        (deviation,) = [d for d in result.deviations if d.rule == rule]
        assert deviation.offset == err.offset and deviation.level == "MUST"


def test_lenient_reports_non_canonical_info_and_hashes_its_exact_bytes():
    # An info dictionary with unsorted keys: strict bencoding refuses it; lenient keeps the
    # bytes as found, and the info-hash is over those bytes, not over a re-encoding (BEP 52).
    info = b"d12:piece lengthi16384e6:lengthi5e4:name1:x6:pieces20:" + bytes(20) + b"e"
    data = b"d4:info" + info + b"e"
    with pytest.raises(ParseError) as err:
        Metainfo.parse(data)
    assert err.value.protocol == "metainfo" and err.value.offset == data.index(b"6:length")
    result = Metainfo.parse_lenient(data)
    assert [d.rule for d in result.deviations] == ["bencode/dict/unsorted-keys"]
    assert result.metainfo.info_hash_v1 == hashlib.sha1(info).digest()
    assert result.metainfo.info_hash_v1 != hashlib.sha1(encode(decode(info, strict=False))).digest()


def test_missing_piece_layers_and_should_level_notes():
    data = _v2(length=3 * BLOCK_SIZE)
    top = decode(data)
    del top[b"piece layers"]
    with pytest.raises(ParseError, match="piece layers are missing"):
        Metainfo.parse(encode(top))
    # A bare info dictionary (BEP 9 metadata) needs no piece layers.
    assert Metainfo.parse_info(encode(top[b"info"])).files[0].length == 3 * BLOCK_SIZE
    # A private flag of 2 is a SHOULD-level note: strict parsing accepts it.
    odd = _v1(private=2)
    assert Metainfo.parse(odd).private
    assert [d.level for d in Metainfo.parse_lenient(odd).deviations] == ["SHOULD"]


def test_trackers_web_seeds_and_optional_fields():
    data = _v1(top_extra={
        "announce": "http://a/announce",
        "announce-list": [["http://a/announce", "udp://b:1"], ["http://c/announce"]],
        "url-list": "http://seed/",
        "creation date": 1700000000,
        "comment": "hi",
    }, private=1)
    meta = common(data, announce="http://a/announce", web_seeds=("http://seed/",),
                  creation_date=1700000000, comment="hi", private=True)
    assert meta.trackers == (("http://a/announce", "udp://b:1"), ("http://c/announce",))
    only_announce = common(_v1(top_extra={"announce": "http://a/"}))
    assert only_announce.trackers == (("http://a/",),)


def test_locate_steps_into_lists_and_dicts():
    data = _multi([["a"], ["b", "c"]])
    at = locate(data, [b"info", b"files", 1, b"path", 1])
    assert data[at:].startswith(b"1:c")


def test_hybrid_files_must_match_v1_files():
    data = create_from_contents("d", {"a": b"x" * 100, "b": b"y"}, version="hybrid")
    top = decode(data)
    top[b"info"][b"files"][0][b"path"] = [b"z"]
    with pytest.raises(ParseError) as err:
        Metainfo.parse(encode(top))
    assert err.value.path == "info -> files[0]" and "differs from v2" in err.value.reason


def test_lenient_lists_at_most_max_deviations():
    files = [{"length": 0, "path": [".."]} for _ in range(MAX_DEVIATIONS + 100)]
    data = encode({"info": {"name": "x", "piece length": BLOCK_SIZE, "pieces": b"",
                            "files": files}})
    deviations = Metainfo.parse_lenient(data).deviations
    assert len(deviations) == MAX_DEVIATIONS + 1
    assert deviations[-1].rule == "metainfo/deviations/truncated"
    assert deviations[-1].message == "100 more deviations not listed"
    assert data[deviations[-2].offset:].startswith(b"2:..")


def test_errors_from_the_codec_are_metainfo_errors():
    # Strict decoding refuses an integer key; lenient decoding reports it and goes on.
    data = b"di1e1:x4:infod6:lengthi0e4:name1:x12:piece lengthi16384e6:pieces0:ee"
    with pytest.raises(ParseError) as err:
        Metainfo.parse(data)
    assert err.value.protocol == "metainfo" and err.value.offset == 1
    parsed = Metainfo.parse_lenient(data)
    assert "bencode/dict/non-string-key" in {d.rule for d in parsed.deviations}
    assert parsed.metainfo.name == "x"


def test_directory_name_must_be_safe_too():
    with pytest.raises(ParseError) as err:
        Metainfo.parse(_multi([["a"]], name=".."))
    assert err.value.path == "info -> name"


def test_metainfo_values_are_frozen_and_hashable():
    meta = Metainfo.parse(BT05)
    assert hash(meta) == hash(Metainfo.parse(BT05))
    with pytest.raises(AttributeError):
        meta.name = "other"  # type: ignore[misc]


def test_v2_symlinks_and_attributes():
    root = _sha256(b"x")
    data = encode({"info": {"name": "d", "piece length": BLOCK_SIZE, "meta version": 2,
                            "file tree": {"f": {"": {"length": 1, "pieces root": root,
                                                     "attr": "x"}},
                                          "l": {"": {"length": 0, "attr": "l",
                                                     "symlink path": ["f"]}}}}})
    meta = common(data, multi_file=True)
    assert [(f.path, f.attr, f.symlink_path) for f in meta.files] == [
        (("f",), "x", None), (("l",), "l", ("f",))]


# --- properties --------------------------------------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(data):
    for parse in (Metainfo.parse, Metainfo.parse_lenient, Metainfo.parse_info):
        try:
            parse(data)
        except ParseError:
            pass


@FAST
@given(st.sampled_from([BT02, BT05, _v2(length=3 * BLOCK_SIZE),
                        create_from_contents("d", {"a": b"1" * 20000, "b/c": b"2"},
                                             version="hybrid")]),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, 10**6))
def test_mutated_torrents_raise_only_parse_error(data, edits, cut):
    mutated = bytearray(data)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    mutated = bytes(mutated[:max(1, len(mutated) - cut % 50)]) if cut % 3 == 0 else bytes(mutated)
    for parse in (Metainfo.parse, Metainfo.parse_lenient):
        try:
            parse(mutated)
        except ParseError as e:
            assert e.offset is None or 0 <= e.offset <= len(mutated)


def _value_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _value_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _value_paths(child, (*prefix, i))


STRUCTURES = [
    decode(create_from_contents("d", {"a": b"1" * 40000, "b/c": b"2", "e": b""}, version=v,
                                piece_length=BLOCK_SIZE, trackers=["http://a", ["u", "v"]],
                                web_seeds=["w"]))
    for v in ("v1", "v2", "hybrid")
]
replacement = st.one_of(
    st.sampled_from([0, 1, 2, -1, BLOCK_SIZE, 3 * BLOCK_SIZE, 2**70]),
    st.binary(max_size=40),
    st.sampled_from([bytes(20), bytes(32), bytes(64), b"p", b"..", b"", b"/x", b"\xff"]),
    st.builds(list), st.builds(dict), st.builds(lambda: [b"a"]),
    st.builds(lambda: {b"": {b"length": 1}}),
)


@FAST
@given(st.sampled_from(range(len(STRUCTURES))),
       st.lists(st.tuples(st.integers(0, 10**6), replacement, st.booleans()), min_size=1,
                max_size=3))
def test_structurally_mutated_torrents_raise_only_parse_error(which, edits):
    """Valid torrents with values replaced or keys deleted at random places: every outcome is a
    Metainfo or a ParseError whose offset lies inside the input."""
    value = copy.deepcopy(STRUCTURES[which])
    for n, new, delete in edits:
        paths = list(_value_paths(value))[1:]
        path = paths[n % len(paths)]
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    data = encode(value)
    for parse in (Metainfo.parse, Metainfo.parse_lenient):
        try:
            parse(data)
        except ParseError as e:
            assert e.offset is not None and 0 <= e.offset < len(data)


# ---- lenient parity: the rules the former reader (_Reader) reported on the same inputs -------

def _v1_dict(**info):
    base = {"name": "x", "piece length": 16384, "length": 5, "pieces": bytes(20)}
    base.update(info)
    return {"info": {k: v for k, v in base.items() if v is not None}}


PARITY_INPUTS = [
    encode(_v1_dict(pieces=bytes(40))),
    encode(_v1_dict(name=b"\xff")),
    encode(_v1_dict(length=None, files=[{"length": 1, "path": [".."]},
                                        {"length": 1, "path": []}])),
    encode(_v1_dict(private=2)),
    encode(_v1_dict(length=None, files=[])),
    encode(_v1_dict(files=[{"length": 5, "path": ["a"]}])),
    encode({**_v1_dict(), "announce-list": [[b"http://a"], b"x", [1, b"udp://b"]], "url-list": 3}),
    encode({**_v1_dict(), "url-list": [b"http://w", 1], "announce": 5, "comment": b"\xfe"}),
    encode({**_v1_dict(name=None)}),
    encode({**_v1_dict(attr=5, sha1=7)}),
    b"d4:infod12:piece lengthi16384e6:lengthi5e4:name1:x6:pieces20:" + bytes(20) + b"ee",
    b"di1e1:x4:infod6:lengthi0e4:name1:x12:piece lengthi16384e6:pieces0:ee",
    b"d4:infod6:lengthi05e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"ee",
    encode({"info": {"name": "f", "piece length": 16384, "meta version": 2,
                     "file tree": {"..": {"": {"length": 0}}, "d": {},
                                   b"\xff": {"": {"length": 0}}}}}),
]
#: (rule, offset, level) per input, as recorded from the former reader (order aside: the
#: declarations report in key order).
PARITY_EXPECTED = [
    [('metainfo/info/piece-count', 58, 'MUST')],
    [('metainfo/text/not-utf-8', 25, 'MUST')],
    [('metainfo/path/unsafe', 35, 'MUST'), ('metainfo/path/empty', 59, 'MUST')],
    [('metainfo/info/private-value', 90, 'SHOULD')],
    [('metainfo/info/files-empty', 15, 'MUST'), ('metainfo/info/piece-count', 56, 'MUST')],
    [('metainfo/info/length-and-files', 7, 'MUST')],
    [('metainfo/announce-list/tier', 30, 'MUST'), ('metainfo/announce-list/url', 34, 'MUST'), ('metainfo/type', 139, 'MUST')],
    [('metainfo/type', 11, 'MUST'), ('metainfo/url-list/url', 128, 'MUST'), ('metainfo/text/not-utf-8', 23, 'MUST')],
    [('metainfo/info/name-missing', 7, 'MUST')],
    [('metainfo/type', 14, 'MUST'), ('metainfo/type', 96, 'MUST')],
    [('bencode/dict/unsorted-keys', 30, 'MUST')],
    [('bencode/dict/non-string-key', 1, 'MUST')],
    [('bencode/integer/leading-zero', 17, 'MUST')],
    [('metainfo/path/unsafe', 24, 'MUST'), ('metainfo/file-tree/empty-directory', 44, 'SHOULD'), ('metainfo/text/not-utf-8', 49, 'SHOULD')],
]


@pytest.mark.parametrize("case", range(len(PARITY_INPUTS)))
def test_lenient_reports_what_the_former_reader_reported(case):
    found = Metainfo.parse_lenient(PARITY_INPUTS[case]).deviations
    assert sorted((d.rule, d.offset, d.level) for d in found) == sorted(PARITY_EXPECTED[case])
