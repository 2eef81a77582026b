"""Node ids, keys and the XOR metric of Kademlia, for any id length.

Kademlia (Maymounkov and Mazières 2002, §2.1): "Kademlia uses the XOR metric [...] Given two
160-bit identifiers, x and y, Kademlia defines the distance between them as their bitwise
exclusive or (XOR) interpreted as an integer". Deployments choose the length: the Mainline DHT
keeps 160 bits (BEP 5: "each node has a globally unique identifier known as the "node ID." Node
IDs are chosen at random from the same 160-bit space as BitTorrent infohashes"); libp2p's
kad-dht uses 256 (libp2p-ipfs/ipfs-kad-dht.md §Kademlia Keyspace: "the IPFS Kademlia DHT uses
a keyspace of length m=256").

>>> distance(b"\\x01" + bytes(19), b"\\x03" + bytes(19)) == 2 << 152
True
>>> check_id(bytes(32), 256)
>>> check_id(bytes(20), 256)
Traceback (most recent call last):
...
p2pkit.errors.LocalProtocolError: a node id of this deployment is 256 bits (32 bytes), not 20 bytes
"""

from __future__ import annotations

import random

from p2pkit.errors import LocalProtocolError

__all__ = ["check_id", "distance", "id_bytes", "random_id"]


def id_bytes(id_bits: int) -> int:
    """Bytes of an id of ``id_bits`` bits (a whole number of bytes: every deployment's is).

    >>> id_bytes(160), id_bytes(256)
    (20, 32)
    """
    if id_bits <= 0 or id_bits % 8:
        raise LocalProtocolError(f"an id length is a positive multiple of 8 bits, not {id_bits}")
    return id_bits // 8


def check_id(node_id: bytes, id_bits: int) -> None:
    """Raise :class:`~p2pkit.errors.LocalProtocolError` unless ``node_id`` is ``id_bits`` long."""
    size = id_bytes(id_bits)
    if len(node_id) != size:
        raise LocalProtocolError(f"a node id of this deployment is {id_bits} bits ({size} bytes),"
                                 f" not {len(node_id)} bytes")


def distance(a: bytes, b: bytes) -> int:
    """Kademlia §2.1: "their bitwise exclusive or (XOR) interpreted as an integer" (BEP 5:
    ``distance(A,B) = |A xor B|``). Smaller is closer.

    >>> distance(bytes(32), b"\\x80" + bytes(31)) == 1 << 255
    True
    """
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def random_id(rng: random.Random, id_bits: int, low: int = 0, high: int | None = None) -> bytes:
    """A random id in ``[low, high)`` (the whole space by default), from the given ``rng``:
    BEP 5 refreshes a bucket by "picking a random ID in the range of the bucket".

    >>> len(random_id(random.Random(1), 256))
    32
    """
    size = id_bytes(id_bits)
    return rng.randrange(low, (1 << id_bits) if high is None else high).to_bytes(size, "big")
