"""KRPC, the Mainline DHT's messages over UDP (BEP 5 §KRPC Protocol) and their extensions.

BEP 5: "A KRPC message is a single dictionary with three keys common to every message and
additional keys depending on the type of message. Every message has a key "t" with a string
value representing a transaction ID. [...] Every message also has a key "y" with a single
character value describing the type of message. The value of the "y" key is one of "q" for
query, "r" for response, or "e" for error."

Covered here: the BEP 5 methods (``ping``, ``find_node``, ``get_peers``, ``announce_peer``,
errors 201-204), BEP 32 (``nodes6``, ``want``), BEP 33 (``scrape``, ``noseed``, ``BFsd``,
``BFpe``), BEP 42 (top-level ``ip``), BEP 43 (``ro``), BEP 44 (``get``/``put``, errors
205-207, 301, 302) and BEP 51 (``sample_infohashes``).

A parsed message is a construct ``Container``: ``t``, ``y`` (``"q"``, ``"r"`` or ``"e"``),
``method`` (a query's ``q``; for a response or error the method of the query it answers when the
caller knows it, see :class:`Transactions`, else ``None``), then ``a`` / ``r`` / ``e`` and the
optional ``v``, ``ip``, ``ro``. Keys this module does not know are kept, never dropped: each
dictionary puts them, raw, in an ``extra`` mapping, and :func:`unknown_keys` lists them.

Real bytes (tests/data/captures/ndpi-bittorrent_utp.pcap, a libtorrent 1.1 get_peers query):

>>> data = bytes.fromhex(
...     "64313a6164323a696432303af7f6007cea13506e514de7ecbc94f2ae517115f8393a696e666f5f6861"
...     "736832303af7f601d8a6276f762c2c3df274af2827f8d1f1de65313a71393a6765745f706565727331"
...     "3a74323a0e61313a76343a4c540101313a79313a7165")
>>> msg = KrpcMessage.parse(data)
>>> msg.y, msg.method, msg.t, msg.v, msg.a.info_hash.hex()
('q', 'get_peers', b'\\x0ea', b'LT\\x01\\x01', 'f7f601d8a6276f762c2c3df274af2827f8d1f1de')
>>> KrpcMessage.build(msg) == data
True
"""

from __future__ import annotations

import enum
import io
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import construct
from construct import Bytes, Container, Int16ub, Struct

from p2pkit import bencode
from p2pkit.addresses import CompactPeer, CompactPeer6, IPv4Address, IPv6Address
from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, LimitExceeded, P2PKitError, ParseError
from p2pkit.schema import FixedLayout, Schema

__all__ = [
    "CompactNode",
    "CompactNode6",
    "CompactPeer",
    "CompactPeer6",
    "ErrorCode",
    "KrpcMessage",
    "KrpcMessageLenient",
    "LenientMessage",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL",
    "QUERY_ARGUMENTS",
    "Transactions",
    "decode",
    "decode_lenient",
    "encode",
    "error",
    "query",
    "response",
    "unknown_keys",
]

PROTOCOL = "bt-dht"
SPEC = "BEP 5 §KRPC Protocol"
#: Largest datagram decoded. KRPC messages fit one unfragmented UDP packet; the largest legal
#: ones (a BEP 44 ``get`` response with a 1000-byte ``v``, nodes and nodes6) stay under 2 KiB.
MAX_MESSAGE_SIZE = 4096
#: Unanswered queries :class:`Transactions` remembers (the oldest is forgotten first).
MAX_OPEN_TRANSACTIONS = 65536
#: BEP 5: "The node ID [...] 160-bit" (20 bytes), as are info-hashes and BEP 44 targets.
ID_LENGTH = 20


class ErrorCode(enum.IntEnum):
    """BEP 5 §Errors and BEP 44 §Errors: the first element of an error's ``e`` list."""

    GENERIC_ERROR = 201  # BEP 5: "Generic Error"
    SERVER_ERROR = 202  # BEP 5: "Server Error"
    PROTOCOL_ERROR = 203  # BEP 5: "Protocol Error, such as a malformed packet, invalid arguments,
    # or bad token"
    METHOD_UNKNOWN = 204  # BEP 5: "Method Unknown"
    MESSAGE_TOO_BIG = 205  # BEP 44: "message (v field) too big."
    INVALID_SIGNATURE = 206  # BEP 44: "invalid signature"
    SALT_TOO_BIG = 207  # BEP 44: "salt (salt field) too big."
    CAS_MISMATCH = 301  # BEP 44: "the CAS hash mismatched, re-read value and try again."
    SEQUENCE_NUMBER_LESS_THAN_CURRENT = 302  # BEP 44: "sequence number less than current."


# fmt: off
NodeId = Bytes(ID_LENGTH)
IPv4 = IPv4Address
IPv6 = IPv6Address
# CompactPeer: BEP 5: "Contact information for peers is encoded as a 6-byte string. Also known
# as "Compact IP-address/port info" [...]"; CompactPeer6: BEP 32's 18-byte form. Both are the
# shared layouts of p2pkit.addresses.
#: BEP 5: "Contact information for nodes is encoded as a 26-byte string. Also known as "Compact
#: node info" the 20-byte Node ID in network byte order has the compact IP-address/port info
#: concatenated to the end."
CompactNode = Struct("id" / NodeId, "ip" / IPv4, "port" / Int16ub)
#: BEP 32: "nodes6 [...] a string containing the compact node info of IPv6 nodes" (38 bytes).
CompactNode6 = Struct("id" / NodeId, "ip" / IPv6, "port" / Int16ub)
# fmt: on


