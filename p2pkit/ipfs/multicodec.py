"""The multicodec codes p2pkit's IPFS stack uses (multicodec-table.csv of multiformats/multicodec).

"a multicodec is a self-describing [...] code": one unsigned varint naming a hash function
(multihash), a content type (CID), an address protocol (multiaddr) or a key type. Only the
codes the stack speaks are listed; ``tests/ipfs/test_multicodec.py`` checks every entry against
the spec's table, so this table cannot drift from it.

>>> CODES["dag-pb"], NAMES[0x55]
(112, 'raw')
>>> code_of("nosuch")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: multicodec: unknown multicodec name 'nosuch'
"""

from __future__ import annotations

from p2pkit.errors import ParseError

__all__ = ["CODES", "NAMES", "TAGS", "code_of", "name_of"]

#: name -> (tag, code), as multicodec-table.csv lists them.
TAGS: dict[str, tuple[str, int]] = {
    # multihash
    "identity": ("multihash", 0x00),
    "sha1": ("multihash", 0x11),
    "sha2-256": ("multihash", 0x12),
    "sha2-512": ("multihash", 0x13),
    "sha3-512": ("multihash", 0x14),
    "sha3-256": ("multihash", 0x16),
    "blake2b-256": ("multihash", 0xB220),
    # cid versions
    "cidv1": ("cid", 0x01),
    "cidv2": ("cid", 0x02),
    # ipld content types
    "cbor": ("ipld", 0x51),
    "raw": ("ipld", 0x55),
    "dag-pb": ("ipld", 0x70),
    "dag-cbor": ("ipld", 0x71),
    "libp2p-key": ("ipld", 0x72),
    "dag-json": ("ipld", 0x0129),
    "json": ("ipld", 0x0200),
    # serialization
    "protobuf": ("serialization", 0x50),
    "car": ("serialization", 0x0202),
    # libp2p
    "libp2p-peer-record": ("libp2p", 0x0301),
    # keys
    "ed25519-pub": ("key", 0xED),
}

#: name -> code.
CODES: dict[str, int] = {name: code for name, (_, code) in TAGS.items()}
#: code -> name (the table has one name per code among those listed).
NAMES: dict[int, str] = {code: name for name, code in CODES.items()}


def code_of(name: str) -> int:
    """The code of multicodec ``name``; :class:`~p2pkit.errors.ParseError` if unknown."""
    try:
        return CODES[name]
    except KeyError:
        raise ParseError(f"unknown multicodec name {name!r}", protocol="multicodec") from None


def name_of(code: int) -> str:
    """The name of multicodec ``code``, or ``"0x…"`` when p2pkit does not list it.

    >>> name_of(0x70), name_of(0x9999)
    ('dag-pb', '0x9999')
    """
    return NAMES.get(code, f"0x{code:x}")
