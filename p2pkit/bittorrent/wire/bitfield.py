"""The ``bitfield`` message's payload as a list of pieces, and back (BEP 3 §bitfield).

BEP 3: "'bitfield' is only ever sent as the first message. Its payload is a bitfield with each
index that downloader has sent set to one and the rest set to zero. [...] The first byte of the
bitfield corresponds to indices 0 - 7 from high bit to low bit, respectively. The next one 8-15,
etc. Spare bits at the end are set to zero."

Pieces are held as a ``bytearray`` with one byte (0 or 1) per piece: indexing is as fast as a
list of bools and a 100,000-piece torrent costs 100 kB.

>>> have = decode_bitfield(b"\\xa0", 3)
>>> list(have)
[1, 0, 1]
>>> encode_bitfield(have)
b'\\xa0'
>>> decode_bitfield(b"\\xa1", 3)
Traceback (most recent call last):
  ...
p2pkit.errors.ParseError: bittorrent, field bitfield, offset 0: spare bits after piece 3 are set
"""

from __future__ import annotations

from collections.abc import Sequence

from p2pkit.errors import ParseError

__all__ = ["decode_bitfield", "encode_bitfield"]

_BITS = bytes.maketrans(b"01", b"\x00\x01")
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def decode_bitfield(data: bytes, piece_count: int) -> bytearray:
    """One byte (0/1) per piece; a wrong length or a set spare bit raises :class:`ParseError`
    (BEP 3: clients "drop the connection if they receive bitfields that are not of the correct
    size, or if the bitfield has any of the spare bits set")."""
    expected = (piece_count + 7) // 8
    if len(data) != expected:
        raise ParseError(f"{len(data)} bytes for {piece_count} pieces (expected {expected})",
                         protocol="bittorrent", path="bitfield", offset=0)
    if not data:
        return bytearray()
    bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b").encode("ascii")
    if b"1" in bits[piece_count:]:
        spare = bits.index(b"1", piece_count)
        raise ParseError(f"spare bits after piece {piece_count} are set", protocol="bittorrent",
                         path="bitfield", offset=spare // 8)
    return bytearray(bits[:piece_count].translate(_BITS))


def encode_bitfield(pieces: Sequence[int] | bytes | bytearray) -> bytes:
    """The payload for ``pieces`` (one truthy/falsy item per piece), spare bits zero."""
    raw = bytes(pieces) if isinstance(pieces, bytes | bytearray) else bytes(map(bool, pieces))
    if raw.strip(b"\x00\x01"):
        raw = bytes(map(bool, raw))
    digits = raw.translate(_DIGITS) + b"0" * (-len(raw) % 8)
    if not digits:
        return b""
    return int(digits, 2).to_bytes(len(digits) // 8, "big")