class _Codec:
    """One value of a KRPC dictionary: ``decode`` (bencoded value -> Python value, ValueError
    if malformed), ``encode`` (the reverse, before bencoding) and ``bencoded`` (the value's
    bencoding, or None to leave it to the generic builder)."""

    def decode(self, raw: Any) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        raise NotImplementedError

    def bencoded(self, value: Any) -> bytes | None:
        """``encode`` then bencode, when the result is a string, an integer or a flat list of
        them; None otherwise and when ``encode`` refuses the value (the generic builder then
        reports it)."""
        try:
            return _bencoded_leaf(self.encode(value))
        except _CODEC_ERRORS:
            return None


class _Records(_Codec):
    """A string that is a concatenation of fixed-size records of one compact schema.

    The struct format is derived from the construct schema (:class:`FixedLayout`), so the
    layout has a single definition.
    """

    def __init__(self, con: construct.Construct, what: str) -> None:
        layout = FixedLayout(con)
        self.size = layout.size
        self.what = what
        self._unpack = layout.unpacker()
        self._pack = layout.packer()
        self.con = con

    def decode(self, raw: Any) -> list[Container]:
        if type(raw) is not bytes:
            raise ValueError(f"expected a string of {self.what}, got {_type_name(raw)}")
        if len(raw) % self.size:
            raise ValueError(f"{len(raw)} bytes is not a whole number of {self.size}-byte "
                             f"{self.what}")
        unpack = self._unpack
        size = self.size
        return [unpack(raw[i:i + size]) for i in range(0, len(raw), size)]

    def encode(self, value: Any) -> bytes:
        """The records as one string; an item already in compact form (bytes of the record's
        size, e.g. a node's cached compact info) is taken as it is."""
        if isinstance(value, bytes):
            return value
        out = []
        size = self.size
        for item in value:
            if type(item) is bytes and len(item) == size:
                out.append(item)
                continue
            packed = self._pack(item)
            out.append(self.con.build(item) if packed is None else packed)
        return b"".join(out)

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is list:
            size = self.size
            for item in value:
                if type(item) is not bytes or len(item) != size:
                    return super().bencoded(value)
            raw = b"".join(value)
        elif type(value) is bytes:
            raw = value
        else:
            return super().bencoded(value)
        return _LENGTH_PREFIX[len(raw)] + raw if len(raw) <= MAX_MESSAGE_SIZE else None


class _String(_Codec):
    """A byte string, optionally of an exact length."""

    def __init__(self, length: int | None = None) -> None:
        self.length = length

    def decode(self, raw: Any) -> bytes:
        if type(raw) is not bytes:
            raise ValueError(f"expected a string, got {_type_name(raw)}")
        if self.length is not None and len(raw) != self.length:
            raise ValueError(f"expected {self.length} bytes, got {len(raw)}")
        return raw

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"expected bytes, got {_type_name(value)}")
        value = bytes(value)
        if self.length is not None and len(value) != self.length:
            raise ValueError(f"expected {self.length} bytes, got {len(value)}")
        return value

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is not bytes:
            return super().bencoded(value)
        n = len(value)
        if (self.length is not None and n != self.length) or n > MAX_MESSAGE_SIZE:
            return None
        return _LENGTH_PREFIX[n] + value


