"""Chapter 6 exercises: write the functions, then run ``p2pkit tutorial check 6 THIS_FILE``.

The first is checked against the requests libtorrent sent in capture bt-02.
"""


def metadata_request(piece: int) -> bytes:
    """The payload of a ``ut_metadata`` request for metadata piece ``piece`` (BEP 9)."""
    raise NotImplementedError


def assemble_metadata(pieces: list[bytes], info_hash: bytes) -> bytes | None:
    """The info dictionary made of ``pieces`` (in order), or ``None`` when it does not hash to
    the v1 ``info_hash``."""
    raise NotImplementedError
