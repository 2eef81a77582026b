"""Kad packets sent with eMule's UDP obfuscation (aMule ``src/EncryptedDatagramSocket.cpp``,
"Basic Obfuscated Handshake Protocol UDP"): recognising them, and reading them when the key is
known.

An obfuscated Kad packet is ``<SemiRandomNotProtocolMarker 7 bits><Kad marker 1 bit = 0>
<RandomKeyPart 2>`` in clear, then RC4: ``<MagicValue 4><PaddingLen 1><padding>
<ReceiverVerifyKey 4><SenderVerifyKey 4>`` and the Kad packet. "SemiRandomNotProtocolMarker is
a Byte which has a value unequal any Protocol header byte", and the rest is RC4 output: a
datagram whose first byte is no eMule protocol byte, at least as long as the obfuscation
header and a Kad header, and whose bytes look random. The marker bit is "only an indicator
[...] and should not be trusted", so it is not required.

The key of a packet sent to a node is ``Md5(<KadID 16><RandomKeyPartClientA 2>)`` with the
receiver's Kad id as it is written on the wire: a capture that shows the receiver's id (its
hello or bootstrap answer) can be read (:func:`deobfuscate`). The other Kad key, the
receiver's UDP verify key, is a secret of the receiver's and is not tried.

>>> import random
>>> looks_obfuscated(bytes([0x84]) + random.Random(1).randbytes(42))
True
>>> looks_obfuscated(bytes.fromhex("e401")), looks_obfuscated(bytes(40))
(False, False)
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import construct
from construct import Bytes, Const, GreedyBytes, Int8ul, Int32ul, Prefixed, Struct
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from p2pkit.errors import ParseError
from p2pkit.kad2.messages import PROTOCOL, KadId, KadPacketLenient
from p2pkit.schema import Schema

__all__ = ["MAGICVALUE_UDP_SYNC_CLIENT", "MIN_OBFUSCATED_SIZE", "PROTOCOL_BYTES",
           "DeobfuscatedKadPacket", "ObfuscatedPacket", "deobfuscate", "entropy",
           "looks_obfuscated"]

#: ``MAGICVALUE_UDP_SYNC_CLIENT``: the first encrypted field of every obfuscated client packet.
MAGICVALUE_UDP_SYNC_CLIENT = 0x395F2EC1

# fmt: off
#: What travels in clear: ``<SemiRandomNotProtocolMarker 1><RandomKeyPart 2>``, then RC4 output.
ObfuscatedPacket = Schema(Struct(
    "marker" / Int8ul,
    "random_key_part" / Bytes(2),
    "encrypted" / GreedyBytes,
), protocol=PROTOCOL, name="ObfuscatedPacket")

#: The RC4-decrypted rest of a Kad packet: ``<MagicValue 4><PaddingLen 1><RandomBytes
#: PaddingLen><ReceiverVerifyKey 4><SenderVerifyKey 4>``, then the Kad packet.
DeobfuscatedKadPacket = Schema(Struct(
    "magic" / Const(MAGICVALUE_UDP_SYNC_CLIENT, Int32ul),
    "padding" / Prefixed(Int8ul, GreedyBytes),
    "receiver_verify_key" / Int32ul,
    "sender_verify_key" / Int32ul,
    "packet" / KadPacketLenient,
), protocol=PROTOCOL, name="DeobfuscatedKadPacket")
# fmt: on

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


def deobfuscate(payload: bytes, receiver_id: bytes) -> Any | None:
    """The :data:`DeobfuscatedKadPacket` in ``payload`` sent to the node ``receiver_id`` (the
    16-byte id as :data:`~p2pkit.kad2.messages.KadId` parses it), or None when that key does
    not open it (the magic value does not come out). A packet that opens but whose Kad
    packet is broken raises :class:`~p2pkit.errors.ParseError`.
    """
    outer = ObfuscatedPacket.parse(payload)
    wire_id = KadId.build(receiver_id)
    key = hashlib.md5(wire_id + outer.random_key_part).digest()
    plain = Cipher(ARC4(key), mode=None).decryptor().update(outer.encrypted)
    if plain[:4] != MAGICVALUE_UDP_SYNC_CLIENT.to_bytes(4, "little"):
        return None
    try:
        return DeobfuscatedKadPacket.parse(plain)
    except ParseError as e:
        raise e.relocated(base=3) from None
    except construct.ConstructError as e:  # pragma: no cover - Schema translates these
        raise ParseError(str(e), protocol=PROTOCOL) from None
