"""Chapter 7 solutions (checked in CI: ``p2pkit tutorial check 7`` passes on this file)."""


def bucket_depth(own: bytes, node: bytes) -> int:
    return 160 - (int.from_bytes(own, "big") ^ int.from_bytes(node, "big")).bit_length()


def closest(ids: list[bytes], target: bytes, k: int) -> list[bytes]:
    t = int.from_bytes(target, "big")
    return sorted(ids, key=lambda i: int.from_bytes(i, "big") ^ t)[:k]
