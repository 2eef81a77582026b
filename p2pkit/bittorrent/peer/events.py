"""Events of one peer connection: what :class:`~p2pkit.bittorrent.peer.connection.PeerConnection`
returns from ``next_event()`` and accepts in ``send()``.

Specs: BEP 3 §peer messages, BEP 5 (``port``), BEP 6 §Fast Extension, BEP 10 §extension protocol.

Every event derives from :class:`p2pkit.core.Event` (re-exported here as ``Event``). One event
class per message, named after the message (``have`` → :class:`Have`), used in both
directions as in h11: the peer's ``request`` is a :class:`Request` from ``next_event()``, ours a
:class:`Request` given to ``send()``. Fields follow the BEP's words. Each event validates itself
on construction; each check quotes the rule it enforces, so a bad value fails where it is made:

>>> Request(index=3, begin=16384, length=16384)
Request(index=3, begin=16384, length=16384)
>>> Request(index=3, begin=0, length=0)
Traceback (most recent call last):
  ...
p2pkit.errors.LocalProtocolError: request length must be 1..131072, not 0

A few events are not messages: :class:`ExtensionHandshake` and :class:`ExtensionMessage` are
BEP 10 ``extended`` messages decoded by name, :class:`RequestsVoided` tells the downloader that
requests it sent will never be answered, :class:`ConnectionClosed` ends the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from p2pkit.core import Event
from p2pkit.errors import LocalProtocolError

__all__ = [
    "MAX_HASH_REQUEST_LENGTH",
    "MAX_REQUEST_LENGTH",
    "AllowedFast",
    "Bitfield",
    "Cancel",
    "Choke",
    "ConnectionClosed",
    "Event",
    "ExtensionHandshake",
    "ExtensionMessage",
    "Handshake",
    "HashReject",
    "HashRequest",
    "Hashes",
    "Have",
    "HaveAll",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "NotInterested",
    "Piece",
    "Port",
    "RejectRequest",
    "Request",
    "RequestsVoided",
    "SuggestPiece",
    "Unchoke",
]

#: BEP 3: "All current implementations use 2^14 (16 kiB), and close connections which request an
#: amount greater than that." p2pkit requests 16 KiB and, like libtorrent, serves up to 128 KiB.
MAX_REQUEST_LENGTH = 128 * 1024
_U32 = 1 << 32


def _index(value: int, what: str = "index") -> None:
    # BEP 3: "All later integers sent in the protocol are encoded as four bytes big-endian."
    if not 0 <= value < _U32:
        raise LocalProtocolError(f"{what} must fit in four bytes, not {value}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Handshake(Event):
    """BEP 3 §handshake: reserved bits, info-hash and peer id."""

    info_hash: bytes
    peer_id: bytes
    #: BEP 10 "reserved_byte[5] & 0x10".
    extension_protocol: bool = True
    #: BEP 6: ``reserved[7] |= 0x04``.
    fast: bool = True
    #: BEP 5 "the last bit in the 8 byte reserved flags".
    dht: bool = False
    #: BEP 52: "the 4th most significant bit in the last byte of the reserved bitfield".
    v2_upgrade: bool = False
    #: Reserved bits no BEP above names, kept as received.
    unknown_bits: int = 0

    def __post_init__(self) -> None:
        # BEP 3: "the 20 byte sha1 hash [...] the 20-byte peer id".
        if len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise LocalProtocolError("info_hash and peer_id are 20 bytes each")


@dataclass(frozen=True, slots=True)
class KeepAlive(Event):
    """BEP 3: "Messages of length zero are keepalives, and ignored."."""


@dataclass(frozen=True, slots=True)
class Choke(Event):
    """BEP 3 ``choke``."""


@dataclass(frozen=True, slots=True)
class Unchoke(Event):
    """BEP 3 ``unchoke``."""


@dataclass(frozen=True, slots=True)
class Interested(Event):
    """BEP 3 ``interested``."""


@dataclass(frozen=True, slots=True)
class NotInterested(Event):
    """BEP 3 ``not interested``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _PieceIndex(Event):
    """A message whose payload is one piece index (``have``, ``suggest piece``, ``allowed
    fast``)."""

    index: int

    def __post_init__(self) -> None:
        _index(self.index)


@dataclass(frozen=True, kw_only=True, slots=True)
class Have(_PieceIndex):
    """BEP 3: "the index which that downloader just completed and checked the hash of"."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Bitfield(Event):
    """BEP 3 ``bitfield``: "each index that downloader has sent set to one and the rest set to
    zero" (the raw bytes; :mod:`p2pkit.bittorrent.wire.bitfield` converts them)."""

    bitfield: bytes


@dataclass(frozen=True, slots=True)
class HaveAll(Event):
    """BEP 6 ``have all``."""


