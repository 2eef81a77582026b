"""Noise key log files: what a dissector needs to decrypt a libp2p session, one line each.

Same file conventions as the MSE key log (:mod:`p2pkit.bittorrent.mse.keylog`, in the spirit
of ``SSLKEYLOGFILE``: a label, then fields, ``#`` comments, other labels skipped, so one file
can hold both). A host started with ``--keylog FILE`` appends one line per connection once its
Noise handshake is over::

    NOISE_SECRETS <initiator host:port> <responder host:port> <initiator e hex>
                  <initiator-to-responder key hex> <responder-to-initiator key hex> <h hex>

(one line), and, when the host keeps them, one line with its own handshake secrets::

    NOISE_HANDSHAKE_SECRETS <initiator e hex> <initiator|responder> <static secret hex>
                            <ephemeral secret hex>

(p2pkit draws a fresh static Noise key per connection: neither is the identity key). With
them the whole handshake replays (:mod:`p2pkit.ipfs.noise_replay`): the payloads, the static
keys and the signed identities become visible too. The two keys are the CipherStates of ``Split()`` (Noise Protocol Framework §5.2:
"the first for encrypting transport messages from initiator to responder, and the second for
messages in the other direction"); both start at nonce 0 after the handshake. The initiator's
ephemeral key ``e`` travels in clear in the first handshake message (libp2p noise §XX), so a
dissector finds the connection by it even behind NAT; ``h`` is the handshake hash (§11.2),
equal on both ends.

>>> entry = NoiseKeyLogEntry(initiator="127.0.0.1:40000", responder="127.0.0.1:4001",
...     initiator_ephemeral=bytes(32), initiator_key=bytes(range(32)),
...     responder_key=bytes(32), handshake_hash=bytes(32))
>>> keylog = parse_noise_keylog("# comment\\nMSE_SECRET x\\n" + format_noise_entry(entry))
>>> keylog.find(bytes(32)).initiator_key == bytes(range(32)), keylog.find(b"?" * 32)
(True, None)
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.keylog import KeyLogAppender

__all__ = ["HANDSHAKE_LABEL", "LABEL", "MAX_KEYLOG_ENTRIES", "NoiseHandshakeEntry",
           "NoiseKeyLog", "NoiseKeyLogEntry", "NoiseKeyLogWriter", "format_noise_entry",
           "parse_noise_keylog"]

LABEL = "NOISE_SECRETS"
HANDSHAKE_LABEL = "NOISE_HANDSHAKE_SECRETS"
#: Lines read from one key log (each is ~330 bytes: memory stays within a few hundred MB).
MAX_KEYLOG_ENTRIES = 1_000_000
_PROTOCOL = "noise-keylog"
_FIELDS = 7


@dataclass(frozen=True, kw_only=True)
class NoiseKeyLogEntry:
    """One Noise session's transport keys; endpoints as ``host:port`` (``[v6]:port``)."""

    initiator: str
    responder: str
    initiator_ephemeral: bytes
    initiator_key: bytes
    responder_key: bytes
    handshake_hash: bytes

    def __post_init__(self) -> None:
        for name in ("initiator_ephemeral", "initiator_key", "responder_key", "handshake_hash"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"{name} must be 32 bytes")
        if not self.initiator or not self.responder:
            raise ValueError("endpoints must not be empty")


@dataclass(frozen=True, kw_only=True)
class NoiseHandshakeEntry:
    """One end's X25519 secrets of a session (``role``: ``initiator`` or ``responder``)."""

    initiator_ephemeral: bytes
    role: str
    static_secret: bytes
    ephemeral_secret: bytes

    def __post_init__(self) -> None:
        for name in ("initiator_ephemeral", "static_secret", "ephemeral_secret"):
            if len(getattr(self, name)) != 32:
                raise ValueError(f"{name} must be 32 bytes")
        if self.role not in ("initiator", "responder"):
            raise ValueError(f"role {self.role!r} is not initiator or responder")


