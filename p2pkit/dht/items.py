"""Arbitrary data in the DHT: BEP 44 items, their targets, signatures and storage rules.

BEP 44: "Immutable items are stored under their SHA-1 hash"; a mutable item is stored under
"the SHA-1 hash of the public key (as it appears in the bencoded dict) and the salt (if
present)" and carries an ed25519 signature "of the bencoded sequence number concatenated with
the ``v`` key". Signatures are checked with PyCA ``cryptography`` (OpenSSL's ed25519).

BEP 44 §Test Vectors, test 1 (mutable):

>>> k = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
>>> sig = bytes.fromhex("305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
...                     "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01")
>>> signature_buffer(1, b"Hello World!")
b'3:seqi1e1:v12:Hello World!'
>>> verify(k, sig, 1, b"Hello World!"), mutable_target(k).hex()
(True, '4a533d47ec9c7d95b1ad75f576cffc641853b750')
>>> immutable_target(b"Hello World!").hex()  # test 3
'e5f96f6f38320f0f33959cb4d3d656452117aadb'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from p2pkit import bencode
from p2pkit.dht.krpc import ErrorCode
from p2pkit.errors import BuildError, RemoteProtocolError

__all__ = [
    "EXPIRY",
    "Item",
    "ItemStore",
    "MAX_ITEMS",
    "MAX_SALT_SIZE",
    "MAX_VALUE_SIZE",
    "PutRejected",
    "immutable_target",
    "mutable_target",
    "public_key",
    "sign",
    "signature_buffer",
    "verify",
]

#: BEP 44: "Storing nodes MAY reject put requests where the bencoded form of v is longer than
#: 1000 bytes."
MAX_VALUE_SIZE = 1000
#: BEP 44: "The salt string MUST NOT be longer than 64 bytes."
MAX_SALT_SIZE = 64
#: BEP 44 §Expiration: "Without re-announcement, these items MAY expire in 2 hours."
EXPIRY = 2 * 3600.0
#: Items one node keeps at most (oldest expire first when full).
MAX_ITEMS = 10_000
#: BEP 44: "The sequence number SHOULD not exceed MAX_INT64".
MAX_SEQ = 0x7FFFFFFFFFFFFFFF


def immutable_target(v: Any) -> bytes:
    """BEP 44: an immutable item is stored under the SHA-1 of its bencoded value."""
    return hashlib.sha1(bencode.encode(v)).digest()


def mutable_target(k: bytes, salt: bytes = b"") -> bytes:
    """BEP 44: "the target field MUST be the SHA-1 hash of this key concatenated with the salt".

    >>> mutable_target(bytes.fromhex(
    ...     "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548"), b"foobar").hex()
    '411eba73b6f087ca51a3795d9c8c938d365e32c1'
    """
    return hashlib.sha1(k + salt).digest()


def signature_buffer(seq: int, v: Any, salt: bytes = b"") -> bytes:
    """BEP 44 §Signature Verification: ``("4:salt" len ":" salt) "3:seqi" seq "e1:v" v``.

    >>> signature_buffer(1, b"Hello World!", b"foobar")
    b'4:salt6:foobar3:seqi1e1:v12:Hello World!'
    """
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + bencode.encode(v)


def verify(k: bytes, sig: bytes, seq: int, v: Any, salt: bytes = b"") -> bool:
    """True when ``sig`` is ``k``'s ed25519 signature of :func:`signature_buffer`."""
    if len(k) != 32 or len(sig) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(k).verify(sig, signature_buffer(seq, v, salt))
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key(seed: bytes) -> bytes:
    """The 32-byte ed25519 public key of a 32-byte private seed."""
    if len(seed) != 32:
        raise BuildError("an ed25519 seed is 32 bytes", protocol="bt-dht", path="seed")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sign(seed: bytes, seq: int, v: Any, salt: bytes = b"") -> bytes:
    """The 64-byte signature of a mutable item with the 32-byte private ``seed``.

    >>> seed = bytes(range(32))
    >>> verify(public_key(seed), sign(seed, 7, b"x", b"s"), 7, b"x", b"s")
    True
    """
    if len(seed) != 32:
        raise BuildError("an ed25519 seed is 32 bytes", protocol="bt-dht", path="seed")
    return Ed25519PrivateKey.from_private_bytes(seed).sign(signature_buffer(seq, v, salt))


