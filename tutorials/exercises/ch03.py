"""Chapter 3 exercise: write the function, then run ``p2pkit tutorial check 3 THIS_FILE``."""


def decode_compact(peers: bytes) -> list[tuple[str, int]]:
    """BEP 23: a compact peer list as [(ip, port), ...], without p2pkit."""
    raise NotImplementedError
