"""Multihash: ``<hash function code><digest length><digest>``, both varints (multiformats/multihash).

"Multihash is a protocol for differentiating outputs from various well-established hash
functions": the function is a multicodec of tag ``multihash``
(:mod:`p2pkit.ipfs.multicodec`), the length an unsigned varint, then the digest. The identity
"hash" carries its input verbatim (peer ids of small keys, libp2p-peer-ids §Peer Ids).

>>> mh = Multihash.parse(bytes.fromhex("1220") + bytes(32))
>>> mh.code, len(mh.digest)
(18, 32)
>>> digest("sha2-256", b"hello world").hex()[:16]
'1220b94d27b9934d'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import construct
from construct import Struct

from p2pkit.errors import ParseError
from p2pkit.ipfs.multicodec import CODES, name_of
from p2pkit.ipfs.varint import LengthPrefixed, UnsignedVarintField
from p2pkit.schema import Schema

__all__ = ["FUNCTIONS", "MAX_DIGEST_LENGTH", "Multihash", "MultihashField", "digest", "verify"]

#: Longest digest accepted (an identity multihash of an RSA-4096 public key is ~550 bytes;
#: hashes are 20 to 64): checked before the digest is read.
MAX_DIGEST_LENGTH = 1024

#: Hash functions p2pkit computes: multicodec name -> (digest size, function).
FUNCTIONS: dict[str, tuple[int | None, Callable[[bytes], bytes]]] = {
    "identity": (None, lambda data: bytes(data)),
    "sha1": (20, lambda data: hashlib.sha1(data).digest()),
    "sha2-256": (32, lambda data: hashlib.sha256(data).digest()),
    "sha2-512": (64, lambda data: hashlib.sha512(data).digest()),
    "sha3-256": (32, lambda data: hashlib.sha3_256(data).digest()),
    "sha3-512": (64, lambda data: hashlib.sha3_512(data).digest()),
    "blake2b-256": (32, lambda data: hashlib.blake2b(data, digest_size=32).digest()),
}


def BoundedBytes(limit: int) -> construct.Construct:  # noqa: N802 (a construct factory)
    """Bytes prefixed by their varint length, at most ``limit`` of them."""
    return LengthPrefixed(construct.GreedyBytes, limit)


# fmt: off
#: One multihash inside a larger layout (a CID, a multiaddr's p2p component).
MultihashField = Struct(
    "code" / UnsignedVarintField * "hash function, a multicodec of tag multihash (0x12 sha2-256)",
    "digest" / BoundedBytes(MAX_DIGEST_LENGTH) * "the digest, prefixed by its length (varint)",
)
# fmt: on
#: A whole multihash.
Multihash = Schema(MultihashField, protocol="multihash")


def digest(function: str, data: bytes) -> bytes:
    """The multihash (bytes) of ``data`` under ``function`` (a multicodec name)."""
    try:
        _, fn = FUNCTIONS[function]
    except KeyError:
        raise ParseError(f"p2pkit does not compute {function!r} (known: {', '.join(FUNCTIONS)})",
                         protocol="multihash") from None
    return Multihash.build({"code": CODES[function], "digest": fn(data)})


def verify(multihash: bytes, data: bytes) -> bool:
    """Whether ``multihash`` is the hash of ``data`` (every block is checked this way before it
    is stored or served).

    >>> verify(digest("sha1", b"x"), b"x"), verify(digest("sha1", b"x"), b"y")
    (True, False)
    """
    mh = Multihash.parse(multihash)
    name = name_of(mh.code)
    if name not in FUNCTIONS:
        raise ParseError(f"p2pkit does not compute hash function {name}", protocol="multihash",
                         path="code", offset=0)
    size, fn = FUNCTIONS[name]
    return fn(data) == mh.digest if size in (None, len(mh.digest)) else \
        fn(data)[: len(mh.digest)] == mh.digest
