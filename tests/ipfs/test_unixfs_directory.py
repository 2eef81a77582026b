"""UnixFS directories and HAMT shards: trees imported and read back, shard structure on real
blocks, hostile DAGs refused (root CIDs against js ipfs-unixfs-importer are checked in
tests/interop/test_unixfs_import_agreement.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LocalProtocolError, ParseError
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.dag_pb import PBNode, decode_node
from p2pkit.ipfs.murmur3 import murmur3_x64_64
from p2pkit.ipfs.unixfs import UnixfsData
from p2pkit.ipfs.unixfs_directory import (
    export_to_directory,
    import_tree,
    walk,
)
from p2pkit.ipfs.unixfs_exporter import export
from p2pkit.ipfs.unixfs_importer import IMPORTER_DEFAULT, UNIXFS_V0_2015, UNIXFS_V1_2025

SMALL = replace(IMPORTER_DEFAULT, shard_threshold=200)


def _files(root, blocks):
    return {e.path: (None if e.directory else b"".join(export(e.cid, blocks.__getitem__)))
            for e in walk(root, blocks.__getitem__)}


def test_flat_directory_layout():
    blocks: dict = {}
    root = import_tree({"b": b"2", "a": b"1", "sub": {"c": b"3"}}, UNIXFS_V0_2015, blocks=blocks)
    node = decode_node(blocks[root])
    assert UnixfsData.parse(node.Data).Type == "Directory"
    assert [link.Name for link in node.Links] == ["a", "b", "sub"]  # sorted by name
    # Tsize: the whole DAG under each link
    sub = Cid.from_bytes(node.Links[2].Hash)
    assert node.Links[2].Tsize == len(blocks[sub]) + decode_node(blocks[sub]).Links[0].Tsize
    assert _files(root, blocks) == {"a": b"1", "b": b"2", "sub": None, "sub/c": b"3"}


def test_hamt_shard_layout():
    names = [f"entry-{i}" for i in range(600)]
    blocks: dict = {}
    root = import_tree({n: n.encode() for n in names}, SMALL, blocks=blocks)
    node = decode_node(blocks[root])
    data = UnixfsData.parse(node.Data)
    assert (data.Type, data.fanout, data.hashType) == ("HAMTShard", 256, 0x22)
    slots = [int(link.Name[:2], 16) for link in node.Links]
    assert slots == sorted(slots)
    assert int.from_bytes(data.Data, "big") == sum(1 << s for s in slots)
    # an entry sits in the slot of the first byte of its name's hash; a bare prefix is a
    # sub-shard, placed by the second byte
    for link in node.Links:
        if len(link.Name) > 2:
            assert murmur3_x64_64(link.Name[2:].encode())[0] == int(link.Name[:2], 16)
    sub_links = [link for link in node.Links if len(link.Name) == 2]
    assert sub_links  # 600 names in 256 slots collide
    sub = decode_node(blocks[Cid.from_bytes(sub_links[0].Hash)])
    for link in sub.Links:
        if len(link.Name) > 2:
            digest = murmur3_x64_64(link.Name[2:].encode())
            assert digest[:2] == bytes([int(sub_links[0].Name, 16), int(link.Name[:2], 16)])
    assert _files(root, blocks) == {n: n.encode() for n in names}


def test_threshold_is_exclusive_and_strategies_differ():
    tree = {f"n{i}": b"" for i in range(4)}  # 4 * (2 + 36) = 152 bytes by links-bytes
    blocks: dict = {}
    at = import_tree(tree, replace(IMPORTER_DEFAULT, shard_threshold=152), blocks=blocks)
    over = import_tree(tree, replace(IMPORTER_DEFAULT, shard_threshold=151), blocks=blocks)
    kind = {c: UnixfsData.parse(decode_node(blocks[c]).Data).Type for c in (at, over)}
    assert kind == {at: "Directory", over: "HAMTShard"}
    # block-bytes counts the serialized links: larger than names + CIDs
    v1 = import_tree(tree, replace(UNIXFS_V1_2025, shard_threshold=152), blocks=blocks)
    assert UnixfsData.parse(decode_node(blocks[v1]).Data).Type == "HAMTShard"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "nul\0"])
def test_bad_names_are_refused_on_import(name):
    with pytest.raises(LocalProtocolError):
        import_tree({name: b"x"})


def _dir_block(links):
    return PBNode.build({"Links": links, "Data": UnixfsData.build({"Type": "Directory"})})


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "", "x\0"])
def test_hostile_entry_names_are_refused_on_export(tmp_path, name):
    leaf = Cid.of(b"data")
    block = _dir_block([{"Hash": bytes(leaf), "Name": name, "Tsize": 4}])
    root = Cid.of(block, codec="dag-pb")
    blocks = {root: block, leaf: b"data"}
    with pytest.raises(ParseError, match="not a file name"):
        export_to_directory(root, blocks.__getitem__, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*"))


def test_a_block_that_does_not_match_its_cid_is_refused():
    blocks: dict = {}
    root = import_tree({"a": b"1"}, blocks=blocks)
    leaf = next(c for c in blocks if c != root)
    blocks[leaf] = b"2"
    with pytest.raises(ParseError, match="does not match"):
        _files(root, blocks)


def test_a_file_is_not_a_directory():
    blocks: dict = {}
    root = import_tree({"a": b"1"}, blocks=blocks)
    leaf = next(c for c in blocks if c != root)
    with pytest.raises(ParseError, match="not a directory"):
        list(walk(leaf, blocks.__getitem__))


_names = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
                 min_size=1, max_size=12).filter(lambda n: n not in (".", ".."))
_trees = st.recursive(st.binary(max_size=40),
                      lambda inner: st.dictionaries(_names, inner, max_size=6), max_leaves=20)


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(_names, _trees, min_size=1, max_size=8), st.sampled_from([None, 60]))
def test_any_tree_round_trips(tmp_path_factory, tree, threshold):
    s = IMPORTER_DEFAULT if threshold is None else replace(IMPORTER_DEFAULT,
                                                           shard_threshold=threshold)
    blocks: dict = {}
    root = import_tree(tree, s, blocks=blocks)

    def flatten(t, prefix=""):
        out = {}
        for name, value in t.items():
            path = prefix + name
            if isinstance(value, dict):
                out[path] = None
                out.update(flatten(value, path + "/"))
            else:
                out[path] = value
        return out

    assert _files(root, blocks) == flatten(tree)
    out = tmp_path_factory.mktemp("out")
    export_to_directory(root, blocks.__getitem__, out)
    on_disk = {p.relative_to(out).as_posix(): (p.read_bytes() if p.is_file() else None)
               for p in out.rglob("*")}
    assert on_disk == flatten(tree)
