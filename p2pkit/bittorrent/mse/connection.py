"""The MSE/PE handshake and the encrypted stream after it, sans-I/O: MSE (Vuze wiki).

One :class:`MseConnection` sits *below* the peer wire (it transforms bytes and knows nothing
of BitTorrent messages): the driver feeds it what the socket received and writes what
:meth:`~p2pkit.core.Outbox.data_to_send` returns; the peer-wire core above it gets
:class:`PayloadReceived` events and hands its own bytes to :meth:`~MseConnection.send_payload`.

The five steps (see :mod:`p2pkit.bittorrent.wire.mse` for the fields), and how each side
finds the next block in a stream whose padding lengths it does not know:

* A (initiator) sends Ya + PadA. B (responder) answers Yb + PadB as soon as it has Ya.
* A, once it has Yb, sends ``HASH('req1', S)``, ``HASH('req2', SKEY) xor HASH('req3', S)``
  and the RC4-encrypted ``VC, crypto_provide, len(PadC), PadC, len(IA), IA``. IA (the initial
  payload) is what the layer above queued so far: the BitTorrent handshake.
* B synchronises: "B [...] scans for HASH('req1', S)" within the 512 bytes PadA may take;
  it recovers ``HASH('req2', SKEY)`` and identifies the torrent among its info-hashes, then
  answers ``ENCRYPT(VC, crypto_select, len(padD), padD)``.
* A synchronises on ``ENCRYPT(VC)`` (the first 8 bytes of B's keystream) within PadB's 512
  bytes, checks that crypto_select is one method it offered, and from then on both sides send
  plaintext or RC4 as selected.

Everything is bounded: the markers must appear within :data:`MAX_PAD` bytes, padding
lengths are checked by the schemas, IA by ``MAX_INITIAL_PAYLOAD``, and the whole exchange
by :data:`HANDSHAKE_TIMEOUT` (``get_timer``/``handle_timer``). Any breach raises
:class:`~p2pkit.errors.RemoteProtocolError` (drop that connection).

A responder with ``allow_legacy`` also accepts a plain BitTorrent connection: if the first
bytes are ``\\x13BitTorrent protocol`` (BEP 3 handshake) it passes everything through.

>>> import random
>>> ih = bytes(range(20))
>>> a = MseConnection.initiator(info_hash=ih, rng=random.Random(1), now=0.0)
>>> b = MseConnection.responder(info_hashes=[ih], rng=random.Random(2), now=0.0)
>>> a.send_payload(b"\\x13BitTorrent protocol")
>>> b.receive_data(a.data_to_send(), 0.0); a.receive_data(b.data_to_send(), 0.0)
>>> b.receive_data(a.data_to_send(), 0.0); a.receive_data(b.data_to_send(), 0.0)
>>> [type(e).__name__ for e in events(b)], events(a)[0].method
(['MseEstablished', 'PayloadReceived'], 'rc4')
>>> a.send_payload(b"ping"); b.receive_data(a.data_to_send(), 0.0); events(b)
[PayloadReceived(data=b'ping')]
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from p2pkit.bittorrent.mse.keys import (
    Rc4,
    new_private_key,
    public_key,
    rc4_key,
    req1,
    req2,
    req3,
    shared_secret,
)
from p2pkit.bittorrent.wire.mse import (
    CRYPTO_PLAINTEXT,
    CRYPTO_RC4,
    KEY_LENGTH,
    MAX_PAD,
    VC,
    CryptoHead,
    CryptoProvide,
    CryptoSelect,
    KeyExchange,
    SyncHashes,
)
from p2pkit.core import NEED_DATA, Event, NeedData, Outbox
from p2pkit.errors import LimitExceeded, LocalProtocolError, ParseError, RemoteProtocolError

__all__ = ["HANDSHAKE_TIMEOUT", "LEGACY_HANDSHAKE", "MAX_INITIAL_PAYLOAD", "METHODS",
           "MseConnection", "MseEstablished", "PayloadReceived", "SendPayload", "events",
           "find_marker",
           "gather_block", "method_bits"]

#: Seconds the whole key exchange may take before the connection is given up.
HANDSHAKE_TIMEOUT = 30.0
#: Bytes of initial payload accepted (len(IA) is 2 bytes; BitTorrent's handshake is 68).
MAX_INITIAL_PAYLOAD = 16 * 1024
#: The first bytes of a plain BitTorrent connection (BEP 3: pstrlen 19, pstr).
LEGACY_HANDSHAKE = b"\x13BitTorrent protocol"
#: Method names, as used in events, keylogs and the CLI.
METHODS = {CRYPTO_PLAINTEXT: "plaintext", CRYPTO_RC4: "rc4"}

_SYNC_LENGTH = SyncHashes.sizeof()
_HEAD = CryptoHead.sizeof()


def method_bits(methods: Iterable[str]) -> int:
    """``{"rc4", "plaintext"}`` -> the crypto_provide bitfield (``0x03``)."""
    names = {name: bit for bit, name in METHODS.items()}
    bits = 0
    for method in methods:
        bits |= names[method]
    return bits


@dataclass(frozen=True, kw_only=True)
class MseEstablished(Event):
    """The handshake is over (MSE (Vuze wiki) step 4 sent or received).

    ``method``: ``"rc4"`` or ``"plaintext"`` (crypto_select), or ``"none"`` for a plain
    BitTorrent connection a responder accepted without MSE. ``info_hash``: SKEY;
    ``secret``: S (what a keylog records; ``None`` without MSE).
    """

    method: str
    info_hash: bytes | None = None
    secret: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class PayloadReceived(Event):
    """Decrypted payload (the peer wire) received: IA, then the payload stream."""

    data: bytes


@dataclass(frozen=True, kw_only=True)
class SendPayload(Event):
    """Payload (peer-wire bytes) the layer above asks to send (:meth:`MseConnection.send`)."""

    data: bytes


def _bits_value(flags: object) -> int:
    value = 0
    for bit, name in METHODS.items():
        if getattr(flags, name, False):
            value |= bit
    return value | int(getattr(flags, "unknown", 0))


class MseConnection(Outbox):
    """One side of one MSE connection; use :meth:`initiator` or :meth:`responder`.

    ``provide`` is the crypto_provide bitfield an initiator offers, or the methods a responder
    accepts (it selects RC4 when both are possible). ``private_key``, ``pad_lengths`` come
    from ``rng`` unless given (tests give fixed ones to get fixed bytes).
    """

    def __init__(self, *, initiator: bool, info_hash: bytes | None = None,
                 info_hashes: Iterable[bytes] = (), provide: int = CRYPTO_RC4 | CRYPTO_PLAINTEXT,
                 allow_legacy: bool = False, rng: random.Random, now: float,
                 private_key: int | None = None, pad_length: int | None = None,
                 timeout: float = HANDSHAKE_TIMEOUT) -> None:
        if not provide & (CRYPTO_RC4 | CRYPTO_PLAINTEXT):
            raise ValueError("provide at least one of rc4 and plaintext")
        self.is_initiator = initiator
        self.provide = provide
        self.allow_legacy = allow_legacy
        self.info_hash = info_hash
        self._skeys = {req2(h): h for h in info_hashes}
        self._private = private_key if private_key is not None else new_private_key(rng)
        pad = pad_length if pad_length is not None else rng.randint(0, MAX_PAD)
        self._deadline: float | None = now + timeout
        self._timed_out = False
        #: "handshake", "legacy" (plain BitTorrent, responder), "established".
        self.state = "handshake"
        #: crypto_select once known: CRYPTO_RC4 or CRYPTO_PLAINTEXT (0 before, and for legacy).
        self.method = 0
        self.secret: bytes | None = None
        self._inbuf = bytearray()  # wire bytes not consumed yet
        self._plain = bytearray()  # decrypted handshake block being gathered
        self._out = bytearray()  # wire bytes to send
        self._pending = bytearray()  # payload from above, waiting for the handshake
        self._events: deque[Event] = deque()
        self._decrypt: Rc4 | None = None
        self._encrypt: Rc4 | None = None
        self._step = "key"  # what this side waits for next
        self._their_key: bytes | None = None
        self._marker = b""
        if initiator and info_hash is None:
            raise ValueError("an initiator names its torrent (info_hash)")
        if initiator:
            self._send_key(rng, pad)
        else:
            self._pad = (rng, pad)

    @classmethod
    def initiator(cls, *, info_hash: bytes, rng: random.Random, now: float,
                  provide: int = CRYPTO_RC4 | CRYPTO_PLAINTEXT, **options: object
                  ) -> MseConnection:
        """Side A: dials, offers ``provide``, identifies the torrent by ``info_hash``."""
        return cls(initiator=True, info_hash=info_hash, rng=rng, now=now, provide=provide,
                   **options)  # type: ignore[arg-type]

    @classmethod
    def responder(cls, *, info_hashes: Iterable[bytes], rng: random.Random, now: float,
                  provide: int = CRYPTO_RC4 | CRYPTO_PLAINTEXT, allow_legacy: bool = False,
                  **options: object) -> MseConnection:
        """Side B: accepts; the torrent is one of ``info_hashes``."""
        return cls(initiator=False, info_hashes=info_hashes, rng=rng, now=now,
                   provide=provide, allow_legacy=allow_legacy, **options)  # type: ignore[arg-type]

    # -- the StreamCore surface ---------------------------------------------------------------

    @property
    def established(self) -> bool:
        """Past the handshake (MSE or a legacy plain connection)."""
        return self.state != "handshake"

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket (``b""``: the remote closed)."""
        if not data:
            if self.state == "handshake":
                raise RemoteProtocolError("MSE: connection closed during the key exchange")
            return
        if self.state == "established":
            self._deliver(data)
            return
        if self.state == "legacy":
            self._events.append(PayloadReceived(data=bytes(data)))
            return
        self._inbuf += data
        self._advance()

    def next_event(self) -> Event | NeedData:
        """:class:`MseEstablished` once, then :class:`PayloadReceived` events."""
        if self._timed_out:
            self._timed_out = False
            raise RemoteProtocolError("MSE: key exchange not complete within "
                                      f"{HANDSHAKE_TIMEOUT:g} s")
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def send_payload(self, data: bytes) -> None:
        """Payload (peer-wire bytes) to send: encrypted, or held until the handshake is over
        (an initiator's first bytes go out as IA)."""
        if not data:
            return
        if self.state == "established" and not self._pending:
            self._out += self._encrypt.update(data) if self.method == CRYPTO_RC4 else data
        elif self.state == "legacy":
            self._out += data
        else:
            self._pending += data

    def send(self, event: Event, now: float) -> bytes:
        """The StreamCore surface of :meth:`send_payload`: queue ``event.data`` (a
        ``SendPayload``) and return every wire byte due now."""
        if not isinstance(event, SendPayload):
            raise LocalProtocolError(f"MSE sends payload only, not {type(event).__name__}")
        self.send_payload(event.data)
        return self.data_to_send()

    def get_timer(self) -> float | None:
        return self._deadline if self.state == "handshake" else None

    def handle_timer(self, now: float) -> None:
        if self.state == "handshake" and self._deadline is not None and now >= self._deadline:
            self._deadline = None
            self._timed_out = True

    # -- the handshake -------------------------------------------------------------------------

    def _send_key(self, rng: random.Random, pad: int) -> None:
        self._out += KeyExchange.build(dict(public_key=public_key(self._private),
                                            pad=rng.randbytes(pad)))

    def _advance(self) -> None:
        while self.state == "handshake":
            before = self._step
            getattr(self, "_on_" + self._step)()
            if self._step == before:
                return

    def _on_key(self) -> None:
        buf = self._inbuf
        if not self.is_initiator and self.allow_legacy:
            head = bytes(buf[:len(LEGACY_HANDSHAKE)])
            if LEGACY_HANDSHAKE.startswith(head):
                if len(head) < len(LEGACY_HANDSHAKE):
                    return
                self.state = "legacy"
                self._events.append(MseEstablished(method="none"))
                self._events.append(PayloadReceived(data=bytes(buf)))
                buf.clear()
                if self._pending:
                    self._out += self._pending
                    self._pending.clear()
                return
        elif not self.is_initiator and bytes(buf[:len(LEGACY_HANDSHAKE)]) == LEGACY_HANDSHAKE:
            raise RemoteProtocolError("MSE: a plaintext BitTorrent handshake, and this side "
                                      "requires encryption")
        if len(buf) < KEY_LENGTH:
            return
        self._their_key = bytes(buf[:KEY_LENGTH])
        del buf[:KEY_LENGTH]
        self.secret = shared_secret(self._their_key, self._private)
        if self.is_initiator:
            self._send_crypto_provide()
            self._marker = Rc4(rc4_key(b"keyB", self.secret, self.info_hash)).update(VC)
            self._step = "vc"
        else:
            rng, pad = self._pad
            self._send_key(rng, pad)
            self._marker = req1(self.secret)
            self._step = "req1"

    def _send_crypto_provide(self) -> None:
        assert self.secret is not None and self.info_hash is not None
        skey = self.info_hash
        initial = bytes(self._pending[:MAX_INITIAL_PAYLOAD])
        del self._pending[:len(initial)]
        hashes = bytes(a ^ b for a, b in zip(req2(skey), req3(self.secret)))
        self._encrypt = Rc4(rc4_key(b"keyA", self.secret, skey))
        block = CryptoProvide.build(dict(crypto_provide=self.provide, pad_c=b"",
                                         initial_payload=initial))
        self._out += SyncHashes.build(dict(req1=req1(self.secret), req2_xor_req3=hashes))
        self._out += self._encrypt.update(block)

    def _find_marker(self, what: str) -> int | None:
        return find_marker(self._inbuf, self._marker, what)

    def _on_req1(self) -> None:  # responder
        if self._find_marker("HASH('req1', S)") is None:
            return
        buf = self._inbuf
        if len(buf) < _SYNC_LENGTH:
            return
        sync = SyncHashes.parse(bytes(buf[:_SYNC_LENGTH]))
        del buf[:_SYNC_LENGTH]
        wanted = bytes(a ^ b for a, b in zip(sync.req2_xor_req3, req3(self.secret)))
        skey = self._skeys.get(wanted)
        if skey is None:
            raise RemoteProtocolError("MSE: HASH('req2', SKEY) names no torrent served here")
        self.info_hash = skey
        self._decrypt = Rc4(rc4_key(b"keyA", self.secret, skey))
        self._encrypt = Rc4(rc4_key(b"keyB", self.secret, skey))
        self._step = "crypto_provide"

    def _gather(self, with_initial_payload: bool) -> bytes | None:
        return gather_block(self._inbuf, self._plain, self._decrypt, with_initial_payload)

    def _on_crypto_provide(self) -> None:  # responder
        try:
            block = self._gather(True)
            if block is None:
                return
            value = CryptoProvide.parse(block)
        except ParseError as e:
            raise RemoteProtocolError(f"MSE: crypto_provide block: {e}") from e
        offered = _bits_value(value.crypto_provide)
        common = offered & self.provide
        if not common:
            raise RemoteProtocolError(f"MSE: crypto_provide {offered:#x} offers none of the "
                                      f"methods accepted here ({self.provide:#x})")
        self.method = CRYPTO_RC4 if common & CRYPTO_RC4 else CRYPTO_PLAINTEXT
        self._out += self._encrypt.update(CryptoSelect.build(dict(
            crypto_select=self.method, pad_d=b"")))
        self._plain.clear()
        self._establish(bytes(value.initial_payload))

    def _on_vc(self) -> None:  # initiator
        if self._find_marker("ENCRYPT(VC)") is None:
            return
        self._decrypt = Rc4(rc4_key(b"keyB", self.secret, self.info_hash))
        self._step = "crypto_select"

    def _on_crypto_select(self) -> None:  # initiator
        try:
            block = self._gather(False)
            if block is None:
                return
            value = CryptoSelect.parse(block)
        except ParseError as e:
            raise RemoteProtocolError(f"MSE: crypto_select block: {e}") from e
        selected = _bits_value(value.crypto_select)
        if selected not in (CRYPTO_RC4, CRYPTO_PLAINTEXT) or not selected & self.provide:
            raise RemoteProtocolError(f"MSE: crypto_select {selected:#x} is not one method "
                                      f"offered in crypto_provide {self.provide:#x}")
        self.method = selected
        self._plain.clear()
        self._establish(b"")

    def _establish(self, initial: bytes) -> None:
        self.state = "established"
        self._deadline = None
        self._events.append(MseEstablished(method=METHODS[self.method],
                                           info_hash=self.info_hash, secret=self.secret))
        if initial:
            self._events.append(PayloadReceived(data=initial))
        rest, pending = bytes(self._inbuf), bytes(self._pending)
        self._inbuf.clear()
        self._pending.clear()
        if rest:
            self._deliver(rest)
        self.send_payload(pending)

    def _deliver(self, data: bytes) -> None:
        if self.method == CRYPTO_RC4:
            data = self._decrypt.update(data)
        self._events.append(PayloadReceived(data=bytes(data)))


