"""IPNS records: the ``IpnsEntry`` protobuf, its DAG-CBOR ``data``, signatures and selection.

The IPNS Record specification (specs.ipfs.tech/ipns/ipns-record, which ipfs-kad-dht.md
§IPNS makes binding for the DHT: "IPNS implementations MUST follow IPNS Routing Record, IPNS
Record Verification, and IPNS Record Size Limit"):

* §Routing Record: stored in the DHT under the key ``/ipns/`` + the binary peer id (the
  name's multihash);
* §Record Size Limit: a serialized ``IpnsEntry`` is at most 10 KiB;
* §IPNS Record: ``data`` is a DAG-CBOR map of ``Value`` (bytes), ``Validity`` (bytes, an RFC
  3339 time with nanoseconds for ``ValidityType`` 0, EOL), ``ValidityType``, ``Sequence`` and
  ``TTL`` (nanoseconds); ``signatureV2`` signs the bytes ``ipns-signature:`` followed by
  ``data``; the V1 fields (``value``, ``validity``…) are optional copies that must agree;
* §Record Verification: size, then ``signatureV2`` and ``data`` present, then the public key
  (``pubKey``, which must hash to the name, or the key inlined in an identity-multihash name),
  the signature, and the EOL not passed;
* selection between valid records: the higher ``Sequence`` wins, then the later EOL
  (boxo's ``ipns.Compare``, js ``ipns`` ``ipnsSelector``).
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass
from typing import Any

from p2pkit.errors import BuildError, LimitExceeded, ParseError
from p2pkit.ipfs.cbor import CborMap
from p2pkit.ipfs.keys import Ed25519Identity, verify_signature
from p2pkit.ipfs.peer_id import PeerId
from p2pkit.ipfs.protobuf import Field, Message

__all__ = ["IPNS_PREFIX", "MAX_RECORD_LENGTH", "SIGNATURE_PREFIX", "IpnsEntry", "IpnsRecord",
           "ValidityType", "create_record", "format_eol", "parse_eol", "routing_key",
           "select_best", "validate_record"]

#: §Routing Record: the DHT key is ``/ipns/`` + binary peer id.
IPNS_PREFIX = b"/ipns/"
#: §Record Size Limit: "IPNS implementations MUST support sending and receiving a serialized
#: IpnsEntry less than or equal to 10 KiB in size"; larger ones are refused.
MAX_RECORD_LENGTH = 10 * 1024
#: §Record Creation: signatureV2 is over ``ipns-signature:`` + data.
SIGNATURE_PREFIX = b"ipns-signature:"


class ValidityType(enum.IntEnum):
    """``IpnsEntry.ValidityType``: only EOL ("valid until") exists."""

    EOL = 0


# fmt: off
IpnsEntry = Message(
    "IpnsEntry",
    Field(1, "value", "bytes", max_length=MAX_RECORD_LENGTH, doc="V1 copy of data.Value"),
    Field(2, "signatureV1", "bytes", max_length=1024, doc="legacy signature (not checked)"),
    Field(3, "validityType", "enum", enum=ValidityType, doc="V1 copy of data.ValidityType"),
    Field(4, "validity", "bytes", max_length=64, doc="V1 copy of data.Validity"),
    Field(5, "sequence", "uint64", doc="V1 copy of data.Sequence"),
    Field(6, "ttl", "uint64", doc="V1 copy of data.TTL (ns)"),
    Field(7, "pubKey", "bytes", max_length=MAX_RECORD_LENGTH,
          doc="PublicKey protobuf, when the name does not inline it"),
    Field(8, "signatureV2", "bytes", max_length=1024,
          doc='signature of "ipns-signature:" + data'),
    Field(9, "data", "bytes", max_length=MAX_RECORD_LENGTH,
          doc="DAG-CBOR {Value, Validity, ValidityType, Sequence, TTL}"),
    protocol="ipns",
)
# fmt: on

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                      r"(Z|[+-]\d\d:\d\d)\Z")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def parse_eol(raw: bytes) -> int:
    """An RFC 3339 time (what ``Validity`` holds for EOL) as nanoseconds since the epoch.

    >>> parse_eol(b"2026-12-06T18:00:00.123456789Z")
    1796580000123456789
    """
    match = _RFC3339.match(raw.decode("ascii", "replace"))
    if match is None:
        raise ParseError(f"Validity {raw[:40]!r} is not an RFC 3339 time", protocol="ipns",
                         path="data -> Validity")
    y, mo, d, h, mi, s, frac, zone = match.groups()
    try:
        tz = datetime.UTC if zone == "Z" else datetime.timezone(
            (1 if zone[0] == "+" else -1) * datetime.timedelta(hours=int(zone[1:3]),
                                                               minutes=int(zone[4:6])))
        when = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=tz)
    except ValueError as e:
        raise ParseError(f"Validity {raw!r}: {e}", protocol="ipns",
                         path="data -> Validity") from None
    seconds = (when - _EPOCH) // datetime.timedelta(seconds=1)
    return seconds * 10**9 + int((frac or "0").ljust(9, "0"))


def format_eol(ns: int) -> bytes:
    """Nanoseconds since the epoch in the form go-ipfs and Helia write (UTC, 9 digits)."""
    seconds, frac = divmod(ns, 10**9)
    when = _EPOCH + datetime.timedelta(seconds=seconds)
    return (when.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z").encode("ascii")


def routing_key(name: PeerId) -> bytes:
    """§Routing Record: ``/ipns/`` + the binary peer id of the name."""
    return IPNS_PREFIX + name.multihash


@dataclass(frozen=True)
class IpnsRecord:
    """A verified record: what it points to and its ordering fields."""

    value: bytes
    sequence: int
    eol_ns: int
    ttl_ns: int
    public_key: bytes


def create_record(identity: Ed25519Identity, value: bytes, sequence: int, eol_ns: int,
                  ttl_ns: int = 300 * 10**9, *, v1_fields: bool = True) -> bytes:
    """A serialized ``IpnsEntry`` signed by ``identity`` (§Record Creation): ``data`` in
    DAG-CBOR, ``signatureV2`` over ``ipns-signature:`` + data, and (``v1_fields``) the V1
    copies of the fields (what Helia writes by default; no V1 signature is made)."""
    eol = format_eol(eol_ns)
    data = CborMap.build({"Value": value, "Validity": eol, "ValidityType": 0,
                          "Sequence": sequence, "TTL": ttl_ns})
    entry: dict[str, Any] = {"signatureV2": identity.sign(SIGNATURE_PREFIX + data), "data": data}
    if v1_fields:
        entry.update(value=value, validityType="EOL", validity=eol, sequence=sequence,
                     ttl=ttl_ns)
    raw = IpnsEntry.build(entry)
    if len(raw) > MAX_RECORD_LENGTH:
        raise BuildError(f"IPNS record of {len(raw)} bytes (at most {MAX_RECORD_LENGTH})",
                         protocol="ipns")
    return raw


def _fail(reason: str, path: str = "") -> ParseError:
    return ParseError(reason, protocol="ipns", path=path)


def validate_record(name: PeerId, raw: bytes, now_ns: int) -> IpnsRecord:
    """§Record Verification of a serialized ``IpnsEntry`` published under ``name``; a record
    that fails any step is a :class:`~p2pkit.errors.ParseError` saying which."""
    if len(raw) > MAX_RECORD_LENGTH:
        raise LimitExceeded(f"IPNS record of {len(raw)} bytes (at most {MAX_RECORD_LENGTH})",
                            protocol="ipns")
    entry = IpnsEntry.parse(raw)
    if not entry.signatureV2 or not entry.data:
        raise _fail("signatureV2 and data must be present", "IpnsEntry")
    if entry.pubKey:
        if not name.matches(entry.pubKey):
            raise _fail("pubKey is not the key of the name", "IpnsEntry -> pubKey")
        public_key = entry.pubKey
    else:
        public_key = name.public_key
        if public_key is None:
            raise _fail("no pubKey and the name does not inline its key", "IpnsEntry -> pubKey")
    try:
        data = CborMap.parse(entry.data)
    except ParseError as e:
        raise e.relocated(path_prefix="IpnsEntry -> data", protocol="ipns") from None
    fields = {"Value": bytes, "Validity": bytes, "ValidityType": int, "Sequence": int,
              "TTL": int}
    for key, kind in fields.items():
        if not isinstance(data.get(key), kind):
            raise _fail(f"data has no {kind.__name__} {key}", f"IpnsEntry -> data -> {key}")
    copies = {"value": "Value", "validity": "Validity", "sequence": "Sequence", "ttl": "TTL"}
    for v1, v2 in copies.items():
        if entry[v1] is not None and entry[v1] != data[v2]:
            raise _fail(f"{v1} differs from data.{v2}", f"IpnsEntry -> {v1}")
    if entry.validityType is not None and entry.validityType != "EOL":
        raise _fail("validityType is not EOL", "IpnsEntry -> validityType")
    if not verify_signature(public_key, SIGNATURE_PREFIX + entry.data, entry.signatureV2):
        raise _fail("signatureV2 does not verify", "IpnsEntry -> signatureV2")
    if data["ValidityType"] != ValidityType.EOL:
        raise _fail(f"ValidityType {data['ValidityType']} (only 0, EOL, exists)",
                    "IpnsEntry -> data -> ValidityType")
    eol = parse_eol(data["Validity"])
    if eol <= now_ns:
        raise _fail("the record's EOL has passed", "IpnsEntry -> data -> Validity")
    return IpnsRecord(value=data["Value"], sequence=data["Sequence"], eol_ns=eol,
                      ttl_ns=data["TTL"], public_key=public_key)


def select_best(records: list[IpnsRecord]) -> int:
    """The index of the best of ``records``: highest ``Sequence``, then latest EOL; the first
    such one on a tie (selection is stable, libp2p kad-dht §Entry validation)."""
    if not records:
        raise ValueError("no records to select from")
    best = 0
    for i, record in enumerate(records[1:], 1):
        if (record.sequence, record.eol_ns) > (records[best].sequence, records[best].eol_ns):
            best = i
    return best
