"""Multibase: a one-character prefix naming the base a text encoding uses (multiformats/multibase).

The prefixes are those of multibase's ``multibase.csv``: ``b`` base32 (RFC 4648, lower case, no
padding), ``B`` its upper-case form, ``z`` base58btc (the Bitcoin alphabet; from the ``base58``
package), ``f``/``F`` base16, ``m`` base64 (RFC 4648, no padding), ``M`` base64 with padding,
``u`` base64url (no padding), ``U`` base64url with padding, ``k`` base36 (lower case).

>>> encode("base32", b"hello world")
'bnbswy3dpeb3w64tmmq'
>>> decode("zStV1DL6CwTryKyV")
('base58btc', b'hello world')
>>> decode("xyz")  # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: multibase, offset 0: unknown multibase prefix 'x'
"""

from __future__ import annotations

import base64
import binascii
import re

import base58

from p2pkit.errors import LimitExceeded, ParseError

__all__ = ["BASES", "MAX_TEXT_LENGTH", "PREFIXES", "decode", "encode"]

#: Longest multibase text decoded (a CID or multiaddr is tens of characters; a signed
#: envelope in base64 a few KiB): checked before decoding.
MAX_TEXT_LENGTH = 1 << 20

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return "0" * zeros + out


def _b36decode(text: str) -> bytes:
    text = text.lower()
    zeros = len(text) - len(text.lstrip("0"))
    n = int(text, 36) if text[zeros:] else 0
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def _b64decode(text: str, altchars: bytes | None = None) -> bytes:
    text = text.rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)


#: base name -> (prefix, encoder bytes -> str, decoder str -> bytes, alphabet regex).
BASES = {
    "base16": ("f", lambda b: b.hex(), bytes.fromhex, r"[0-9a-f]*"),
    "base16upper": ("F", lambda b: b.hex().upper(), bytes.fromhex, r"[0-9A-F]*"),
    "base32": ("b", lambda b: base64.b32encode(b).decode().rstrip("=").lower(), _b32decode,
               r"[a-z2-7]*"),
    "base32upper": ("B", lambda b: base64.b32encode(b).decode().rstrip("="), _b32decode,
                    r"[A-Z2-7]*"),
    "base36": ("k", _b36encode, _b36decode, r"[0-9a-z]*"),
    "base58btc": ("z", lambda b: base58.b58encode(b).decode(), base58.b58decode,
                  r"[1-9A-HJ-NP-Za-km-z]*"),
    "base64": ("m", lambda b: base64.b64encode(b).decode().rstrip("="), _b64decode,
               r"[A-Za-z0-9+/]*"),
    "base64pad": ("M", lambda b: base64.b64encode(b).decode(), _b64decode, r"[A-Za-z0-9+/]*=*"),
    "base64url": ("u", lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
                  lambda t: _b64decode(t, b"-_"), r"[A-Za-z0-9_-]*"),
    "base64urlpad": ("U", lambda b: base64.urlsafe_b64encode(b).decode(),
                     lambda t: _b64decode(t, b"-_"), r"[A-Za-z0-9_-]*=*"),
}
#: prefix character -> base name.
PREFIXES = {prefix: name for name, (prefix, *_) in BASES.items()}


def encode(base: str, data: bytes) -> str:
    """``data`` in multibase ``base``, with its prefix character.

    >>> encode("base16", b"\\x01\\x70")
    'f0170'
    """
    try:
        prefix, encoder, _, _ = BASES[base]
    except KeyError:
        raise ParseError(f"unknown multibase {base!r} (known: {', '.join(BASES)})",
                         protocol="multibase") from None
    return prefix + encoder(bytes(data))


def decode(text: str) -> tuple[str, bytes]:
    """``(base name, bytes)`` of a multibase string."""
    if not isinstance(text, str) or not text:
        raise ParseError("empty or non-text multibase value", protocol="multibase", offset=0)
    if len(text) > MAX_TEXT_LENGTH:
        raise LimitExceeded(f"{len(text)} characters (at most {MAX_TEXT_LENGTH})",
                            protocol="multibase", offset=0)
    name = PREFIXES.get(text[0])
    if name is None:
        raise ParseError(f"unknown multibase prefix {text[0]!r}", protocol="multibase", offset=0)
    _, _, decoder, alphabet = BASES[name]
    body = text[1:]
    bad = re.match(alphabet, body)
    if bad is None or bad.end() != len(body):
        at = 0 if bad is None else bad.end()
        raise ParseError(f"character {body[at]!r} is not in {name}'s alphabet",
                         protocol="multibase", offset=1 + at)
    try:
        return name, decoder(body)
    except (ValueError, binascii.Error) as e:
        raise ParseError(f"invalid {name}: {e}", protocol="multibase", offset=1) from None