@dataclass(frozen=True, slots=True)
class HaveNone(Event):
    """BEP 6 ``have none``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Request(Event):
    """BEP 3 ``request``: "an index, begin, and length"."""

    index: int
    begin: int
    length: int

    def __post_init__(self) -> None:
        _index(self.index)
        _index(self.begin, "begin")
        # BEP 3: implementations "close connections which request an amount greater than" 16 KiB
        # (p2pkit allows MAX_REQUEST_LENGTH); a zero-length request asks for nothing.
        if not 0 < self.length <= MAX_REQUEST_LENGTH:
            raise LocalProtocolError(f"request length must be 1..{MAX_REQUEST_LENGTH}, "
                                     f"not {self.length}")

    @property
    def block(self) -> tuple[int, int, int]:
        return (self.index, self.begin, self.length)


@dataclass(frozen=True, kw_only=True, slots=True)
class Cancel(Request):
    """BEP 3: "'cancel' messages have the same payload as request messages"."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RejectRequest(Request):
    """BEP 6 ``reject request``: "its request will not be satisfied"."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Piece(Event):
    """BEP 3 ``piece``: "an index, begin, and piece" (``data``, the block's bytes)."""

    index: int
    begin: int
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _index(self.index)
        _index(self.begin, "begin")
        if not 0 < len(self.data) <= MAX_REQUEST_LENGTH:
            raise LocalProtocolError(f"a piece message carries 1..{MAX_REQUEST_LENGTH} bytes, "
                                     f"not {len(self.data)}")

    @property
    def block(self) -> tuple[int, int, int]:
        return (self.index, self.begin, len(self.data))


@dataclass(frozen=True, kw_only=True, slots=True)
class Port(Event):
    """BEP 5: "the UDP port of the DHT node"."""

    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port < 1 << 16:
            raise LocalProtocolError(f"port must fit in two bytes, not {self.port}")


@dataclass(frozen=True, kw_only=True, slots=True)
class SuggestPiece(_PieceIndex):
    """BEP 6 ``suggest piece``: "you might like to download this piece"."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AllowedFast(_PieceIndex):
    """BEP 6 ``allowed fast``: "I'll give it to you even if you're choked"."""


#: BEP 52: "Length SHOULD NOT be greater than 512."
MAX_HASH_REQUEST_LENGTH = 512


@dataclass(frozen=True, kw_only=True, slots=True)
class HashRequest(Event):
    """BEP 52 ``hash request``: "a pieces root, base layer, index, length, and proof layers"."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int

    def __post_init__(self) -> None:
        if len(self.pieces_root) != 32:
            raise LocalProtocolError("a pieces root is a 32-byte SHA-256")
        for name in ("base_layer", "index", "proof_layers"):
            _index(getattr(self, name), name)
        # BEP 52: "Length MUST be equal-to-or-greater-than two and a power of two." and
        # "Index MUST be a multiple of length".
        if self.length < 2 or self.length & (self.length - 1) or self.index % self.length:
            raise LocalProtocolError(f"hash request length {self.length} at index {self.index}:"
                                     " a power of two >= 2 dividing the index is required")

    @property
    def key(self) -> tuple[bytes, int, int, int, int]:
        return (self.pieces_root, self.base_layer, self.index, self.length, self.proof_layers)


@dataclass(frozen=True, kw_only=True, slots=True)
class Hashes(HashRequest):
    """BEP 52 ``hashes``: the request's fields and the hashes, "starts with the base layer and
    ends with the uncle hash closest to the root"."""

    hashes: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class HashReject(HashRequest):
    """BEP 52 ``hash reject``: "a peer will not service a hash request"."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtensionHandshake(Event):
    """BEP 10 §handshake message: ``m`` (extension name → message id, 0 = disabled) and the
    other items (``p``, ``v``, ``reqq``, ``metadata_size`` …) in ``items``."""

    m: Mapping[str, int] = field(default_factory=dict)
    items: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # BEP 10: "Extended message IDs [...] 0 = handshake, >0 = extended message"; one byte.
        for name, mid in self.m.items():
            if not isinstance(mid, int) or not 0 <= mid < 256:
                raise LocalProtocolError(f"extension {name!r} needs an id 0..255, not {mid!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtensionMessage(Event):
    """A BEP 10 extended message other than the handshake, by extension name (``ut_metadata``,
    ``ut_pex`` …) with its decoded ``message`` (see :mod:`p2pkit.bittorrent.wire.extensions`)."""

    name: str
    message: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestsVoided(Event):
    """Requests we sent that will never be answered, so the blocks must be asked elsewhere.

    ``reason`` is ``"choked"`` (BEP 3 without the fast extension: a choke discards pending
    requests), ``"rejected"`` is reported as :class:`RejectRequest` instead, ``"timeout"`` when
    the peer sat on them for longer than the request timeout (the connection also sent cancels),
    ``"closed"`` when the connection ended.
    """

    blocks: tuple[tuple[int, int, int], ...]
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionClosed(Event):
    """The connection ended: the peer closed it (``by_peer``) or we did; ``reason`` says why."""

    reason: str
    by_peer: bool
