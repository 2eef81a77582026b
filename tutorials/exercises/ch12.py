"""Chapter 12 exercise: write the function, then run ``p2pkit tutorial check 12 THIS_FILE``."""


def verify_proof(leaf: bytes, index: int, uncles: list[bytes], root: bytes) -> bool:
    """True when ``leaf`` at ``index`` hashes up to ``root`` with these sibling hashes."""
    raise NotImplementedError
