"""Peer ids: the multihash of a serialized public key (peer-ids.md §Peer Ids).

"Keys that serialize to more than 42 bytes must be hashed using sha256 multihash, keys that
serialize to at most 42 bytes must be hashed using the identity multihash codec." Text forms
(§String representation): the legacy base58btc multihash (``12D3KooW…`` for Ed25519,
``Qm…`` for sha256) and a CIDv1 with the ``libp2p-key`` multicodec, base32 by default
(``bafz…``). "Implementations MUST support parsing both forms".

>>> pid = PeerId.from_text("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
>>> pid.to_cid_text()[:8], pid.public_key is not None
('bafzaaja', True)
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pkit.errors import ParseError
from p2pkit.ipfs import multibase
from p2pkit.ipfs.cid import Cid
from p2pkit.ipfs.keys import PublicKeyMessage
from p2pkit.ipfs.multicodec import CODES
from p2pkit.ipfs.multihash import Multihash, digest

__all__ = ["MAX_INLINE_KEY_LENGTH", "PeerId"]

#: "at most 42 bytes must be hashed using the identity multihash".
MAX_INLINE_KEY_LENGTH = 42
_LIBP2P_KEY = CODES["libp2p-key"]


@dataclass(frozen=True)
class PeerId:
    """A peer id: the bytes of its multihash."""

    multihash: bytes

    def __post_init__(self) -> None:
        mh = Multihash.parse(self.multihash)
        if mh.code not in (CODES["identity"], CODES["sha2-256"]):
            raise ParseError(f"a peer id is an identity or sha2-256 multihash, not 0x{mh.code:x}",
                             protocol="peer-id", path="code", offset=0)
        if mh.code == CODES["identity"]:
            PublicKeyMessage.parse(mh.digest)  # an inlined key must be a PublicKey

    @classmethod
    def from_public_key(cls, public_key: bytes) -> PeerId:
        """The peer id of a serialized ``PublicKey`` protobuf."""
        PublicKeyMessage.parse(public_key)
        function = "identity" if len(public_key) <= MAX_INLINE_KEY_LENGTH else "sha2-256"
        return cls(digest(function, public_key))

    @classmethod
    def from_text(cls, text: str) -> PeerId:
        """Either text form (§Decoding)."""
        if text.startswith(("1", "Qm")):
            _, data = multibase.decode("z" + text)
            return cls(data)
        cid = Cid.from_text(text)
        if cid.codec != _LIBP2P_KEY:
            raise ParseError(f"a peer id CID has the libp2p-key codec, not {cid.codec_name}",
                             protocol="peer-id", path="codec")
        return cls(cid.multihash)

    def __bytes__(self) -> bytes:
        return self.multihash

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"

    def to_base58(self) -> str:
        """The legacy (and still recommended for display) base58btc form."""
        return multibase.encode("base58btc", self.multihash)[1:]

    def to_cid_text(self, base: str = "base32") -> str:
        """The CIDv1 ``libp2p-key`` form."""
        return Cid(1, _LIBP2P_KEY, self.multihash).encode(base)

    @property
    def public_key(self) -> bytes | None:
        """The serialized ``PublicKey`` when the id inlines it (identity multihash)."""
        mh = Multihash.parse(self.multihash)
        return mh.digest if mh.code == CODES["identity"] else None

    def matches(self, public_key: bytes) -> bool:
        """Whether ``public_key`` (a serialized ``PublicKey``) is the key of this peer id."""
        return PeerId.from_public_key(public_key) == self
