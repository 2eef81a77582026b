"""Chapter 12 solution (checked in CI: ``p2pkit tutorial check 12`` passes on this file)."""

import hashlib


def verify_proof(leaf: bytes, index: int, uncles: list[bytes], root: bytes) -> bool:
    node = leaf
    for sibling in uncles:
        node = hashlib.sha256(node + sibling if index % 2 == 0 else sibling + node).digest()
        index //= 2
    return node == root
