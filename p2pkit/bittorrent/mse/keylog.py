"""MSE key log files: what a dissector needs to decrypt a connection, one line per connection.

In the spirit of ``SSLKEYLOGFILE`` (NSS key log format: a label, then hex fields, ``#``
comments), a peer started with ``--keylog FILE`` appends one line per MSE connection once its
handshake is over (MSE (Vuze wiki): S and SKEY give both RC4 keys,
``HASH('keyA', S, SKEY)`` and ``HASH('keyB', S, SKEY)``, and ``HASH('req1', S)``, the
marker where the initiator's encrypted stream begins)::

    MSE_SECRET <initiator host:port> <responder host:port> <info-hash hex> <S hex> <method>

``method`` is crypto_select (``rc4`` or ``plaintext``): the initiator's direction switches to
it after the initial payload, and it is only on the other direction's wire.

>>> line = format_entry(KeyLogEntry(initiator="127.0.0.3:51355", responder="127.0.0.2:6881",
...                                 info_hash=bytes(20), secret=bytes(96), method="rc4"))
>>> line.split()[:3]
['MSE_SECRET', '127.0.0.3:51355', '127.0.0.2:6881']
>>> keylog = parse_keylog(line + "\\n# a comment\\n")
>>> keylog.find("127.0.0.3:51355", "127.0.0.2:6881")[1]
'initiator'
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pkit.bittorrent.mse.connection import METHODS
from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.keylog import KeyLogAppender

__all__ = ["LABEL", "MAX_KEYLOG_ENTRIES", "KeyLog", "KeyLogEntry", "KeyLogWriter",
           "format_entry", "parse_keylog"]

LABEL = "MSE_SECRET"
#: Lines read from one key log (each is ~330 bytes; this bounds memory to a few hundred MB).
MAX_KEYLOG_ENTRIES = 1_000_000
_PROTOCOL = "mse-keylog"


@dataclass(frozen=True, kw_only=True)
class KeyLogEntry:
    """One MSE connection's keys: endpoints as ``host:port`` (``[v6]:port``), SKEY, S and
    crypto_select."""

    initiator: str
    responder: str
    info_hash: bytes
    secret: bytes
    method: str

    def __post_init__(self) -> None:
        if len(self.info_hash) != 20 or len(self.secret) != 96:
            raise ValueError("an MSE key log entry has a 20-byte info-hash and a 96-byte S")
        if self.method not in METHODS.values():
            raise ValueError(f"method {self.method!r} is not one of {sorted(METHODS.values())}")


def format_entry(entry: KeyLogEntry) -> str:
    """The key log line of ``entry`` (no newline)."""
    return " ".join((LABEL, entry.initiator, entry.responder, entry.info_hash.hex(),
                     entry.secret.hex(), entry.method))


class KeyLog:
    """Entries by connection: :meth:`find` tells which side of an entry a direction is."""

    def __init__(self, entries: list[KeyLogEntry] | tuple[KeyLogEntry, ...] = ()) -> None:
        self._by_pair: dict[tuple[str, str], KeyLogEntry] = {}
        for entry in entries:
            self._by_pair[(entry.initiator, entry.responder)] = entry

    def __len__(self) -> int:
        return len(self._by_pair)

    def find(self, src: str, dst: str) -> tuple[KeyLogEntry, str] | None:
        """The entry of the direction ``src`` -> ``dst`` and whether ``src`` is its
        ``"initiator"`` or ``"responder"``; None when the log has no such connection."""
        entry = self._by_pair.get((src, dst))
        if entry is not None:
            return entry, "initiator"
        entry = self._by_pair.get((dst, src))
        if entry is not None:
            return entry, "responder"
        return None


def parse_keylog(text: str) -> KeyLog:
    """Read a key log. Blank lines, ``#`` comments and other labels (an SSLKEYLOGFILE shared
    with TLS programs) are skipped; a malformed ``MSE_SECRET`` line is a
    :class:`~p2pkit.errors.ParseError` at its offset."""
    entries = []
    offset = 0
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if fields and fields[0] == LABEL:
            if len(entries) >= MAX_KEYLOG_ENTRIES:
                raise LimitExceeded(f"more than {MAX_KEYLOG_ENTRIES} entries",
                                    protocol=_PROTOCOL, offset=offset)
            try:
                if len(fields) != 6:
                    raise ValueError(f"{len(fields)} fields, expected 6")
                _, initiator, responder, info_hash, secret, method = fields
                entries.append(KeyLogEntry(initiator=initiator, responder=responder,
                                           info_hash=bytes.fromhex(info_hash),
                                           secret=bytes.fromhex(secret), method=method))
            except ValueError as e:
                raise ParseError(f"bad {LABEL} line: {e}", protocol=_PROTOCOL,
                                 offset=offset) from None
        offset += len(line.encode())
    return KeyLog(entries)


class KeyLogWriter(KeyLogAppender):
    """Appends entries to a key log file, one flushed line each (several peers may share a
    file, as with SSLKEYLOGFILE)."""

    def write(self, entry: KeyLogEntry) -> None:
        self.write_line(format_entry(entry))