class _Integer(_Codec):
    """An integer, optionally within ``[low, high]``."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low = low
        self.high = high

    def decode(self, raw: Any) -> int:
        if type(raw) is not int:
            raise ValueError(f"expected an integer, got {_type_name(raw)}")
        if (self.low is not None and raw < self.low) or (self.high is not None
                                                          and raw > self.high):
            raise ValueError(f"{raw} is outside [{self.low}, {self.high}]")
        return raw

    def encode(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {_type_name(value)}")
        return int(value)

    def bencoded(self, value: Any) -> bytes | None:
        return b"i%de" % value if type(value) is int else super().bencoded(value)


class _Text(_Codec):
    """A string holding ASCII/UTF-8 text (a method name, an error message); else kept bytes."""

    def decode(self, raw: Any) -> str | bytes:
        if type(raw) is not bytes:
            raise ValueError(f"expected a string, got {_type_name(raw)}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        raise TypeError(f"expected text, got {_type_name(value)}")

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is str and value.isascii() and len(value) <= MAX_MESSAGE_SIZE:
            return _LENGTH_PREFIX[len(value)] + value.encode("ascii")
        return super().bencoded(value)


class _AnyValue(_Codec):
    """BEP 44 ``v``: "It is allowed to be any bencoded type (list, dict, string or integer)"."""

    def decode(self, raw: Any) -> Any:
        return raw

    def encode(self, value: Any) -> Any:
        return value


class _Address(_Codec):
    """BEP 42 ``ip``: "compact binary representation of the requestor's IP and port"."""

    def decode(self, raw: Any) -> Container:
        if type(raw) is not bytes or len(raw) not in (6, 18):
            raise ValueError("expected a 6- or 18-byte compact address")
        return (CompactPeer if len(raw) == 6 else CompactPeer6).parse(raw)

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        version = ipaddress.ip_address(value["ip"]).version
        return (CompactPeer if version == 4 else CompactPeer6).build(value)

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is bytes and len(value) <= MAX_MESSAGE_SIZE:
            return _LENGTH_PREFIX[len(value)] + value
        return super().bencoded(value)


class _Peers(_Codec):
    """BEP 5 ``values``: "a list of strings containing "compact" format peer information"."""

    def __init__(self) -> None:
        self.v4 = _Records(CompactPeer, "compact peers")
        self.v6 = _Records(CompactPeer6, "compact peers")

    def decode(self, raw: Any) -> list[Container]:
        if type(raw) is not list:
            raise ValueError(f"expected a list of compact peers, got {_type_name(raw)}")
        out = []
        for item in raw:
            if type(item) is not bytes or len(item) not in (6, 18):
                raise ValueError("a value is not a 6- or 18-byte compact peer")
            out.append((self.v4 if len(item) == 6 else self.v6).decode(item)[0])
        return out

    def encode(self, value: Any) -> list[bytes]:
        return [_Address().encode(peer) for peer in value]


class _Hashes(_Codec):
    """BEP 51 ``samples``: "subset of stored infohashes, N × 20 bytes"."""

    def decode(self, raw: Any) -> list[bytes]:
        if type(raw) is not bytes or len(raw) % ID_LENGTH:
            raise ValueError("expected a string of 20-byte info-hashes")
        return [raw[i:i + ID_LENGTH] for i in range(0, len(raw), ID_LENGTH)]

    def encode(self, value: Any) -> bytes:
        return value if isinstance(value, bytes) else b"".join(value)


class _Want(_Codec):
    """BEP 32 ``want``: a list of "n4" / "n6" flags."""

    def decode(self, raw: Any) -> list[str | bytes]:
        if type(raw) is not list or any(type(x) is not bytes for x in raw):
            raise ValueError("expected a list of strings")
        return [_TEXT.decode(x) for x in raw]

    def encode(self, value: Any) -> list[bytes]:
        return [_TEXT.encode(x) for x in value]


class _Error(_Codec):
    """BEP 5: "The "e" key has a list value. The first element is an integer representing the
    error code. The second element is a string containing the error message."
    """

    def decode(self, raw: Any) -> Container:
        if type(raw) is not list or len(raw) != 2 or type(raw[0]) is not int \
                or type(raw[1]) is not bytes:
            raise ValueError("expected a list [error code, message]")
        code = raw[0]
        try:
            code = ErrorCode(code)
        except ValueError:
            pass
        return Container(code=code, message=_TEXT.decode(raw[1]))

    def encode(self, value: Any) -> list:
        return [int(value["code"]), _TEXT.encode(value["message"])]


_ID = _String(ID_LENGTH)
_BYTES = _String()
_INTEGER = _Integer()
_PORT = _Integer(0, 65535)
_TEXT = _Text()
_NODES = _Records(CompactNode, "compact nodes")
_NODES6 = _Records(CompactNode6, "compact nodes")

# fmt: off
#: Items of a query's ``a`` dictionary, by key (BEP 5, 32, 33, 44, 51).
ARGUMENTS: dict[str, Any] = {
    "id": _ID,                  # BEP 5: "20 byte ID of the querying node"
    "target": _ID,              # BEP 5 find_node, BEP 44 get, BEP 51: the sought id
    "info_hash": _ID,           # BEP 5: "infohash of target torrent"
    "port": _PORT,              # BEP 5 announce_peer: "the port it's running on"
    "implied_port": _INTEGER,   # BEP 5: "If it is present and non-zero, the port argument
                                # should be ignored and the source port of the UDP packet
                                # should be used as the peer's port instead."
    "token": _BYTES,            # BEP 5: "the token received in response to a previous get_peers"
    "want": _Want(),            # BEP 32: "n4" and/or "n6"
    "scrape": _INTEGER,         # BEP 33: request BFsd/BFpe bloom filters
    "noseed": _INTEGER,         # BEP 33: do not return seeds in values
    "seed": _INTEGER,           # BEP 33 announce_peer: "If the requesting node is seeding the
                                # torrent it announces then it must add a "seed"=1"
    "v": _AnyValue(),           # BEP 44 put: the value
    "k": _String(32),           # BEP 44: "ed25519 public key (32 bytes string)"
    "sig": _String(64),         # BEP 44: "ed25519 signature (64 bytes string)"
    "seq": _INTEGER,            # BEP 44: "monotonically increasing sequence number"
    "cas": _INTEGER,            # BEP 44: "optional expected seq-nr"
    "salt": _BYTES,             # BEP 44: "optional salt to be appended to "k" when hashing"
}
#: Items of a response's ``r`` dictionary, by key (BEP 5, 32, 33, 44, 51).
RESPONSE_VALUES: dict[str, Any] = {
    "id": _ID,                  # BEP 5: "20 byte ID of the queried node"
    "nodes": _NODES,            # BEP 5: "compact node info for the target node or the K (8)
                                # closest good nodes in its own routing table"
    "nodes6": _NODES6,          # BEP 32: IPv6 compact node info
    "values": _Peers(),         # BEP 5: "list of strings containing "compact" format peer info"
    "token": _BYTES,            # BEP 5: "The return value for a query for peers includes an
                                # opaque value known as the "token.""
    "BFsd": _String(256),       # BEP 33: bloom filter of seeds
    "BFpe": _String(256),       # BEP 33: bloom filter of peers
    "v": _AnyValue(),           # BEP 44 get: the stored value
    "k": _String(32),           # BEP 44
    "sig": _String(64),         # BEP 44
    "seq": _INTEGER,            # BEP 44
    "samples": _Hashes(),       # BEP 51
    "interval": _INTEGER,       # BEP 51: "the subset refresh interval in seconds"
    "num": _INTEGER,            # BEP 51: "number of infohashes in storage"
}
#: Top-level items of every message.
ENVELOPE: dict[str, Any] = {
    "t": _BYTES,                # BEP 5: "a string value representing a transaction ID"
    "y": _Text(),               # BEP 5: "q" / "r" / "e"
    "q": _Text(),               # BEP 5: "a string value containing the method name of the query"
    "v": _BYTES,                # BEP 5: "a key "v" with a string value [...] client version"
    "ip": _Address(),           # BEP 42: the requestor's external address
    "ro": _INTEGER,             # BEP 43: "places a 'ro' key [...] and sets its value to 1"
    "e": _Error(),              # BEP 5 §Errors
}
#: Arguments each query must carry (BEP 5 §DHT Queries, BEP 44, BEP 51).
QUERY_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "ping": ("id",),
    "find_node": ("id", "target"),
    "get_peers": ("id", "info_hash"),
    "announce_peer": ("id", "info_hash", "port", "token"),
    "get": ("id", "target"),
    "put": ("id", "token", "v"),
    "sample_infohashes": ("id", "target"),
}
#: BEP 44 mutable items: "the inclusion of a public key, a sequence number, signature".
MUTABLE_ARGUMENTS = ("k", "seq", "sig")
# fmt: on

_MESSAGE_KEYS = {"q": "a", "r": "r", "e": "e"}
_ROLE = {"q": "query", "r": "response", "e": "error"}


def _type_name(value: Any) -> str:
    return {bytes: "a string", int: "an integer", list: "a list", dict: "a dictionary"}.get(
        type(value), type(value).__name__)


def _label(key: bytes) -> str:
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        return key.hex()
    return text if text.isprintable() else key.hex()


class _Problem(Exception):
    """Raised inside the converter in strict mode: ``(reason, wire path of keys)``."""

    def __init__(self, reason: str, keys: tuple[bytes, ...], rule: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keys = keys
        self.rule = rule


class _Converter:
    """Bencoded dictionaries <-> message Containers (one decode or encode)."""

    def __init__(self, deviations: list[Deviation] | None, data: bytes = b"",
                 base: int = 0) -> None:
        #: ``None`` means strict: the first problem raises.
        self.deviations = deviations
        self.data = data
        self.base = base

    def problem(self, rule: str, reason: str, keys: tuple[bytes, ...],
                level: str = "MUST", spec: str = SPEC) -> None:
        if self.deviations is None:
            if level == "MUST":
                raise _Problem(reason, keys, rule)
            return  # strict decoding keeps extensions (in ``extra``) without complaint
        offset = self.base + (_offset_of(self.data, keys) or 0)
        self.deviations.append(Deviation(offset=offset, rule=rule, message=reason, spec=spec,
                                         level=level))

    def items(self, raw: dict, codecs: Mapping[str, Any], keys: tuple[bytes, ...],
              skip: tuple[str, ...] = ()) -> Container:
        out = Container()
        extra: dict[bytes, Any] = {}
        for key, value in raw.items():
            name = key.decode("ascii", "replace") if type(key) is bytes else None
            codec = codecs.get(name) if name is not None else None
            if name in skip:
                continue
            if codec is None:
                extra[key] = value
                self.problem("krpc/unknown-key", f"unknown key {_label(key)!r} kept in extra",
                             keys + (key,), level="MAY")
                continue
            try:
                out[name] = codec.decode(value)
            except ValueError as e:
                self.problem("krpc/malformed-value", f"{name}: {e}", keys + (key,))
                extra[key] = value
        if extra:
            out["extra"] = extra
        return out

    def message(self, raw: Any) -> Container:
        if type(raw) is not dict:
            raise _Problem("a KRPC message is a dictionary", (), "krpc/not-a-dictionary")
        for key in (b"t", b"y"):
            if key not in raw:
                # BEP 5: "Every message has a key "t" [...] Every message also has a key "y""
                self.problem("krpc/missing-key", f"missing key {key.decode()!r}", (key,))
        top = self.items(raw, ENVELOPE, (), skip=("a", "r"))
        y = top.pop("y", None)
        method = top.pop("q", None)
        msg = Container(t=top.pop("t", None), y=y, method=None)
        if y not in _MESSAGE_KEYS:
            self.problem("krpc/unknown-type", f"y is {y!r}, not 'q', 'r' or 'e'", (b"y",))
        if y == "q":
            # BEP 5: "A query has an "a" key [...] and a "q" key"
            if method is None:
                self.problem("krpc/missing-key", "query without 'q'", (b"q",))
            msg.method = method
            msg.a = self.body(raw, b"a", ARGUMENTS)
            self.check_arguments(msg)
        elif method is not None:
            msg.q = method
        if y == "r":
            # BEP 5: "A response has an "r" key"
            msg.r = self.body(raw, b"r", RESPONSE_VALUES)
        if b"a" in raw and y != "q":
            self.problem("krpc/unexpected-key", f"'a' in a {_ROLE.get(y, 'message')}", (b"a",),
                         level="SHOULD")
            top.setdefault("extra", {})[b"a"] = raw[b"a"]
        if b"r" in raw and y != "r":
            # libtorrent repeats its "r" (id, p) in errors: kept, not dropped
            top.setdefault("extra", {})[b"r"] = raw[b"r"]
            self.problem("krpc/unknown-key", f"'r' in a {_ROLE.get(y, 'message')} kept in extra",
                         (b"r",), level="MAY")
        if y == "e":
            if "e" not in top:
                self.problem("krpc/missing-key", "error without 'e'", (b"e",))
        elif "e" in top:
            self.problem("krpc/unexpected-key", f"'e' in a {_ROLE.get(y, 'message')}", (b"e",),
                         level="SHOULD")
        for key in ("e", "v", "ip", "ro", "extra"):
            if key in top:
                msg[key] = top[key]
        return msg

    def body(self, raw: dict, key: bytes, codecs: Mapping[str, Any]) -> Container:
        value = raw.get(key)
        if type(value) is not dict:
            what = "missing" if value is None else f"not a dictionary ({_type_name(value)})"
            self.problem("krpc/missing-key", f"{key.decode()!r} is {what}", (key,))
            return Container()
        body = self.items(value, codecs, (key,))
        if "id" not in body:
            # BEP 5: every query and response carries the sender's "id"
            self.problem("krpc/missing-key", f"{key.decode()!r} has no 'id'", (key, b"id"))
        return body

    def check_arguments(self, msg: Container) -> None:
        for name in QUERY_ARGUMENTS.get(msg.method, ()):
            if name not in msg.a:
                self.problem("krpc/missing-argument", f"{msg.method} without {name!r}",
                             (b"a", name.encode()))
        if msg.method == "put":
            present = [k for k in MUTABLE_ARGUMENTS if k in msg.a]
            if present and len(present) != len(MUTABLE_ARGUMENTS):
                self.problem("bep44/put/partial-mutable",
                             f"mutable put needs k, seq and sig, has only {present}",
                             (b"a",), spec="BEP 44 §Mutable Items")


def _encode_items(obj: Mapping[str, Any], codecs: Mapping[str, Any], path: str,
                  skip: tuple[str, ...] = ()) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for name, value in obj.items():
        if name in skip or name == "extra" or value is None:
            continue
        if not isinstance(name, str):
            raise BuildError(f"key {name!r} is not text", protocol=PROTOCOL, path=path)
        codec = codecs.get(name)
        if codec is None:
            raise BuildError(f"unknown key {name!r}: put unknown keys in 'extra' as bytes",
                             protocol=PROTOCOL, path=f"{path} -> {name}".lstrip(" ->"))
        try:
            out[name.encode()] = codec.encode(value)
        except (ValueError, TypeError, KeyError, construct.ConstructError, BuildError) as e:
            raise BuildError(f"{name}: {e}", protocol=PROTOCOL,
                             path=f"{path} -> {name}".lstrip(" ->")) from None
    for key, value in (obj.get("extra") or {}).items():
        key = key.encode() if isinstance(key, str) else key
        if key in out:
            raise BuildError(f"extra key {_label(key)!r} duplicates a known key",
                             protocol=PROTOCOL, path=path)
        out[key] = value
    return out


def _to_bencoded(obj: Mapping[str, Any]) -> dict[bytes, Any]:
    if not isinstance(obj, Mapping):
        raise BuildError(f"a KRPC message is a mapping, got {_type_name(obj)}", protocol=PROTOCOL)
    y = obj.get("y")
    if y not in _MESSAGE_KEYS:
        raise BuildError(f"y must be 'q', 'r' or 'e', got {y!r}", protocol=PROTOCOL, path="y")
    if obj.get("t") is None:
        raise BuildError("missing transaction id t", protocol=PROTOCOL, path="t")
    out = _encode_items(obj, ENVELOPE, "", skip=("method", "a", "r", "q"))
    if y == "q":
        method = obj.get("method", obj.get("q"))
        if method is None:
            raise BuildError("a query needs a method", protocol=PROTOCOL, path="method")
        out[b"q"] = _TEXT.encode(method)
        out[b"a"] = _encode_items(obj.get("a") or {}, ARGUMENTS, "a")
    elif obj.get("q") is not None:
        out[b"q"] = _TEXT.encode(obj["q"])
    if obj.get("r") is not None:
        out[b"r"] = _encode_items(obj["r"], RESPONSE_VALUES, "r")
    return out


def _offset_of(data: bytes, keys: tuple[bytes, ...]) -> int | None:
    """Offset of the value at ``keys`` (nested dictionary keys) in ``data``; None if unknown."""
    base = 0
    try:
        for key in keys:
            spans = bencode.top_level_spans(data[base:])
            if key not in spans:
                return base
            base += spans[key][0]
    except ParseError:
        return base
    return base


def _parse_error(e: _Problem, data: bytes) -> ParseError:
    path = " -> ".join(_label(k) for k in e.keys)
    return ParseError(e.reason, protocol=PROTOCOL, path=path, offset=_offset_of(data, e.keys))


def _check_size(data: bytes) -> None:
    if len(data) > MAX_MESSAGE_SIZE:
        raise LimitExceeded(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}",
                            protocol=PROTOCOL, offset=MAX_MESSAGE_SIZE)


class KrpcConstruct(construct.Construct):
    """A KRPC message: the whole bencoded dictionary, read to the end of the datagram."""

    def __init__(self, strict: bool = True) -> None:
        super().__init__()
        self.strict = strict
        self.flagbuildnone = False

    def _parse(self, stream: io.BufferedIOBase, context: Any, path: str) -> Container:
        start = construct.stream_tell(stream, path)
        data = construct.stream_read_entire(stream, path)
        _check_size(data)
        deviations = context.get("deviations") if not self.strict else None
        if not self.strict and deviations is None:
            deviations = []
        try:
            if self.strict:
                raw = bencode.decode(data)
            else:
                result = bencode.decode_lenient(data)
                raw = result.value
                deviations.extend(result.deviations)
        except ParseError as e:
            raise e.relocated(base=start, protocol=PROTOCOL) from None
        try:
            return _Converter(deviations, data, start).message(raw)
        except _Problem as e:
            raise _parse_error(e, data).relocated(base=start) from None

    def _build(self, obj: Any, stream: io.BufferedIOBase, context: Any, path: str) -> Any:
        data = bencode.encode(_to_bencoded(obj))
        construct.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("a KRPC message has no fixed size", path=path)


#: BEP 5 §KRPC Protocol: one message, strict (canonical bencoding, required keys, typed values).
KrpcMessage = Schema(KrpcConstruct(strict=True), protocol=PROTOCOL, name="krpc_message")
#: The same for dissection: accepts what real nodes send; pass ``deviations=[]`` to collect.
KrpcMessageLenient = Schema(KrpcConstruct(strict=False), protocol=PROTOCOL, name="krpc_message")


# ---- fast paths derived from the codec tables above ------------------------------------------
#
# A served node decodes mostly the same few query shapes and encodes mostly flat answers. Both
# fast paths below are generated from the schema's own tables (QUERY_ARGUMENTS, ARGUMENTS,
# ENVELOPE, RESPONSE_VALUES and their codecs), as FixedLayout derives a struct format from a
# construct Struct: there is no second definition of a key, a length or a value type. Each
# returns None on anything it does not recognise, and KrpcMessage then runs the generic
# schema, which decides (and reports errors with their path and offset). The tests check that
# both paths agree byte for byte on real captured datagrams and under hypothesis.


#: ``b"0:"`` … : the length prefixes of the strings a datagram can hold, made once.
_LENGTH_PREFIX = tuple(b"%d:" % n for n in range(MAX_MESSAGE_SIZE + 1))


def _bencoded_string(raw: bytes) -> bytes:
    return b"%d:%s" % (len(raw), raw)


def _fixed_length(codec: Any) -> int | None:
    """The exact byte length a codec requires of a string value, else None."""
    return codec.length if isinstance(codec, _String) else None


def _query_shapes() -> list[tuple[str, list[tuple[str, int]], list[tuple[int, bytes]], int]]:
    """Every query whose required arguments (QUERY_ARGUMENTS) are all fixed-length strings, as
    ``(method, [(argument, offset)], [(offset, literal bytes)], length)``: the canonical
    bencoding of ``{"a": {...}, "q": method, "t": ...`` up to the transaction id's length."""
    shapes = []
    for method, names in QUERY_ARGUMENTS.items():
        lengths = {name: _fixed_length(ARGUMENTS[name]) for name in names}
        if None in lengths.values():
            continue
        literals: list[tuple[int, bytes]] = []
        holes: list[tuple[str, int]] = []
        text = b"d" + _bencoded_string(b"a") + b"d"
        offset = 0
        for name in sorted(names, key=str.encode):  # BEP 3: "keys must be [...] sorted"
            text += _bencoded_string(name.encode()) + b"%d:" % lengths[name]
            literals.append((offset, text))
            holes.append((name, offset + len(text)))
            offset += len(text) + lengths[name]
            text = b""
        text += b"e" + _bencoded_string(b"q") + _bencoded_string(method.encode()) \
            + _bencoded_string(b"t")
        literals.append((offset, text))
        shapes.append((method, holes, literals, offset + len(text)))
    return shapes


def _compile_query_parser() -> Any:
    """Generate ``parse(data) -> Container | None`` for the shapes of :func:`_query_shapes`
    followed by ``t``, an optional ``v`` and ``y`` = ``q`` (ENVELOPE keys in sorted order),
    the dictionaries :meth:`_Converter.message` would make of them, item for item."""
    for key in ("t", "v"):
        if not isinstance(ENVELOPE[key], _String) or ENVELOPE[key].length is not None:
            raise TypeError(f"the query fast path expects {key!r} to be any string")
    v_key = _bencoded_string(b"v")
    end = _bencoded_string(b"y") + _bencoded_string(b"q") + b"e"
    env: dict[str, Any] = {"Container": Container, "MAX": MAX_MESSAGE_SIZE,
                           "string": _fast_string}
    lines = ["def parse(data):\n",
             "    if type(data) is not bytes or len(data) > MAX:\n        return None\n"]
    for i, (method, holes, literals, length) in enumerate(_query_shapes()):
        checks = []
        for j, (offset, literal) in enumerate(literals):
            env[f"L{i}_{j}"] = literal
            checks.append(f"data.startswith(L{i}_{j}, {offset})")
        env[f"M{i}"] = method
        lines.append(f"    {'elif' if i else 'if'} {' and '.join(checks)}:\n")
        lines.append(f"        pos = {length}\n        method = M{i}\n        a = Container()\n")
        for name, offset in holes:
            size = _fixed_length(ARGUMENTS[name])
            lines.append(f"        a[{name!r}] = data[{offset}:{offset + size}]\n")
    lines.append("    else:\n        return None\n")
    source = "".join(lines) + (
        "    t, pos = string(data, pos)\n"
        "    if t is None:\n        return None\n"
        "    v = None\n"
        f"    if data.startswith({v_key!r}, pos):\n"
        f"        v, pos = string(data, pos + {len(v_key)})\n"
        "        if v is None:\n            return None\n"
        f"    if len(data) != pos + {len(end)} or not data.endswith({end!r}):\n"
        "        return None\n"
        "    msg = Container()\n"
        "    msg['t'] = t\n    msg['y'] = 'q'\n    msg['method'] = method\n    msg['a'] = a\n"
        "    if v is not None:\n        msg['v'] = v\n"
        "    return msg\n"
    )
    exec(compile(source, "<krpc query fast path>", "exec"), env)
    return env["parse"]


def _fast_string(data: bytes, pos: int) -> tuple[bytes | None, int]:
    """A canonical bencoded string of at most 99 bytes at ``pos`` (BEP 3: "length-prefixed
    base ten followed by a colon"), else ``(None, pos)``."""
    colon = data.find(b":", pos, pos + 3)
    if colon <= pos:
        return None, pos
    digits = data[pos:colon]
    if not digits.isdigit() or (digits[0] == 0x30 and colon - pos > 1):
        return None, pos
    end = colon + 1 + int(digits)
    if end > len(data):
        return None, pos
    return data[colon + 1:end], end


#: The bencoded form of every known key (``b"2:id"``), from the codec tables.
_KEY_HEADERS = {name: _bencoded_string(name.encode())
                for table in (ENVELOPE, ARGUMENTS, RESPONSE_VALUES) for name in table}
_KEY_HEADERS.update(a=_bencoded_string(b"a"), r=_bencoded_string(b"r"))


def _bencoded_leaf(value: Any) -> bytes | None:
    """A codec's output as bencoding: strings, integers and lists of them; else None."""
    kind = type(value)
    if kind is bytes:
        n = len(value)
        return _LENGTH_PREFIX[n] + value if n <= MAX_MESSAGE_SIZE else None
    if kind is int:
        return b"i%de" % value
    if kind is list:
        parts = []
        for item in value:
            if type(item) is bytes:
                parts.append(b"%d:%s" % (len(item), item))
            elif type(item) is int:
                parts.append(b"i%de" % item)
            else:
                return None
        return b"l" + b"".join(parts) + b"e"
    return None


_CODEC_ERRORS = (ValueError, TypeError, KeyError, AttributeError, construct.ConstructError,
                 P2PKitError)


def _fast_items(obj: Any, codecs: Mapping[str, Any],
                skip: tuple[str, ...] = ()) -> list[tuple[str, bytes]] | None:
    """``(key, bencoded value)`` of a dictionary whose values the codecs turn into leaves."""
    if not isinstance(obj, dict):
        return None
    out = []
    for name, value in obj.items():
        if value is None or name in skip:
            continue
        if name == "extra":
            if value:
                return None
            continue
        codec = codecs.get(name)
        if codec is None:
            return None
        leaf = codec.bencoded(value)
        if leaf is None:
            return None
        out.append((name, leaf))
    return out


def _fast_dictionary(items: list[tuple[str, bytes]]) -> bytes:
    items.sort()  # key names are ASCII: str order is the raw-string order BEP 3 asks for
    headers = _KEY_HEADERS
    return b"d" + b"".join([headers[name] + leaf for name, leaf in items]) + b"e"


def _items_build(obj: Any) -> bytes | None:
    """:func:`_to_bencoded` + :func:`bencode.encode` for messages whose values are strings,
    integers and flat lists of them (ping/find_node/get_peers queries and answers, errors);
    None for anything else (BEP 44 dictionary values, ``extra`` keys, mistakes)."""
    y = obj.get("y")
    if y not in _MESSAGE_KEYS or obj.get("t") is None:
        return None
    top = _fast_items(obj, ENVELOPE, skip=("method", "a", "r", "q"))
    if top is None:
        return None
    method = obj.get("method", obj.get("q")) if y == "q" else obj.get("q")
    if y == "q" or method is not None:
        leaf = _TEXT.bencoded(method) if type(method) is str else None
        if leaf is None:
            return None
        top.append(("q", leaf))
    if y == "q":
        items = _fast_items(obj.get("a") or {}, ARGUMENTS)
        if items is None:
            return None
        top.append(("a", _fast_dictionary(items)))
    r = obj.get("r")
    if r is not None:
        items = _fast_items(r, RESPONSE_VALUES)
        if items is None:
            return None
        top.append(("r", _fast_dictionary(items)))
    return _fast_dictionary(top)


#: Message shapes the template builder compiles at most (beyond, :func:`_items_build`).
MAX_TEMPLATES = 64
_TEMPLATES: dict[tuple[Any, tuple, tuple | None], Any] = {}


def _value_code(codec: _Codec, expression: str, name: str, env: dict[str, Any]) -> str:
    """Source of ``codec.bencoded(expression)`` for a template, with the common case of a
    string codec (a ``bytes`` value of the right length) inlined: the same result, no call."""
    env[name] = codec.bencoded
    if type(codec) is _String and codec.length is not None:
        check = f"len(x) == {codec.length}"
    elif type(codec) in (_String, _Address):
        check = f"len(x) <= {MAX_MESSAGE_SIZE}"
    else:
        return f"{name}({expression})"
    return f"(P[len(x)] + x if type(x := {expression}) is bytes and {check} else {name}(x))"


def _compile_template(y: Any, keys: tuple, body_keys: tuple | None) -> Any:
    """A builder for messages of type ``y`` whose top-level and ``a``/``r`` keys are exactly
    ``keys`` and ``body_keys`` (the node's answers and queries: a few shapes), generated from
    ENVELOPE / ARGUMENTS / RESPONSE_VALUES: the keys' bencoding is precomputed in sorted
    order and each value goes through its codec's ``bencoded``. None for a shape it does not
    handle; the builder returns None for a message it cannot build (a None value, a value a
    codec refuses), and :func:`_items_build` then decides."""
    if y not in _MESSAGE_KEYS or body_keys is None:
        return None
    body, codecs = ("a", ARGUMENTS) if y == "q" else ("r", RESPONSE_VALUES)
    top = [k for k in keys if k not in ("method", body)]
    if y == "q" and "method" not in keys:
        return None
    if any(k not in ENVELOPE or k == "q" for k in top) or any(
            k not in codecs for k in body_keys):
        return None
    env: dict[str, Any] = {"P": _LENGTH_PREFIX}
    values = [(k, _value_code(ENVELOPE[k], f"obj[{k!r}]", f"E_{k}", env)) for k in top]
    if y == "q":
        values.append(("q", _value_code(ENVELOPE["q"], "obj['method']", "E_q", env)))
    values.append((body, None))
    parts: list[str] = []
    literal = b"d"
    for k, expression in sorted(values):
        literal += _KEY_HEADERS[k]
        if expression is not None:
            env[f"L{len(parts)}"] = literal
            parts += [f"L{len(parts)}", expression]
            literal = b""
            continue
        literal += b"d"
        for inner in sorted(body_keys):
            literal += _KEY_HEADERS[inner]
            env[f"L{len(parts)}"] = literal
            parts += [f"L{len(parts)}",
                      _value_code(codecs[inner], f"body[{inner!r}]", f"B_{inner}", env)]
            literal = b""
        literal += b"e"
    env[f"L{len(parts)}"] = literal + b"e"
    parts.append(f"L{len(parts)}")
    env["join"] = b"".join
    source = (
        "def build(obj):\n"
        f"    body = obj[{body!r}]\n"
        "    if not isinstance(body, dict):\n        return None\n"
        f"    parts = ({', '.join(parts)})\n"
        "    if None in parts:\n        return None\n"
        "    return join(parts)\n"
    )
    exec(compile(source, f"<krpc {y} template {keys} {body_keys}>", "exec"), env)
    return env["build"]


def _fast_build(obj: Any) -> bytes | None:
    """The fast build of a KRPC message: a compiled template for its shape, else the
    item-by-item :func:`_items_build`; None leaves the message to the generic builder."""
    if not isinstance(obj, dict):
        return None
    y = obj.get("y")
    body = obj.get("a" if y == "q" else "r")
    try:
        shape = (y, tuple(obj), tuple(body) if isinstance(body, dict) else None)
        build = _TEMPLATES[shape]
    except KeyError:
        build = _compile_template(*shape)
        if len(_TEMPLATES) < MAX_TEMPLATES:
            _TEMPLATES[shape] = build
    except TypeError:  # an unhashable y
        return None
    if build is not None:
        data = build(obj)
        if data is not None:
            return data
    return _items_build(obj)


#: The fast paths of :data:`KrpcMessage` (and the build of :data:`KrpcMessageLenient`).
_fast_parse_query = _compile_query_parser()
KrpcMessage.fast_parse = _fast_parse_query
KrpcMessage.fast_build = _fast_build
KrpcMessageLenient.fast_build = _fast_build


@dataclass
class LenientMessage:
    """A lenient decode: the message and every deviation seen."""

    message: Container
    deviations: list[Deviation] = field(default_factory=list)


def decode(data: bytes) -> Container:
    """Decode one datagram strictly (inside a node).

    >>> decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").e.code
    <ErrorCode.GENERIC_ERROR: 201>
    """
    return KrpcMessage.parse(data)


def decode_lenient(data: bytes) -> LenientMessage:
    """Decode what real nodes send, listing deviations (and unknown keys, level MAY).

    >>> r = decode_lenient(b"d1:rd2:id20:abcdefghij01234567891:pi6881ee1:t2:aa1:y1:re")
    >>> r.message.r.extra, [d.rule for d in r.deviations]
    ({b'p': 6881}, ['krpc/unknown-key'])
    """
    deviations: list[Deviation] = []
    message = KrpcMessageLenient.parse(data, deviations=deviations)
    return LenientMessage(message=message, deviations=deviations)


def encode(message: Mapping[str, Any]) -> bytes:
    """Encode a message (a Container from :func:`decode`, or a dict of the same shape).

    >>> encode(query("ping", b"aa", id=b"abcdefghij0123456789"))
    b'd1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe'
    """
    return KrpcMessage.build(message)


def query(method: str, t: bytes, **arguments: Any) -> Container:
    """A query Container (BEP 5: ``y`` = ``q``, ``q`` = method, ``a`` = arguments)."""
    return Container(t=t, y="q", method=method, a=Container(arguments))


def response(t: bytes, **values: Any) -> Container:
    """A response Container (BEP 5: ``y`` = ``r``, ``r`` = return values)."""
    return Container(t=t, y="r", method=None, r=Container(values))


def error(t: bytes, code: int, message: str) -> Container:
    """An error Container (BEP 5: ``y`` = ``e``, ``e`` = [code, message]).

    >>> encode(error(b"aa", ErrorCode.PROTOCOL_ERROR, "bad token"))
    b'd1:eli203e9:bad tokene1:t2:aa1:y1:ee'
    """
    return Container(t=t, y="e", method=None, e=Container(code=code, message=message))


def unknown_keys(message: Mapping[str, Any]) -> list[str]:
    """Paths of the keys kept in ``extra`` (``"r.p"``), the extensions a node sent us.

    >>> unknown_keys(decode(b"d1:rd2:id20:abcdefghij01234567891:pi6881ee1:t2:aa1:y1:re"))
    ['r.p']
    """
    out = [_label(k) for k in message.get("extra") or {}]
    for body in ("a", "r"):
        if isinstance(message.get(body), Mapping):
            out += [f"{body}.{_label(k)}" for k in message[body].get("extra") or {}]
    return out


class Transactions:
    """Pairs responses and errors with the queries they answer (BEP 5: "The transaction ID
    should be encoded as a short string of binary numbers [...] The same transaction ID is
    echoed in the response"), so a response gets its ``method``.

    >>> pairs = Transactions()
    >>> pairs.seen(query("ping", b"aa", id=bytes(20)), ("10.0.0.1", 1), ("10.0.0.2", 2))
    >>> answer = response(b"aa", id=bytes(20))
    >>> pairs.seen(answer, ("10.0.0.2", 2), ("10.0.0.1", 1))
    >>> answer.method
    'ping'
    """

    def __init__(self, max_open: int = MAX_OPEN_TRANSACTIONS) -> None:
        self.max_open = max_open
        self._open: dict[tuple[Any, Any, bytes], str] = {}

    def seen(self, message: Container, src: Any, dst: Any) -> None:
        """Record a query, or set ``message.method`` of a response/error answering one."""
        if message.y == "q":
            key = (src, dst, message.t)
            self._open.pop(key, None)
            self._open[key] = message.method
            if len(self._open) > self.max_open:  # forget the oldest unanswered query
                del self._open[next(iter(self._open))]
        elif message.t is not None:
            method = self._open.pop((dst, src, message.t), None)
            if method is not None:
                message.method = method

    @property
    def unanswered(self) -> int:
        """Queries seen without a response so far."""
        return len(self._open)
