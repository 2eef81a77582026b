"""The UnixFS importer: CIDs of known content (ipfs-unixfs.md §Test Vectors, Kubo's empty file
and "hello world"), the DAG's structure, streaming equals in-memory. The byte-for-byte check
against js ipfs-unixfs-importer is tests/interop/test_unixfs_import_agreement.py."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.errors import LocalProtocolError
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.dag_pb import decode_node
from p2pkit.ipfs.unixfs import UnixfsData
from p2pkit.ipfs.unixfs_importer import (
    HELIA_DEFAULT,
    UNIXFS_V0_2015,
    ImportSettings,
    import_bytes,
    import_file,
)


def test_known_cids():
    assert str(import_bytes(b"", UNIXFS_V0_2015)) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert str(import_bytes(b"hello world\n", UNIXFS_V0_2015)) == \
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    # §Single raw Block File and §Single dag-pb Block File
    assert str(import_bytes(b"hello world\n", HELIA_DEFAULT)) == \
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    v1_dag_pb = ImportSettings(chunk_size=262_144, max_children=174, cid_version=1,
                               raw_leaves=False)
    assert str(import_bytes(b"Hello from IPFS Gateway Checker\n", v1_dag_pb)) == \
        "bafybeifx7yeb55armcsxwwitkymga5xf53dxiarykms3ygqic223w5sk3m"


def test_two_levels_and_every_block_matches_its_cid():
    small = ImportSettings(chunk_size=4, max_children=3, cid_version=1, raw_leaves=True)
    data = bytes(range(40))  # 10 chunks -> 4 parents -> 2 -> 1
    blocks = {}
    root = import_bytes(data, small, blocks=blocks)
    assert all(cid.verify(block) for cid, block in blocks.items())
    node = decode_node(blocks[root])
    info = UnixfsData.parse(node.Data)
    assert info.Type == "File" and info.filesize == 40 and sum(info.blocksizes) == 40
    assert len(node.Links) == 2 and all(link.Name == "" for link in node.Links)

    def content(cid):  # read the file back through the DAG
        if cid.codec_name == "raw":
            return blocks[cid]
        return b"".join(content(Cid.from_bytes(link.Hash))
                        for link in decode_node(blocks[cid]).Links)

    assert content(root) == data
    # Tsize of a link is the whole sub-DAG's size
    first = Cid.from_bytes(node.Links[0].Hash)

    def dag_size(cid):
        if cid.codec_name == "raw":
            return len(blocks[cid])
        return len(blocks[cid]) + sum(dag_size(Cid.from_bytes(link.Hash))
                                      for link in decode_node(blocks[cid]).Links)

    assert node.Links[0].Tsize == dag_size(first)


@settings(max_examples=30)
@given(st.binary(max_size=200), st.integers(1, 16), st.integers(2, 5), st.booleans())
def test_streaming_equals_in_memory(data, chunk, children, raw):
    s = ImportSettings(chunk_size=chunk, max_children=children, cid_version=1, raw_leaves=raw)
    assert import_file(io.BytesIO(data), s) == import_bytes(data, s)


def test_settings_are_checked():
    with pytest.raises(LocalProtocolError):
        ImportSettings(chunk_size=0, max_children=10, cid_version=1, raw_leaves=True)
    with pytest.raises(LocalProtocolError):
        ImportSettings(chunk_size=10, max_children=10, cid_version=0, raw_leaves=True)
