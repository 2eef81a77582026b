"""dag-pb and UnixFS against CIDs of known content (ipfs-unixfs.md §Test Vectors; Kubo's
well-known empty directory and empty file)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.dag_pb import PBNode, decode_node
from p2pkit.ipfs.unixfs import UnixfsData, file_node


def test_empty_directory():
    block = PBNode.build({"Data": UnixfsData.build({"Type": "Directory"})})
    assert str(Cid.of(block, codec="dag-pb", version=0)) == \
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def test_empty_file():
    assert str(Cid.of(file_node(b""), codec="dag-pb", version=0)) == \
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"


def test_single_dag_pb_block_file():
    # §Single dag-pb Block File: 32 bytes of content, a 40-byte block
    content = b"Hello from IPFS Gateway Checker\n"
    block = file_node(content)
    assert len(block) == 40
    assert str(Cid.of(block, codec="dag-pb")) == \
        "bafybeifx7yeb55armcsxwwitkymga5xf53dxiarykms3ygqic223w5sk3m"
    data = UnixfsData.parse(decode_node(block).Data)
    assert (data.Type, data.Data, data.filesize) == ("File", content, 32)


def test_single_raw_block_file():
    # §Single raw Block File: "hello world\n" as a raw leaf
    assert str(Cid.of(b"hello world\n")) == \
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def test_multi_block_root_layout():
    # a balanced root as Kubo writes it: Links (no names), then Data with blocksizes
    leaves = [Cid.of(bytes([i]) * 256) for i in range(4)]
    root = PBNode.build({
        "Links": [{"Hash": bytes(c), "Name": "", "Tsize": 256} for c in leaves],
        "Data": UnixfsData.build({"Type": "File", "filesize": 1024,
                                  "blocksizes": [256] * 4}),
    })
    node = decode_node(root)
    assert [Cid.from_bytes(link.Hash) for link in node.Links] == leaves
    assert UnixfsData.parse(node.Data).blocksizes == [256] * 4


@given(st.binary(max_size=300))
def test_file_node_round_trip(content):
    node = decode_node(file_node(content))
    data = UnixfsData.parse(node.Data)
    assert (data.Data or b"") == content and data.filesize == len(content)


@pytest.mark.parametrize("mtime", [{"Seconds": -1, "FractionalNanoseconds": 5},
                                   {"Seconds": 1700000000}])
def test_unixfs_1_5_metadata(mtime):
    data = UnixfsData.build({"Type": "File", "mode": 0o644, "mtime": mtime})
    parsed = UnixfsData.parse(data)
    assert parsed.mode == 0o644 and parsed.mtime.Seconds == mtime["Seconds"]
