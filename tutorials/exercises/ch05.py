"""Chapter 5 exercises: write the functions, then run ``p2pkit tutorial check 5 THIS_FILE``.

The checker compares them with p2pkit's own piece picker and choker on seeded random swarms.
"""


def rarest_missing(bitfields: list[bytes], have: bytes, piece_count: int) -> set[int]:
    """The pieces we lack that the fewest peers have (at least one must have them): the
    candidates of rarest first. Every bitfield is BEP 3's: bit 0 is the high bit of byte 0."""
    raise NotImplementedError


def regular_unchokes(rates: dict[str, float], interested: set[str], slots: int) -> set[str]:
    """BEP 3's reciprocation: the peers to unchoke, given the rate we download from each,
    which of them are interested, and how many interested peers may be unchoked."""
    raise NotImplementedError
