"""Recognising Kad packets sent with eMule's UDP obfuscation (aMule
``src/EncryptedDatagramSocket.cpp``, "Basic Obfuscated Handshake Protocol UDP").

An obfuscated Kad packet is ``<SemiRandomNotProtocolMarker 7 bits><Kad marker 1 bit = 0>
<RandomKeyPart 2>`` in clear, then RC4: ``<MagicValue 4><PaddingLen 1><padding>
<ReceiverVerifyKey 4><SenderVerifyKey 4>`` and the Kad packet. "SemiRandomNotProtocolMarker is
a Byte which has a value unequal any Protocol header byte", and the rest is RC4 output: a
datagram whose first byte is no eMule protocol byte, at least as long as the obfuscation
header and a Kad header, and whose bytes look random. The marker bit is "only an indicator
[...] and should not be trusted", so it is not required.

>>> import random
>>> looks_obfuscated(bytes([0x84]) + random.Random(1).randbytes(42))
True
>>> looks_obfuscated(bytes.fromhex("e401")), looks_obfuscated(bytes(40))
(False, False)
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["MIN_OBFUSCATED_SIZE", "PROTOCOL_BYTES", "entropy", "looks_obfuscated"]

#: Protocol header bytes of eMule UDP (``src/include/protocol/Protocols.h``): eDonkey 0xE3,
#: eMule extended 0xC5, packed 0xD4, Kad 0xE4, Kad packed 0xE5, reserved 0xA3 and 0xB2.
PROTOCOL_BYTES = frozenset({0xE3, 0xC5, 0xD4, 0xE4, 0xE5, 0xA3, 0xB2})
#: Marker 1 + key part 2 + magic 4 + padding length 1 + verify keys 8 + a Kad header 2.
MIN_OBFUSCATED_SIZE = 18


def entropy(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte.

    >>> entropy(b"aaaa"), entropy(bytes(range(256)))
    (0.0, 8.0)
    """
    if not data:
        return 0.0
    n = len(data)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(data).values()))


def looks_obfuscated(payload: bytes) -> bool:
    """Whether ``payload`` can be an obfuscated eMule UDP packet: no protocol byte first, long
    enough, and close to the entropy of random bytes of its length (at least 80 % of the most
    ``log2(min(length, 256))`` bits per byte that many bytes can have)."""
    if len(payload) < MIN_OBFUSCATED_SIZE or payload[0] in PROTOCOL_BYTES:
        return False
    return entropy(payload) >= 0.8 * math.log2(min(len(payload), 256))
