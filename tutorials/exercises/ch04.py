"""Chapter 4 exercises: write the functions, then run ``p2pkit tutorial check 4 THIS_FILE``.

The checker feeds them the real bytes of capture bt-02 (libtorrent downloading from libtorrent).
"""


def split_messages(stream: bytes) -> list[bytes]:
    """Split what one side sent *after* its 68-byte handshake into whole messages, each with
    its 4-byte length prefix; an incomplete message at the end is left out (BEP 3 §peer
    messages)."""
    raise NotImplementedError


def piece_verifies(torrent: bytes, index: int, piece: bytes) -> bool:
    """Whether ``piece`` is piece ``index`` of the torrent whose .torrent bytes are
    ``torrent`` (BEP 3 §info dictionary, ``pieces``)."""
    raise NotImplementedError
