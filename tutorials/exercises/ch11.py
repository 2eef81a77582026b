"""Chapter 11 exercise: write the function, then run ``p2pkit tutorial check 11 THIS_FILE``.

The checker seeds chapter 11's torrent on 127.0.0.1 with your ``read_block`` serving every
request, and grades that seed with the conformance suite's BEP 3 request and piece cases.
"""


def read_block(content: bytes, piece_length: int, index: int, begin: int, length: int) -> bytes:
    """The ``length`` bytes of the torrent's ``content`` that a request for block
    (``index``, ``begin``) asks for (BEP 3 §request)."""
    raise NotImplementedError