def format_noise_entry(entry: NoiseKeyLogEntry | NoiseHandshakeEntry) -> str:
    """The key log line of ``entry`` (no newline)."""
    if isinstance(entry, NoiseHandshakeEntry):
        return " ".join((HANDSHAKE_LABEL, entry.initiator_ephemeral.hex(), entry.role,
                         entry.static_secret.hex(), entry.ephemeral_secret.hex()))
    return " ".join((LABEL, entry.initiator, entry.responder, entry.initiator_ephemeral.hex(),
                     entry.initiator_key.hex(), entry.responder_key.hex(),
                     entry.handshake_hash.hex()))


class NoiseKeyLog:
    """Entries by the initiator's ephemeral public key."""

    def __init__(self, entries: list[NoiseKeyLogEntry] | tuple[NoiseKeyLogEntry, ...] = (),
                 handshakes: list[NoiseHandshakeEntry] | tuple[NoiseHandshakeEntry, ...] = ()
                 ) -> None:
        self._by_ephemeral = {e.initiator_ephemeral: e for e in entries}
        self._handshakes = {e.initiator_ephemeral: e for e in handshakes}

    def __len__(self) -> int:
        return len(self._by_ephemeral)

    def find_handshake(self, initiator_ephemeral: bytes) -> NoiseHandshakeEntry | None:
        """One end's handshake secrets of that session, when logged."""
        return self._handshakes.get(bytes(initiator_ephemeral))

    def find(self, initiator_ephemeral: bytes) -> NoiseKeyLogEntry | None:
        """The session whose first handshake message carried ``initiator_ephemeral``."""
        return self._by_ephemeral.get(bytes(initiator_ephemeral))


def parse_noise_keylog(text: str) -> NoiseKeyLog:
    """Read a key log. Blank lines, ``#`` comments and other labels are skipped; a malformed
    ``NOISE_SECRETS`` line is a :class:`~p2pkit.errors.ParseError` at its offset."""
    entries: list[NoiseKeyLogEntry] = []
    handshakes: list[NoiseHandshakeEntry] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if fields and fields[0] == HANDSHAKE_LABEL:
            if len(handshakes) >= MAX_KEYLOG_ENTRIES:
                raise LimitExceeded(f"more than {MAX_KEYLOG_ENTRIES} entries",
                                    protocol=_PROTOCOL, offset=offset)
            try:
                if len(fields) != 5:
                    raise ValueError(f"{len(fields)} fields, expected 5")
                _, e, role, static, ephemeral = fields
                handshakes.append(NoiseHandshakeEntry(
                    initiator_ephemeral=bytes.fromhex(e), role=role,
                    static_secret=bytes.fromhex(static),
                    ephemeral_secret=bytes.fromhex(ephemeral)))
            except ValueError as err:
                raise ParseError(f"bad {HANDSHAKE_LABEL} line: {err}", protocol=_PROTOCOL,
                                 offset=offset) from None
        elif fields and fields[0] == LABEL:
            if len(entries) >= MAX_KEYLOG_ENTRIES:
                raise LimitExceeded(f"more than {MAX_KEYLOG_ENTRIES} entries",
                                    protocol=_PROTOCOL, offset=offset)
            try:
                if len(fields) != _FIELDS:
                    raise ValueError(f"{len(fields)} fields, expected {_FIELDS}")
                _, initiator, responder, e, ikey, rkey, h = fields
                entries.append(NoiseKeyLogEntry(
                    initiator=initiator, responder=responder,
                    initiator_ephemeral=bytes.fromhex(e), initiator_key=bytes.fromhex(ikey),
                    responder_key=bytes.fromhex(rkey), handshake_hash=bytes.fromhex(h)))
            except ValueError as err:
                raise ParseError(f"bad {LABEL} line: {err}", protocol=_PROTOCOL,
                                 offset=offset) from None
        offset += len(line.encode())
    return NoiseKeyLog(entries, handshakes)


class NoiseKeyLogWriter(KeyLogAppender):
    """Appends entries to a key log file, one flushed line each (several hosts, and MSE peers,
    may share a file, as with SSLKEYLOGFILE)."""

    def write(self, entry: NoiseKeyLogEntry | NoiseHandshakeEntry) -> None:
        self.write_line(format_noise_entry(entry))
