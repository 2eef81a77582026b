"""Announce tokens (BEP 5 §get_peers, §announce_peer).

BEP 5: "The BitTorrent implementation uses the SHA1 hash of the IP address concatenated onto a
secret that changes every five minutes and tokens up to ten minutes old are accepted." And for
announce_peer: "The queried node must verify that the token was previously sent to the same IP
address as the querying node."

The secret comes from an injected RNG and rotates on the ``now`` passed in.

>>> import random
>>> tokens = Tokens(random.Random(1), now=0.0)
>>> t = tokens.token_for("10.0.0.1", now=10.0)
>>> tokens.check(t, "10.0.0.1", now=400.0), tokens.check(t, "10.0.0.2", now=400.0)
(True, False)
>>> tokens.check(t, "10.0.0.1", now=700.0)  # two rotations later
False
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import random

__all__ = ["ROTATE_EVERY", "TOKEN_LENGTH", "Tokens"]

#: BEP 5: "a secret that changes every five minutes".
ROTATE_EVERY = 5 * 60.0
#: Bytes of SHA-1 sent as a token (BEP 5 leaves the length to the implementation).
TOKEN_LENGTH = 8
#: Querier addresses whose packed form is remembered.
MAX_CACHED_ADDRESSES = 4096


@functools.lru_cache(maxsize=MAX_CACHED_ADDRESSES)
def _packed(ip: str) -> bytes:
    """The address in network order (parsed once per querier, not once per token)."""
    return ipaddress.ip_address(ip).packed


class Tokens:
    """The current and previous secret, and tokens derived from them per querier IP."""

    def __init__(self, rng: random.Random, now: float) -> None:
        self._rng = rng
        self._current = rng.randbytes(16)
        self._previous = rng.randbytes(16)
        self._rotated_at = now

    def _rotate(self, now: float) -> None:
        periods = int((now - self._rotated_at) // ROTATE_EVERY)
        if periods <= 0:
            return
        self._previous = self._current if periods == 1 else self._rng.randbytes(16)
        self._current = self._rng.randbytes(16)
        self._rotated_at += periods * ROTATE_EVERY

    @staticmethod
    def _make(secret: bytes, ip: str) -> bytes:
        return hashlib.sha1(_packed(ip) + secret).digest()[:TOKEN_LENGTH]

    def token_for(self, ip: str, now: float) -> bytes:
        """The token to send to a ``get_peers`` / ``get`` querier at ``ip``."""
        if now - self._rotated_at >= ROTATE_EVERY:
            self._rotate(now)
        return self._make(self._current, ip)

    def check(self, token: bytes, ip: str, now: float) -> bool:
        """True when ``token`` was given to ``ip`` under the current or the previous secret."""
        self._rotate(now)
        return any(hmac.compare_digest(token, self._make(s, ip))
                   for s in (self._current, self._previous))
