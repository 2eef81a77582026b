"""BEP 44 items: the spec's test vectors, signing, and the store's rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pkit.dht import items
from p2pkit.dht.items import ItemStore, PutRejected
from p2pkit.dht.krpc import ErrorCode

K = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
SIG1 = bytes.fromhex("305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
                     "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01")
SIG2 = bytes.fromhex("6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
                     "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08")
SEED = bytes(range(32))


def test_bep44_test_vectors():
    assert items.verify(K, SIG1, 1, b"Hello World!")
    assert items.mutable_target(K).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert items.verify(K, SIG2, 1, b"Hello World!", b"foobar")
    assert items.mutable_target(K, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    assert items.immutable_target(b"Hello World!").hex() == \
        "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    assert not items.verify(K, SIG1, 1, b"Hello World!", b"foobar")
    assert not items.verify(K, SIG2, 2, b"Hello World!", b"foobar")
    assert not items.verify(K[:31], SIG1, 1, b"Hello World!")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**63 - 1), st.binary(max_size=50), st.binary(max_size=64))
def test_sign_verify_round_trip(seq, v, salt):
    sig = items.sign(SEED, seq, v, salt)
    assert items.verify(items.public_key(SEED), sig, seq, v, salt)
    assert not items.verify(items.public_key(SEED), sig, seq + 1, v, salt)


def mutable(seq, v=b"v", salt=b"", **extra):
    return dict(v=v, k=items.public_key(SEED), seq=seq, sig=items.sign(SEED, seq, v, salt),
                salt=salt, **extra)


def rejected(store, args, now=0.0):
    try:
        store.put(args, now)
    except PutRejected as e:
        return e.code
    return None


def test_store_rules():
    store = ItemStore()
    assert rejected(store, {"v": b"x" * 1000}) == ErrorCode.MESSAGE_TOO_BIG  # 1003 encoded
    assert rejected(store, {"v": b"x" * 996}) is None  # exactly 1000 encoded bytes
    assert rejected(store, mutable(5)) is None
    assert rejected(store, mutable(5)) is None  # same seq and value: timeout reset
    assert rejected(store, mutable(5, v=b"other")) == ErrorCode.SEQUENCE_NUMBER_LESS_THAN_CURRENT
    assert rejected(store, mutable(4)) == ErrorCode.SEQUENCE_NUMBER_LESS_THAN_CURRENT
    assert rejected(store, mutable(6, cas=4)) == ErrorCode.CAS_MISMATCH
    assert rejected(store, mutable(6, cas=5)) is None
    assert rejected(store, dict(mutable(7), sig=bytes(64))) == ErrorCode.INVALID_SIGNATURE
    assert rejected(store, mutable(1, salt=b"s" * 65)) == ErrorCode.SALT_TOO_BIG
    assert rejected(store, mutable(1, salt=b"s" * 64, cas=99)) is None  # cas ignored: no item
    target = items.mutable_target(items.public_key(SEED))
    assert store.get(target, now=1.0).seq == 6


def test_store_expiry_and_bound():
    store = ItemStore(expiry=10.0, max_items=3)
    for i in range(5):
        store.put({"v": i}, now=float(i))
    assert len(store) == 3
    assert store.get(items.immutable_target(0), now=5.0) is None  # evicted, oldest first
    assert store.get(items.immutable_target(4), now=13.9).v == 4
    assert store.get(items.immutable_target(4), now=14.0) is None
