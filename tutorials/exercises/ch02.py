"""Chapter 2 exercises: write the functions, then run ``p2pkit tutorial check 2 THIS_FILE``."""


def info_hash(torrent: bytes) -> bytes:
    """The 20-byte v1 info-hash of the .torrent file ``torrent`` (BEP 3)."""
    raise NotImplementedError


def merkle_root(leaves: list[bytes]) -> bytes:
    """The BEP 52 root of these 32-byte leaves (padded with zero hashes to a power of two)."""
    raise NotImplementedError
