"""Chapter 7 exercises: write the functions, then run ``p2pkit tutorial check 7 THIS_FILE``."""


def bucket_depth(own: bytes, node: bytes) -> int:
    """How many leading bits the two 160-bit ids share."""
    raise NotImplementedError


def closest(ids: list[bytes], target: bytes, k: int) -> list[bytes]:
    """The ``k`` ids closest to ``target`` by XOR distance, closest first."""
    raise NotImplementedError
