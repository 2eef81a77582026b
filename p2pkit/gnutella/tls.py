"""TLS on a Gnutella 0.6 link after the handshake, sans-I/O (gnet-TLS-upgrade).

Spec: gnet-TLS-upgrade §2: the connecting servent sends ``Upgrade: TLS/1.0``; a servent willing
to upgrade answers ``Upgrade: TLS/1.0`` and ``Connection: Upgrade``; the connecting servent
acknowledges with ``Connection: Upgrade`` in its final block and "At the end of its header
reply, it will switch the protocol to TLS"; "If the TLS handshake cannot proceed correctly,
both servents must close the connection". The servent being connected to is the TLS server,
the connecting one the TLS client (as gtk-gnutella does).

:class:`TlsLayer` is the stdlib :mod:`ssl` module over memory BIOs (:meth:`ssl.SSLContext.wrap_bio`):
ciphertext in (:meth:`TlsLayer.receive` returns the plaintext it decrypts), plaintext in
(:meth:`TlsLayer.send`), ciphertext out (:meth:`TlsLayer.data_to_send`). It touches no socket,
so the servent's connections stay sans-I/O and two servents run TLS over
:class:`~p2pkit.core.StreamPair`. Gnutella's TLS is opportunistic (no names, no CAs): the
server's certificate is self-signed, made once per process with the ``cryptography``
package (:func:`server_context`), and the client does not verify it.

>>> client, server = TlsLayer(server_side=False), TlsLayer(server_side=True)
>>> client.send(b"GNUTELLA ping")
>>> got = b""
>>> for _ in range(3):  # the TLS handshake, then the record
...     got += server.receive(client.data_to_send())
...     _ = client.receive(server.data_to_send())
>>> got, client.established, server.version.startswith("TLS")
(b'GNUTELLA ping', True, True)
>>> TlsLayer(server_side=True).receive(b"GNUTELLA/0.6 200 OK\\r\\n\\r\\n")
Traceback (most recent call last):
...
p2pkit.errors.ParseError: gnutella, field tls: TLS handshake failed: WRONG_VERSION_NUMBER
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from functools import lru_cache

from p2pkit.errors import LimitExceeded, ParseError

__all__ = ["MAX_TLS_BUFFER", "TLS_TOKEN", "TlsLayer", "client_context", "server_context"]

PROTOCOL = "gnutella"
#: gnet-TLS-upgrade §2: the protocol named in ``Upgrade:`` (compared case-insensitively).
TLS_TOKEN = "TLS/1.0"
#: Ciphertext or plaintext held at once on one side of the layer (a peer that never reads, or
#: records that never complete); beyond it the connection ends.
MAX_TLS_BUFFER = 1024 * 1024
_READ = 64 * 1024


@lru_cache(maxsize=1)
def server_context() -> ssl.SSLContext:
    """The TLS server context: a self-signed certificate and key made at first use (one per
    process), with the ``cryptography`` package."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p2pkit gnutella servent")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    fd, path = tempfile.mkstemp(suffix=".pem")  # load_cert_chain reads files only
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
    return context


@lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext:
    """The TLS client context: opportunistic encryption, the peer's certificate not checked
    (Gnutella servents have self-signed certificates and no names)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TlsLayer:
    """One connection's TLS, over memory BIOs. Errors raise :class:`ParseError` (path ``tls``)."""

    def __init__(self, *, server_side: bool) -> None:
        context = server_context() if server_side else client_context()
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_side=server_side)
        self.server_side = server_side
        #: True once the TLS handshake is done.
        self.established = False
        self._pending = bytearray()  # plaintext sent before the handshake is done
        #: Ciphertext bytes received and sent (the dissector's byte counts, for comparison).
        self.received_bytes = 0
        self.sent_bytes = 0
        self._handshake()

    @property
    def version(self) -> str:
        return self._ssl.version() or ""

    def receive(self, data: bytes) -> bytes:
        """Ciphertext from the peer; returns the plaintext it completes (maybe ``b""``)."""
        self.received_bytes += len(data)
        self._in.write(data)
        if self._in.pending > MAX_TLS_BUFFER:
            raise LimitExceeded(f"{self._in.pending} TLS bytes buffered", protocol=PROTOCOL,
                                path="tls")
        if not self.established:
            self._handshake()
            if not self.established:
                return b""
        out = bytearray()
        while True:
            try:
                chunk = self._ssl.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify: the TCP close follows
                break
            except ssl.SSLError as e:
                raise ParseError(f"TLS record: {e.reason or e}", protocol=PROTOCOL,
                                 path="tls") from None
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def send(self, data: bytes) -> None:
        """Plaintext to send (held until the TLS handshake is done)."""
        if not self.established:
            self._pending += data
            if len(self._pending) > MAX_TLS_BUFFER:
                raise LimitExceeded("plaintext held behind an unfinished TLS handshake",
                                    protocol=PROTOCOL, path="tls")
            return
        self._ssl.write(data)

    @property
    def pending(self) -> int:
        """Ciphertext bytes waiting for :meth:`data_to_send`."""
        return self._out.pending

    def data_to_send(self) -> bytes:
        """Ciphertext to write (handshake records, then application data)."""
        data = self._out.read()
        self.sent_bytes += len(data)
        return data

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return
        except ssl.SSLError as e:
            raise ParseError(f"TLS handshake failed: {e.reason or e}", protocol=PROTOCOL,
                             path="tls") from None
        self.established = True
        if self._pending:
            self._ssl.write(bytes(self._pending))
            self._pending.clear()
