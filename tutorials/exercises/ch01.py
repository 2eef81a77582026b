"""Chapter 1 exercises: write the functions, then run ``p2pkit tutorial check 1 THIS_FILE``."""


def build_request(index: int, begin: int, length: int) -> bytes:
    """The bytes of a BEP 3 request message (length prefix included), without p2pkit."""
    raise NotImplementedError


def build_port(port: int) -> bytes:
    """The bytes of a BEP 5 port message (length prefix included), without p2pkit."""
    raise NotImplementedError
