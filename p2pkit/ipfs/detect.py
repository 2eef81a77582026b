"""Recognising a libp2p TCP direction by its first bytes: the ``ipfs`` descriptor's stream
detector, in a module of its own so that detection (asked of every TCP direction of a capture)
imports none of the Noise, yamux and session decoding.

>>> from p2pkit.ipfs.multistream import MultistreamMessage
>>> head = MultistreamMessage.build("/multistream/1.0.0") + MultistreamMessage.build("/noise")
>>> detect_libp2p(head), detect_libp2p(head[:5]), detect_libp2p(b"GET / HTTP/1.1")
(True, None, False)
"""

from __future__ import annotations

from p2pkit.ipfs.multistream import HEADER, MultistreamMessage

__all__ = ["detect_libp2p"]

_HEADER_BYTES = MultistreamMessage.build(HEADER)


def detect_libp2p(head: bytes, *, other: str | None = None, complete: bool = False,
                  from_start: bool = True) -> bool | None:
    """A TCP direction that starts with the multistream-select header (multistream-select.md
    §Protocol); ``None`` while ``head`` is a shorter prefix of it."""
    if head.startswith(_HEADER_BYTES):
        return True
    if _HEADER_BYTES.startswith(head) and head and not complete:
        return None
    return False
