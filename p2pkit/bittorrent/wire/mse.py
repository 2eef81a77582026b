"""Message Stream Encryption (MSE/PE) handshake fields: MSE (Vuze wiki), "Message Stream Encryption".

The specification (no BEP; the Vuze wiki page, which libtorrent, Transmission and aria2
follow) writes the handshake as::

    1 A->B: Diffie Hellman Ya, PadA
    2 B->A: Diffie Hellman Yb, PadB
    3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
            ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
    4 B->A: ENCRYPT(VC, crypto_select, len(padD), padD), ENCRYPT2(Payload Stream)
    5 A->B: ENCRYPT2(Payload Stream)

"Ya/Yb: [...] 768 bit [...] big-endian"; "PadA, PadB: Random data with a random length of 0
to 512 bytes each"; "VC is a verification constant [...] 8 bytes set to 0x00";
"crypto_provide and crypto_select are a 32bit bitfields [...] 0x01 for plaintext, 0x02 for
RC4"; "PadC [and] PadD [...] 0 to 512 bytes"; "len(X) specifies the length of X in 2 bytes"
(big-endian, as every integer of the spec).

Each block below is one schema; the encrypted ones are the *decrypted* bytes (the RC4
keystream is applied by :mod:`p2pkit.bittorrent.mse`). ``ENCRYPT(IA)`` continues the same RC4
stream right after ``len(IA)``, so the initiator's encrypted block is one schema,
:data:`CryptoProvide`, ending with the initial payload.

>>> block = CryptoProvide.build(dict(crypto_provide=dict(plaintext=True, rc4=True),
...                                  pad_c=b"", initial_payload=b"\\x13BitTorrent protocol"))
>>> block.hex()
'0000000000000000000000030000001413426974546f7272656e742070726f746f636f6c'
>>> value = CryptoProvide.parse(block)
>>> value.crypto_provide.rc4, value.initial_payload[:4]
(True, b'\\x13Bit')
>>> CryptoSelect.parse(bytes(8) + bytes.fromhex("00000002" "0000")).crypto_select.rc4
True
"""

from __future__ import annotations

from typing import Any

import construct
from construct import Bytes, Const, GreedyBytes, Int16ub, Int32ub, Prefixed, Struct

from p2pkit.errors import LimitExceeded
from p2pkit.schema import NamedBits, Schema

__all__ = ["CRYPTO_PLAINTEXT", "CRYPTO_RC4", "CryptoHead", "CryptoMethods", "CryptoProvide", "CryptoSelect",
           "KEY_LENGTH", "KeyExchange", "MAX_PAD", "PROTOCOL", "PublicKey", "SyncHashes", "VC"]

PROTOCOL = "mse"
#: "Diffie Hellman [...] 768 bit": the public keys Ya and Yb, big-endian, 96 bytes.
KEY_LENGTH = 96
#: "PadA, PadB [...] PadC, PadD: [...] 0 to 512 bytes".
MAX_PAD = 512
#: "VC is a verification constant [...] 8 bytes set to 0x00".
VC = bytes(8)
#: crypto_provide / crypto_select bits: "0x01 for plaintext, 0x02 for RC4".
CRYPTO_PLAINTEXT = 0x01
CRYPTO_RC4 = 0x02


class _PadLength(construct.Construct):
    """``len(PadC)`` / ``len(PadD)``: 2 bytes, at most :data:`MAX_PAD` (checked when read,
    before the padding is waited for)."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        at = construct.stream_tell(stream, path)
        value = Int16ub._parsereport(stream, context, path)
        if value > MAX_PAD:
            raise LimitExceeded(f"padding of {value} bytes, more than {MAX_PAD}",
                                protocol=PROTOCOL, path="pad length", offset=at)
        return value

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        if not 0 <= obj <= MAX_PAD:
            raise construct.ExplicitError(f"padding of {obj} bytes, more than {MAX_PAD}",
                                          path=path)
        return Int16ub._build(obj, stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        return 2


class _Padding(construct.Construct):
    """PadA / PadB: the rest of the bytes given, at most :data:`MAX_PAD`."""

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        at = construct.stream_tell(stream, path)
        data = construct.stream_read_entire(stream, path)
        if len(data) > MAX_PAD:
            raise LimitExceeded(f"padding of {len(data)} bytes, more than {MAX_PAD}",
                                protocol=PROTOCOL, path="pad", offset=at + MAX_PAD)
        return data

    def _build(self, obj: bytes, stream: Any, context: Any, path: str) -> bytes:
        if len(obj) > MAX_PAD:
            raise construct.ExplicitError(f"padding of {len(obj)} bytes, more than {MAX_PAD}",
                                          path=path)
        construct.stream_write(stream, obj, len(obj), path)
        return obj


# fmt: off
#: Ya or Yb: "768 bit [...] big-endian", so always 96 bytes (leading zeros kept).
PublicKey = Bytes(KEY_LENGTH)

#: crypto_provide / crypto_select: "32bit bitfields [...] 0x01 for plaintext, 0x02 for RC4.
#: (The remaining bits are reserved for future use.)"
CryptoMethods = NamedBits(Int32ub, plaintext=CRYPTO_PLAINTEXT, rc4=CRYPTO_RC4)

#: Steps 1 and 2: "Diffie Hellman Ya, PadA" / "Yb, PadB".
KeyExchange = Schema(Struct(
    "public_key" / PublicKey,
    "pad" / _Padding(),
), protocol=PROTOCOL, name="KeyExchange")

#: Step 3, in clear: "HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S)" (SHA-1).
SyncHashes = Schema(Struct(
    "req1" / Bytes(20),
    "req2_xor_req3" / Bytes(20),
), protocol=PROTOCOL, name="SyncHashes")

#: The first 14 bytes of both encrypted blocks, read first to know how long the block is:
#: VC, the bitfield, and len(PadC) or len(PadD).
CryptoHead = Schema(Struct(
    "vc" / Const(VC),
    "methods" / CryptoMethods,
    "pad_length" / _PadLength(),
), protocol=PROTOCOL, name="CryptoHead")

#: Step 3, decrypted: "ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)".
CryptoProvide = Schema(Struct(
    "vc" / Const(VC),
    "crypto_provide" / CryptoMethods,
    "pad_c" / Prefixed(_PadLength(), GreedyBytes),
    "initial_payload" / Prefixed(Int16ub, GreedyBytes),
), protocol=PROTOCOL, name="CryptoProvide")

#: Step 4, decrypted: "ENCRYPT(VC, crypto_select, len(padD), padD)".
CryptoSelect = Schema(Struct(
    "vc" / Const(VC),
    "crypto_select" / CryptoMethods,
    "pad_d" / Prefixed(_PadLength(), GreedyBytes),
), protocol=PROTOCOL, name="CryptoSelect")
# fmt: on
