"""Chapter 13 exercises: write the functions, then run ``p2pkit tutorial check 13 THIS_FILE``."""


def encode_uvarint(n: int) -> bytes:
    """``n`` (0 <= n < 2**63) as a multiformats unsigned varint."""
    raise NotImplementedError


def raw_cid(data: bytes) -> str:
    """The text CIDv1 (base32) of ``data`` as a ``raw`` block with a sha2-256 multihash."""
    raise NotImplementedError
