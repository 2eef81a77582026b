"""The Diffie-Hellman exchange, the hashes and the RC4 streams of MSE (Vuze wiki).

MSE (Vuze wiki), "Message Stream Encryption": "P is the prime
FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
"G is the generator 2", "Xa and Xb are a variable size random integers [...] Minimum length
is 128 bit", "Y = G^X mod P", "S is the shared secret: S = Ya^Xb mod P = Yb^Xa mod P",
"HASH() is SHA1", "SKEY is the stream identifier/shared key: the info-hash",
"ENCRYPT() is RC4, that uses one of the following keys to send data:
HASH('keyA', S, SKEY) if you're A, HASH('keyB', S, SKEY) if you're B. The first 1024 bytes of
the RC4 output are discarded."

RC4 is the `cryptography` package's (its ``decrepit`` ARC4); the DH arithmetic is Python's
``pow``.

>>> xa, xb = 0x1234567890ABCDEF1234567890ABCDEF12345678, 0xCAFEBABE0123456789ABCDEFCAFEBABE01234567
>>> shared_secret(public_key(xb), xa) == shared_secret(public_key(xa), xb)
True
>>> a = Rc4(rc4_key(b"keyA", bytes(96), bytes(20)))
>>> b = Rc4(rc4_key(b"keyA", bytes(96), bytes(20)))
>>> b.update(a.update(b"hello"))
b'hello'
"""

from __future__ import annotations

import hashlib
import random

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from p2pkit.bittorrent.wire.mse import KEY_LENGTH
from p2pkit.errors import RemoteProtocolError

__all__ = ["DISCARD", "G", "P", "PRIVATE_KEY_BITS", "Rc4", "new_private_key", "public_key",
           "rc4_key", "req1", "req2", "req3", "shared_secret"]

#: The 768-bit prime of MSE (Vuze wiki).
P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E34"
    "04DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000"
    "000090563", 16)
#: "G is the generator 2".
G = 2
#: Size of a private key X: "Minimum length is 128 bit. Anything beyond 180 bit is not believed
#: to add any further security" (libtorrent uses 160).
PRIVATE_KEY_BITS = 160
#: "The first 1024 bytes of the RC4 output are discarded."
DISCARD = 1024


def new_private_key(rng: random.Random) -> int:
    """A private key X of :data:`PRIVATE_KEY_BITS` bits from ``rng`` (never 0)."""
    return rng.getrandbits(PRIVATE_KEY_BITS) | 1


def public_key(private: int) -> bytes:
    """Y = G^X mod P, as the 96 big-endian bytes sent on the wire."""
    return pow(G, private, P).to_bytes(KEY_LENGTH, "big")


def shared_secret(their_public: bytes, private: int) -> bytes:
    """S = Y^X mod P (96 big-endian bytes). A public key of 0, 1 or P-1 or above (which would
    give a guessable S) is the remote's mistake: :class:`RemoteProtocolError`."""
    y = int.from_bytes(their_public, "big")
    if not 1 < y < P - 1:
        raise RemoteProtocolError("MSE: Diffie-Hellman public key out of range (1 < Y < P-1)")
    return pow(y, private, P).to_bytes(KEY_LENGTH, "big")


def req1(secret: bytes) -> bytes:
    """HASH('req1', S): the marker the responder synchronises on."""
    return hashlib.sha1(b"req1" + secret).digest()


def req2(skey: bytes) -> bytes:
    """HASH('req2', SKEY): identifies the torrent without revealing its info-hash."""
    return hashlib.sha1(b"req2" + skey).digest()


def req3(secret: bytes) -> bytes:
    """HASH('req3', S): XORed onto HASH('req2', SKEY)."""
    return hashlib.sha1(b"req3" + secret).digest()


def rc4_key(name: bytes, secret: bytes, skey: bytes) -> bytes:
    """HASH('keyA', S, SKEY) (``name=b"keyA"``, what A encrypts with) or HASH('keyB', ...)."""
    return hashlib.sha1(name + secret + skey).digest()


class Rc4:
    """One direction's RC4 stream, its first :data:`DISCARD` bytes already dropped."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        self._cipher = Cipher(ARC4(key), mode=None).encryptor()
        self._cipher.update(bytes(DISCARD))

    def update(self, data: bytes) -> bytes:
        """XOR ``data`` with the next bytes of the keystream (encrypts and decrypts)."""
        return self._cipher.update(data)
