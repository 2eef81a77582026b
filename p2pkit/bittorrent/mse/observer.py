"""Decrypting one captured direction of an MSE connection with its logged keys: MSE (Vuze wiki).

A passive third party with a key log entry (:mod:`p2pkit.bittorrent.mse.keylog`: S, SKEY and
crypto_select) finds the handshake blocks the way the two ends do (the same markers within the
same 512-byte bounds, :func:`~p2pkit.bittorrent.mse.connection.find_marker`) and derives the
same RC4 streams:

* the initiator's direction: Ya, PadA, then ``HASH('req1', S)``; 40 bytes of hashes; then,
  with ``HASH('keyA', S, SKEY)``, VC, crypto_provide, PadC and IA; then RC4 (same stream) or
  plaintext, as crypto_select said;
* the responder's direction: Yb, PadB, then ``ENCRYPT(VC)`` (the first 8 bytes of the
  ``HASH('keyB', S, SKEY)`` stream); VC, crypto_select, PadD; then RC4 or plaintext.

:meth:`MseObserver.feed` returns the payload (IA first) as it is recovered;
:attr:`MseObserver.preamble` is the count of wire bytes the handshake took, once known.
"""

from __future__ import annotations

from p2pkit.bittorrent.mse.connection import find_marker, gather_block
from p2pkit.bittorrent.mse.keylog import KeyLogEntry
from p2pkit.bittorrent.mse.keys import Rc4, rc4_key, req1
from p2pkit.bittorrent.wire.mse import KEY_LENGTH, VC, CryptoProvide, CryptoSelect, SyncHashes
from p2pkit.errors import ParseError, RemoteProtocolError

__all__ = ["MseObserver"]

_SYNC = SyncHashes.sizeof()


class MseObserver:
    """One direction (``side``: ``"initiator"`` or ``"responder"``) of the connection of
    ``entry``. A handshake that does not decrypt raises :class:`~p2pkit.errors.ParseError`."""

    def __init__(self, entry: KeyLogEntry, side: str) -> None:
        if side not in ("initiator", "responder"):
            raise ValueError("side is initiator or responder")
        self.entry = entry
        self.side = side
        self.method = entry.method
        name = b"keyA" if side == "initiator" else b"keyB"
        self._rc4 = Rc4(rc4_key(name, entry.secret, entry.info_hash))
        self._marker = (req1(entry.secret) if side == "initiator"
                        else Rc4(rc4_key(b"keyB", entry.secret, entry.info_hash)).update(VC))
        self._buf = bytearray()
        self._plain = bytearray()
        self._consumed = 0  # wire bytes taken out of _buf so far
        self._step = "key"
        #: Wire bytes of the handshake (keys, padding, hashes, the block, not IA), once over.
        self.preamble: int | None = None
        #: Bytes of initial payload the initiator sent (0 for the responder's direction).
        self.initial_payload = 0
        #: The padding lengths seen (PadA or PadB, then PadC or PadD).
        self.pads: list[int] = []

    @property
    def established(self) -> bool:
        return self._step == "payload"

    def feed(self, data: bytes) -> bytes:
        """Wire bytes in, payload out (nothing while the handshake is still arriving)."""
        if self._step == "payload":
            return self._rc4.update(data) if self.method == "rc4" else bytes(data)
        self._buf += data
        try:
            return self._advance()
        except RemoteProtocolError as e:
            raise ParseError(str(e).removeprefix("MSE: "), protocol="mse",
                             offset=self._consumed) from None

    def skip(self, length: int) -> None:
        """``length`` wire bytes were lost (a capture gap) after the handshake: the RC4
        stream moves on by as much, so what follows still decrypts."""
        if self._step == "payload" and self.method == "rc4":
            self._rc4.update(bytes(length))

    def _take(self, n: int) -> None:
        del self._buf[:n]
        self._consumed += n

    def _advance(self) -> bytes:
        buf = self._buf
        if self._step == "key":
            if len(buf) < KEY_LENGTH:
                return b""
            self._take(KEY_LENGTH)
            self._step = "marker"
        if self._step == "marker":
            before = len(buf)
            what = "HASH('req1', S)" if self.side == "initiator" else "ENCRYPT(VC)"
            if find_marker(buf, self._marker, what) is None:
                return b""
            self.pads.append(before - len(buf))
            self._consumed += before - len(buf)
            if self.side == "initiator":
                if len(buf) < _SYNC:
                    self._step = "sync"
                    return b""
                self._take(_SYNC)
            self._step = "block"
        if self._step == "sync":
            if len(buf) < _SYNC:
                return b""
            self._take(_SYNC)
            self._step = "block"
        before = len(buf)
        initiator = self.side == "initiator"
        block = gather_block(buf, self._plain, self._rc4, initiator)
        self._consumed += before - len(buf)
        if block is None:
            return b""
        if initiator:
            value = CryptoProvide.parse(block)
            self.pads.append(len(value.pad_c))
            initial = bytes(value.initial_payload)
        else:
            value = CryptoSelect.parse(block)
            self.pads.append(len(value.pad_d))
            initial = b""
        self.initial_payload = len(initial)
        self.preamble = self._consumed - len(initial)
        self._step = "payload"
        rest = bytes(buf)
        buf.clear()
        self._plain.clear()
        return initial + (self.feed(rest) if rest else b"")
