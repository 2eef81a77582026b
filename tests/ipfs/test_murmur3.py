"""MurmurHash3 x64 128 against the reference outputs of js ``@multiformats/murmur3`` 2 (what
ipfs-unixfs-importer hashes HAMT names with), printed by Node for these inputs."""

import pytest

from p2pkit.ipfs.murmur3 import murmur3_x64_64, murmur3_x64_128


@pytest.mark.parametrize("text,digest", [
    ("", "00000000000000000000000000000000"),
    ("hello", "cbd8a7b341bd9b025b1e906a48ae1d19"),
    ("a", "85555565f6597889e6b53a48510e895a"),
    ("hello world, this is longer than 16", "e91efcdeb80e61322442ed1f4fbdbdb2"),
    ("file-00042.txt", "36d46c12a372d67aab3acc57ab1c85d2"),
])
def test_reference_values(text, digest):
    assert murmur3_x64_128(text.encode()).hex() == digest
    assert murmur3_x64_64(text.encode()).hex() == digest[:16]