@dataclass(frozen=True, kw_only=True)
class Item:
    """A stored BEP 44 item; ``k``/``seq``/``sig``/``salt`` are set for mutable items only."""

    v: Any
    k: bytes | None = None
    seq: int | None = None
    sig: bytes | None = None
    salt: bytes = b""
    stored_at: float = 0.0

    @property
    def mutable(self) -> bool:
        return self.k is not None

    @property
    def target(self) -> bytes:
        return mutable_target(self.k, self.salt) if self.k is not None else immutable_target(
            self.v)


class PutRejected(RemoteProtocolError):
    """A ``put`` the store refuses, with the BEP 44 error code to answer."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ItemStore:
    """BEP 44 storage with its rules; time is passed in (``now`` in seconds).

    >>> store = ItemStore()
    >>> store.put({"v": b"Hello World!"}, now=0.0).target.hex()
    'e5f96f6f38320f0f33959cb4d3d656452117aadb'
    >>> store.get(bytes.fromhex("e5f96f6f38320f0f33959cb4d3d656452117aadb"), now=1.0).v
    b'Hello World!'
    """

    def __init__(self, *, expiry: float = EXPIRY, max_items: int = MAX_ITEMS) -> None:
        self.expiry = expiry
        self.max_items = max_items
        self._items: dict[bytes, Item] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, target: bytes, now: float) -> Item | None:
        item = self._items.get(target)
        if item is not None and now - item.stored_at >= self.expiry:
            del self._items[target]
            return None
        return item

    def put(self, arguments: Any, now: float) -> Item:
        """Store a ``put``'s arguments (``v`` and, when mutable, ``k``, ``seq``, ``sig``,
        ``salt``, ``cas``); raise :class:`PutRejected` with the code BEP 44 names."""
        v = arguments["v"]
        if len(bencode.encode(v)) > MAX_VALUE_SIZE:
            raise PutRejected(ErrorCode.MESSAGE_TOO_BIG, "message (v field) too big")
        if arguments.get("k") is None:
            item = Item(v=v, stored_at=now)
            self._store(item, now)
            return item
        k, seq, sig = arguments["k"], arguments.get("seq"), arguments.get("sig")
        salt = arguments.get("salt") or b""
        if len(salt) > MAX_SALT_SIZE:
            raise PutRejected(ErrorCode.SALT_TOO_BIG, "salt (salt field) too big")
        if seq is None or sig is None or not 0 <= seq <= MAX_SEQ:
            raise PutRejected(ErrorCode.PROTOCOL_ERROR, "mutable put needs k, seq and sig")
        # BEP 44: "the signature MUST be verified before accepting the store command"
        if not verify(k, sig, seq, v, salt):
            raise PutRejected(ErrorCode.INVALID_SIGNATURE, "invalid signature")
        item = Item(v=v, k=k, seq=seq, sig=sig, salt=salt, stored_at=now)
        current = self.get(item.target, now)
        if current is not None:
            cas = arguments.get("cas")
            # BEP 44: "Only if the cas matches the stored sequence number is the put performed."
            if cas is not None and cas != current.seq:
                raise PutRejected(ErrorCode.CAS_MISMATCH, "CAS mismatch, re-read and try again")
            # BEP 44: "put request where seq is lower than or equal to what's already stored on
            # the node, MUST reject the request. If the sequence number is equal, and the value
            # is also the same, the node SHOULD reset its timeout counter."
            if seq < current.seq or (seq == current.seq and v != current.v):
                raise PutRejected(ErrorCode.SEQUENCE_NUMBER_LESS_THAN_CURRENT,
                                  "sequence number less than current")
        self._store(item, now)
        return item

    def _store(self, item: Item, now: float) -> None:
        target = item.target
        if target not in self._items and len(self._items) >= self.max_items:
            self.expire(now)
            if len(self._items) >= self.max_items:
                oldest = min(self._items, key=lambda t: self._items[t].stored_at)
                del self._items[oldest]
        self._items.pop(target, None)
        self._items[target] = item

    def expire(self, now: float) -> None:
        """Forget items older than the expiry."""
        for target in [t for t, i in self._items.items() if now - i.stored_at >= self.expiry]:
            del self._items[target]