def find_marker(buf: bytearray, marker: bytes, what: str) -> int | None:
    """Where ``marker`` starts in ``buf`` (the bytes after a public key), dropping what
    precedes it; None while it may still come. "[...] within the 512 bytes of padding":
    :class:`RemoteProtocolError` once it cannot."""
    window = MAX_PAD + len(marker)
    at = buf.find(marker, 0, window)
    if at < 0:
        if len(buf) >= window:
            raise RemoteProtocolError(f"MSE: {what} not found within {MAX_PAD} bytes of "
                                      "padding after the public key")
        return None
    del buf[:at]
    return at


def gather_block(inbuf: bytearray, plain: bytearray, decrypt: Rc4,
                 with_initial_payload: bool) -> bytes | None:
    """Move bytes from ``inbuf`` to ``plain``, decrypted, but exactly those of the handshake
    block (not one more: what follows may be plaintext): 14 bytes (VC, the bitfield,
    len(Pad)), then the padding, then for crypto_provide len(IA) and IA. The whole block once
    gathered, else None. :class:`LimitExceeded` for padding or IA over their bounds."""
    while True:
        need = _HEAD
        if len(plain) >= _HEAD:
            head = CryptoHead.parse(bytes(plain[:_HEAD]))  # VC, and padding <= 512
            need = _HEAD + head.pad_length + (2 if with_initial_payload else 0)
            if with_initial_payload and len(plain) >= need:
                initial = int.from_bytes(plain[need - 2:need], "big")  # len(IA)
                if initial > MAX_INITIAL_PAYLOAD:
                    raise LimitExceeded(f"initial payload of {initial} bytes, more than "
                                        f"{MAX_INITIAL_PAYLOAD}", protocol="mse",
                                        path="initial_payload", offset=need - 2)
                need += initial
        take = bytes(inbuf[:need - len(plain)])
        if not take:
            return bytes(plain) if len(plain) >= need else None
        del inbuf[:len(take)]
        plain += decrypt.update(take)


def events(conn: MseConnection) -> list[Event]:
    """Every event ``conn`` holds now (for tests and examples)."""
    out = []
    while (event := conn.next_event()) is not NEED_DATA:
        out.append(event)
    return out
