"""Values in the IPFS DHT: the record validators and selectors, and a bounded record store.

ipfs-kad-dht.md §Value Storage and Retrieval: "Records with the above prefixes [``/pk/``,
``/ipns/``] MUST meet validity criteria specific to their record type before being stored or
updated. DHT Servers MUST verify the validity of each record before accepting it. Records
with other prefixes are not supported by the IPFS Kademlia DHT and MUST be rejected."

* ``/pk/`` (§Public Keys): key ``/pk/`` + binary peer id, value the ``PublicKey`` protobuf;
  "DHT servers MUST verify that the Peer ID derived from the full public key matches the Peer
  ID encoded in the key". All valid ``/pk/`` records of a key are equal: the first is kept.
* ``/ipns/`` (§IPNS): :func:`p2pkit.ipfs.ipns.validate_record`; the best is the highest
  sequence number, then the latest EOL.

libp2p kad-dht §Entry validation describes the same pair as a ``Validator`` with
``Validate(key, value)`` and ``Select(key, values)``: :func:`validate_value` and
:func:`select_value`. The store keeps one record per key (the best seen), at most
:data:`MAX_RECORDS` keys (the least recently stored go first) and drops a record after
:data:`MAX_RECORD_AGE` (go-libp2p-kad-dht's ``MaxRecordAge``, 36 h) or once it stops being
valid (an IPNS EOL passed).
"""

from __future__ import annotations

import datetime
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from p2pkit.errors import LimitExceeded, ParseError
from p2pkit.ipfs import ipns
from p2pkit.ipfs.peer_id import PeerId

__all__ = ["MAX_RECORDS", "MAX_RECORD_AGE", "MAX_VALUE_LENGTH", "PK_PREFIX", "RecordRejected",
           "RecordStore", "pk_key", "select_value", "validate_value"]

PK_PREFIX = b"/pk/"
#: Largest value accepted (an IPNS record is at most 10 KiB; a ``/pk/`` RSA-8192 key less).
MAX_VALUE_LENGTH = 16 * 1024
#: Keys whose records are kept.
MAX_RECORDS = 10_000
#: go-libp2p-kad-dht ``MaxRecordAge``: "records older than this are discarded" (36 h).
MAX_RECORD_AGE = 36 * 3600.0


class RecordRejected(ParseError):
    """A value the validators refuse (wrong namespace, bad key, bad signature, expired)."""


def pk_key(peer: PeerId) -> bytes:
    """§Public Keys: ``/pk/`` + the binary peer id."""
    return PK_PREFIX + peer.multihash


def _rejected(reason: str, path: str = "key") -> RecordRejected:
    return RecordRejected(reason, protocol="kad-dht", path=path)


def validate_value(key: bytes, value: bytes, now_ns: int | None = None
                   ) -> ipns.IpnsRecord | bytes:
    """``Validate(key, value)``: the verified IPNS record, or the public key of a ``/pk/``
    record; anything invalid is a :class:`RecordRejected` naming the rule."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if len(value) > MAX_VALUE_LENGTH:
        raise LimitExceeded(f"value of {len(value)} bytes (at most {MAX_VALUE_LENGTH})",
                            protocol="kad-dht", path="record -> value")
    try:
        if key.startswith(PK_PREFIX):
            owner = PeerId(key[len(PK_PREFIX):])
            if not owner.matches(value):
                raise _rejected("the public key's peer id is not the one in the key",
                                "record -> value")
            return value
        if key.startswith(ipns.IPNS_PREFIX):
            return ipns.validate_record(PeerId(key[len(ipns.IPNS_PREFIX):]), value, now_ns)
    except RecordRejected:
        raise
    except ParseError as e:
        raise _rejected(f"{e}", "record") from None
    raise _rejected(f"namespace of {key[:16]!r}: only /pk/ and /ipns/ records are supported")


def select_value(key: bytes, values: list[bytes], now_ns: int | None = None) -> int:
    """``Select(key, values)``: the index of the best valid value (invalid ones never win;
    the first of equals is kept, so the choice is stable). Raises :class:`RecordRejected` when
    none is valid."""
    checked = []
    for i, value in enumerate(values):
        try:
            checked.append((i, validate_value(key, value, now_ns)))
        except ParseError:
            continue
    if not checked:
        raise _rejected("no valid record among the values", "record")
    if key.startswith(ipns.IPNS_PREFIX):
        return checked[ipns.select_best([r for _, r in checked])][0]
    return checked[0][0]


@dataclass
class _Stored:
    value: bytes
    stored: float
    received: str


@dataclass
class RecordStore:
    """The records a DHT server holds: one per key, validated before they are kept."""

    max_records: int = MAX_RECORDS
    max_age: float = MAX_RECORD_AGE
    #: wall-clock nanoseconds (for IPNS EOLs); ``now`` arguments are the caller's clock.
    wall_clock: Callable[[], int] = time.time_ns
    records: OrderedDict[bytes, _Stored] = field(default_factory=OrderedDict)

    def put(self, key: bytes, value: bytes, now: float) -> None:
        """Store ``value`` under ``key`` (libp2p kad-dht §PUT_VALUE: "The target node
        validates record, and if it is valid, it stores it"). A value worse than the one held
        is a :class:`RecordRejected` (go-libp2p-kad-dht refuses an "old record")."""
        wall = self.wall_clock()
        validate_value(key, value, wall)
        held = self.get(key, now)
        if held is not None and held != value and select_value(key, [value, held], wall) != 0:
            raise _rejected("a better record is already stored for this key", "record")
        if key not in self.records and len(self.records) >= self.max_records:
            self.records.popitem(last=False)
        received = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.records[key] = _Stored(value, now, received)
        self.records.move_to_end(key)

    def get(self, key: bytes, now: float) -> bytes | None:
        """The value held for ``key`` if it is still young enough and valid."""
        entry = self.records.get(key)
        if entry is None:
            return None
        if now - entry.stored >= self.max_age:
            del self.records[key]
            return None
        try:
            validate_value(key, entry.value, self.wall_clock())
        except ParseError:
            del self.records[key]
            return None
        return entry.value

    def received(self, key: bytes) -> str:
        """When the record of ``key`` arrived (RFC 3339, the ``Record.timeReceived`` field)."""
        return self.records[key].received

    def __len__(self) -> int:
        return len(self.records)
