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

It stays one module: KRPC is one bencoded envelope whose arguments and response values are
keyed by method, so the declarations of every method (and the fast paths derived from them)
read as one table.

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
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from construct import Bytes, Container, Int16ub, Struct

from p2pkit.addresses import CompactPeer, CompactPeer6, IPv4Address, IPv6Address
from p2pkit.bencode import (
    LENGTH_PREFIX,
    AnyValue,
    BencodedDict,
    Context,
    Field,
    Integer,
    ListOf,
    Mismatch,
    Records,
    Rules,
    String,
    Text,
    Value,
    bencoded_leaf,
    type_name,
)
from p2pkit.bencode import encode as encode_value
from p2pkit.deviations import Deviation
from p2pkit.errors import BuildError, P2PKitError
from p2pkit.schema import Schema

__all__ = [
    "CompactNode",
    "CompactNode6",
    "CompactPeer",
    "CompactPeer6",
    "Arguments",
    "Envelope",
    "ErrorCode",
    "KrpcMessage",
    "KrpcMessageLenient",
    "LenientMessage",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL",
    "QUERY_ARGUMENTS",
    "ResponseValues",
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


class _Address(Value):
    """BEP 42 ``ip``: "compact binary representation of the requestor's IP and port"."""

    what = "string of 6 or 18 bytes: compact IPv4 or IPv6 address and port"

    def decode(self, raw: Any, cx: Context, path: tuple) -> Container:
        if type(raw) is not bytes or len(raw) not in (6, 18):
            raise Mismatch("must be a 6- or 18-byte compact address")
        # the layouts' unpackers (FixedLayout, derived from CompactPeer/CompactPeer6)
        return (_PEER if len(raw) == 6 else _PEER6).decode(raw, cx, path)[0]

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        version = ipaddress.ip_address(value["ip"]).version
        return (CompactPeer if version == 4 else CompactPeer6).build(value)

    def bencoded(self, value: Any) -> bytes | None:
        if type(value) is bytes and len(value) <= MAX_MESSAGE_SIZE:
            return LENGTH_PREFIX[len(value)] + value
        return super().bencoded(value)


_PEER = Records(CompactPeer, "compact peers")
_PEER6 = Records(CompactPeer6, "compact peers")


class _Peers(Value):
    """BEP 5 ``values``: "a list of strings containing "compact" format peer information"."""

    what = "list of 6- or 18-byte compact peers"

    def __init__(self) -> None:
        self.v4 = _PEER
        self.v6 = _PEER6

    def decode(self, raw: Any, cx: Context, path: tuple) -> list[Container]:
        if type(raw) is not list:
            raise Mismatch(f"must be a list of compact peers, not {type_name(raw)}")
        out = []
        for item in raw:
            if type(item) is not bytes or len(item) not in (6, 18):
                raise Mismatch("has a value that is not a 6- or 18-byte compact peer")
            out.append((self.v4 if len(item) == 6 else self.v6).decode(item, cx, path)[0])
        return out

    def encode(self, value: Any) -> list[bytes]:
        return [_ADDRESS.encode(peer) for peer in value]


class _Hashes(Value):
    """BEP 51 ``samples``: "subset of stored infohashes, N × 20 bytes"."""

    what = "string of 20-byte info-hashes"

    def decode(self, raw: Any, cx: Context, path: tuple) -> list[bytes]:
        if type(raw) is not bytes or len(raw) % ID_LENGTH:
            raise Mismatch("must be a string of 20-byte info-hashes")
        return [raw[i:i + ID_LENGTH] for i in range(0, len(raw), ID_LENGTH)]

    def encode(self, value: Any) -> bytes:
        return value if isinstance(value, bytes) else b"".join(value)


class _Error(Value):
    """BEP 5: "The "e" key has a list value. The first element is an integer representing the
    error code. The second element is a string containing the error message."
    """

    what = "list [error code, message]"

    def decode(self, raw: Any, cx: Context, path: tuple) -> Container:
        if type(raw) is not list or len(raw) != 2 or type(raw[0]) is not int \
                or type(raw[1]) is not bytes:
            raise Mismatch("must be a list [error code, message]")
        code = raw[0]
        try:
            code = ErrorCode(code)
        except ValueError:
            pass
        return Container(code=code, message=_TEXT.decode(raw[1], cx, path))

    def encode(self, value: Any) -> list:
        return [int(value["code"]), _TEXT.encode(value["message"])]


_ID = String(ID_LENGTH)
_BYTES = String()
_INTEGER = Integer()
_PORT = Integer(0, 65535)
_TEXT = Text()
_ADDRESS = _Address()
_NODES = Records(CompactNode, "compact nodes")
_NODES6 = Records(CompactNode6, "compact nodes")

class _Envelope(BencodedDict):
    """The top-level dictionary: its check reads ``a``/``r`` by ``y`` and shapes the message
    (``_message``); its build goes the other way (:func:`_to_bencoded`)."""

    def check(self, value: Container, cx: Context, path: tuple) -> Container:
        return _message(value, cx, path)

    def encode(self, value: Any, path: str = "", skip: tuple[str, ...] = ()) -> dict:
        return _to_bencoded(value)


#: How KRPC reports departures: BEP 5 keys it does not know are kept in ``extra`` (MAY).
RULES = Rules(spec=SPEC, malformed="krpc/malformed-value", missing="krpc/missing-key",
              unknown="krpc/unknown-key", unknown_level="MAY")

# fmt: off
#: Items of a query's ``a`` dictionary (BEP 5, 32, 33, 44, 51).
Arguments = BencodedDict([
    Field("id", _ID, required=True),    # BEP 5: "20 byte ID of the querying node"
    Field("target", _ID),               # BEP 5 find_node, BEP 44 get, BEP 51: the sought id
    Field("info_hash", _ID),            # BEP 5: "infohash of target torrent"
    Field("port", _PORT),               # BEP 5 announce_peer: "the port it's running on"
    Field("implied_port", _INTEGER),    # BEP 5: "If it is present and non-zero, the port argument
                                        # should be ignored and the source port of the UDP packet
                                        # should be used as the peer's port instead."
    Field("token", _BYTES),             # BEP 5: "the token received in response to a previous
                                        # get_peers"
    Field("want", ListOf(_TEXT)),       # BEP 32: "n4" and/or "n6"
    Field("scrape", _INTEGER),          # BEP 33: request BFsd/BFpe bloom filters
    Field("noseed", _INTEGER),          # BEP 33: do not return seeds in values
    Field("seed", _INTEGER),            # BEP 33 announce_peer: "If the requesting node is seeding
                                        # the torrent it announces then it must add a "seed"=1"
    Field("v", AnyValue()),             # BEP 44 put: "It is allowed to be any bencoded type"
    Field("k", String(32)),             # BEP 44: "ed25519 public key (32 bytes string)"
    Field("sig", String(64)),           # BEP 44: "ed25519 signature (64 bytes string)"
    Field("seq", _INTEGER),             # BEP 44: "monotonically increasing sequence number"
    Field("cas", _INTEGER),             # BEP 44: "optional expected seq-nr"
    Field("salt", _BYTES),              # BEP 44: "optional salt to be appended to "k" when hashing"
], unknown="extra", rules=RULES, protocol=PROTOCOL, name="a")
#: Items of a response's ``r`` dictionary (BEP 5, 32, 33, 44, 51).
ResponseValues = BencodedDict([
    Field("id", _ID, required=True),    # BEP 5: "20 byte ID of the queried node"
    Field("nodes", _NODES),             # BEP 5: "compact node info for the target node or the K
                                        # (8) closest good nodes in its own routing table"
    Field("nodes6", _NODES6),           # BEP 32: IPv6 compact node info
    Field("values", _Peers()),          # BEP 5: "list of strings containing "compact" format
                                        # peer information"
    Field("token", _BYTES),             # BEP 5: "The return value for a query for peers includes
                                        # an opaque value known as the "token.""
    Field("BFsd", String(256)),         # BEP 33: bloom filter of seeds
    Field("BFpe", String(256)),         # BEP 33: bloom filter of peers
    Field("v", AnyValue()),             # BEP 44 get: the stored value
    Field("k", String(32)),             # BEP 44
    Field("sig", String(64)),           # BEP 44
    Field("seq", _INTEGER),             # BEP 44
    Field("samples", _Hashes()),        # BEP 51: "subset of stored infohashes, N × 20 bytes"
    Field("interval", _INTEGER),        # BEP 51: "the subset refresh interval in seconds"
    Field("num", _INTEGER),             # BEP 51: "number of infohashes in storage"
], unknown="extra", rules=RULES, protocol=PROTOCOL, name="r")
#: Top-level items of every message; ``a`` and ``r`` are read by ``_message`` with
#: :data:`Arguments` / :data:`ResponseValues` according to ``y``.
Envelope = _Envelope([
    Field("t", _BYTES, required=True),  # BEP 5: "Every message has a key "t" with a string value
                                        # representing a transaction ID"
    Field("y", _TEXT, required=True),   # BEP 5: "Every message also has a key "y" [...] "q" for
                                        # query, "r" for response, or "e" for error"
    Field("q", _TEXT),                  # BEP 5: "a string value containing the method name of the
                                        # query"
    Field("a", AnyValue()),             # BEP 5: "a dictionary value containing named arguments"
    Field("r", AnyValue()),             # BEP 5: "a dictionary containing named return values"
    Field("e", _Error()),               # BEP 5 §Errors
    Field("v", _BYTES),                 # BEP 5: "a key "v" with a string value [...] client
                                        # version"
    Field("ip", _ADDRESS),              # BEP 42: the requestor's external address
    Field("ro", _INTEGER),              # BEP 43: "places a 'ro' key [...] and sets its value to 1"
], unknown="extra", rules=RULES, protocol=PROTOCOL, syntax_protocol=PROTOCOL, whole=True,
    max_size=MAX_MESSAGE_SIZE, name="krpc_message")
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

#: The declared value types by name (the fast paths below are generated from these).
ARGUMENTS: dict[str, Value] = {f.attr: f.type for f in Arguments.fields}
RESPONSE_VALUES: dict[str, Value] = {f.attr: f.type for f in ResponseValues.fields}
ENVELOPE: dict[str, Value] = {f.attr: f.type for f in Envelope.fields if f.attr not in "ar"}

_MESSAGE_KEYS = {"q": "a", "r": "r", "e": "e"}
_ROLE = {"q": "query", "r": "response", "e": "error"}
_ABSENT: Any = object()


def _label(key: bytes) -> str:
    try:
        text = key.decode("ascii")
    except UnicodeDecodeError:
        return key.hex()
    return text if text.isprintable() else key.hex()


#: The top-level items a message takes after its ``a`` / ``q`` / ``r``, in this order.
MESSAGE_TAIL_KEYS = ("e", "v", "ip", "ro", "extra")


def _message(top: Container, cx: Context, path: tuple) -> Container:
    """The cross-field rules of a KRPC message, and its shape: ``t``, ``y``, ``method``, then
    ``a`` / ``r`` (read with the declaration ``y`` calls for), ``e``, ``v``, ``ip``, ``ro`` and
    ``extra``."""
    y = top.pop("y", None)
    method = top.pop("q", None)
    msg = Container(t=top.pop("t", None), y=y, method=None)
    if y not in _MESSAGE_KEYS:
        cx.report("krpc/unknown-type", f"y is {y!r}, not 'q', 'r' or 'e'", (b"y",), SPEC)
    a = top.pop("a", _ABSENT)
    r = top.pop("r", _ABSENT)
    if y == "q":
        # BEP 5: "A query has an "a" key [...] and a "q" key"
        if method is None:
            cx.report("krpc/missing-key", "query without 'q'", (b"q",), SPEC)
        msg.method = method
        msg.a = _body(a, b"a", Arguments, cx)
        _check_arguments(msg, cx)
    elif method is not None:
        msg.q = method
    if y == "r":
        # BEP 5: "A response has an "r" key"
        msg.r = _body(r, b"r", ResponseValues, cx)
    if a is not _ABSENT and y != "q":
        cx.report("krpc/unexpected-key", f"'a' in a {_ROLE.get(y, 'message')}", (b"a",), SPEC,
                  "SHOULD")
        top.setdefault("extra", {})[b"a"] = a
    if r is not _ABSENT and y != "r":
        # libtorrent repeats its "r" (id, p) in errors: kept, not dropped
        top.setdefault("extra", {})[b"r"] = r
        cx.report("krpc/unknown-key", f"'r' in a {_ROLE.get(y, 'message')} kept in extra",
                  (b"r",), SPEC, "MAY")
    if y == "e":
        if "e" not in top:
            cx.report("krpc/missing-key", "error without 'e'", (b"e",), SPEC)
    elif "e" in top:
        cx.report("krpc/unexpected-key", f"'e' in a {_ROLE.get(y, 'message')}", (b"e",), SPEC,
                  "SHOULD")
    for key in MESSAGE_TAIL_KEYS:
        if key in top:
            msg[key] = top[key]
    return msg




def _body(value: Any, key: bytes, schema: BencodedDict, cx: Context) -> Container:
    if type(value) is not dict:
        what = "missing" if value is _ABSENT else f"not a dictionary ({type_name(value)})"
        cx.report("krpc/missing-key", f"{key.decode()!r} is {what}", (key,), SPEC)
        return Container()
    return schema.conform(value, cx, (key,))


def _check_arguments(msg: Container, cx: Context) -> None:
    for name in QUERY_ARGUMENTS.get(msg.method, ()):
        if name not in msg.a:
            cx.report("krpc/missing-argument", f"{msg.method} without {name!r}",
                      (b"a", name.encode()), SPEC)
    if msg.method == "put":
        present = [k for k in MUTABLE_ARGUMENTS if k in msg.a]
        if present and len(present) != len(MUTABLE_ARGUMENTS):
            cx.report("bep44/put/partial-mutable",
                      f"mutable put needs k, seq and sig, has only {present}", (b"a",),
                      "BEP 44 §Mutable Items")


def _to_bencoded(obj: Mapping[str, Any]) -> dict[bytes, Any]:
    """The bencodable dictionary of a message, from the declarations (the generic build)."""
    if not isinstance(obj, Mapping):
        raise BuildError(f"a KRPC message is a mapping, got {type_name(obj)}", protocol=PROTOCOL)
    y = obj.get("y")
    if y not in _MESSAGE_KEYS:
        raise BuildError(f"y must be 'q', 'r' or 'e', got {y!r}", protocol=PROTOCOL, path="y")
    if obj.get("t") is None:
        raise BuildError("missing transaction id t", protocol=PROTOCOL, path="t")
    out = BencodedDict.encode(Envelope, obj, skip=("method", "a", "r", "q"))
    if y == "q":
        method = obj.get("method", obj.get("q"))
        if method is None:
            raise BuildError("a query needs a method", protocol=PROTOCOL, path="method")
        out[b"q"] = _TEXT.encode(method)
        out[b"a"] = Arguments.encode(obj.get("a") or {}, "a")
    elif obj.get("q") is not None:
        out[b"q"] = _TEXT.encode(obj["q"])
    if obj.get("r") is not None:
        out[b"r"] = ResponseValues.encode(obj["r"], "r")
    return out


#: BEP 5 §KRPC Protocol: one message, strict (canonical bencoding, required keys, typed values).
KrpcMessage = Schema(Envelope, protocol=PROTOCOL, name="krpc_message")
#: The same for dissection: accepts what real nodes send; pass ``deviations=[]`` to collect.
KrpcMessageLenient = Schema(Envelope.lenient(), protocol=PROTOCOL, name="krpc_message")


# ---- fast paths derived from the declarations above -----------------------------------------
#
# A served node decodes mostly the same few query shapes and encodes mostly flat answers. The
# fast paths below are generated from the declarations (QUERY_ARGUMENTS and the fields of
# Envelope, Arguments and ResponseValues with their value types), as FixedLayout derives a
# struct format from a construct Struct: there is no second definition of a key, a length or a
# value type. The query parser and the template builder return None on anything they do not
# recognise; every other message is read by Envelope.parse_bytes, the declaration itself
# without construct's streams (same value, same errors). The tests check that the paths agree
# byte for byte on real captured datagrams and under hypothesis.


def _bencoded_string(raw: bytes) -> bytes:
    return b"%d:%s" % (len(raw), raw)


def _fixed_length(codec: Any) -> int | None:
    """The exact byte length a codec requires of a string value, else None."""
    return codec.length if isinstance(codec, String) else None


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


def _compile_query_parser(otherwise: Any = None) -> Any:
    """Generate ``parse(data) -> Container | None`` for the shapes of :func:`_query_shapes`
    followed by ``t``, an optional ``v`` and ``y`` = ``q`` (ENVELOPE keys in sorted order),
    the dictionaries ``_message`` would make of them, item for item.

    Any other input gives None, or ``otherwise(data)`` when a function is given (the installed
    fast path hands every other message to the declaration, without a second call layer)."""
    for key in ("t", "v"):
        if not isinstance(ENVELOPE[key], String) or ENVELOPE[key].length is not None:
            raise TypeError(f"the query fast path expects {key!r} to be any string")
    v_key = _bencoded_string(b"v")
    end = _bencoded_string(b"y") + _bencoded_string(b"q") + b"e"
    env: dict[str, Any] = {"Container": Container, "MAX": MAX_MESSAGE_SIZE,
                           "string": _fast_string, "otherwise": otherwise}
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
    if otherwise is not None:
        source = source.replace("return None", "return otherwise(data)")
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


#: Every declared key, raw and bencoded (``"id"``: ``(b"id", b"2:id")``).
_KEY_HEADERS = {name: (name.encode(), _bencoded_string(name.encode()))
                for table in (ENVELOPE, ARGUMENTS, RESPONSE_VALUES, {"a": 0, "r": 0})
                for name in table}


def _fast_items(obj: Any, codecs: Mapping[str, Any],
                skip: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]] | None:
    """``(raw key, bencoded key and value)`` of a dictionary whose values the declared types
    turn into leaves; ``extra`` items (kept raw) are bencoded as they are."""
    if not isinstance(obj, dict):
        return None
    out = []
    for name, value in obj.items():
        if value is None or name in skip:
            continue
        if name == "extra":
            for key, raw in value.items():
                if type(key) is str:
                    key = key.encode()
                elif type(key) is not bytes:
                    return None
                leaf = bencoded_leaf(raw)
                if leaf is None:
                    try:
                        leaf = encode_value(raw)
                    except P2PKitError:
                        return None
                out.append((key, _bencoded_string(key) + leaf))
            continue
        codec = codecs.get(name)
        if codec is None:
            return None
        leaf = codec.bencoded(value)
        if leaf is None:
            return None
        key, header = _KEY_HEADERS[name]
        out.append((key, header + leaf))
    return out


def _first(item: tuple[bytes, bytes]) -> bytes:
    return item[0]


def _fast_dictionary(items: list[tuple[bytes, bytes]]) -> bytes | None:
    """The dictionary of :func:`_fast_items`' pieces, keys in raw-string order (BEP 3); None
    when a key repeats (an ``extra`` key that is also declared: the generic build decides)."""
    items.sort(key=_first)
    for i in range(1, len(items)):
        if items[i][0] == items[i - 1][0]:
            return None
    return b"d" + b"".join([piece for _, piece in items]) + b"e"


def _items_build(obj: Any) -> bytes | None:
    """:func:`_to_bencoded` + :func:`bencode.encode` for messages whose values are strings,
    integers and flat lists of them, and any raw ``extra`` (ping/find_node/get_peers queries
    and answers, errors, libtorrent's extensions); None for anything else (BEP 44 dictionary
    values, mistakes)."""
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
        key, header = _KEY_HEADERS["q"]
        top.append((key, header + leaf))
    bodies = [("a", obj.get("a") or {}, ARGUMENTS)] if y == "q" else []
    if obj.get("r") is not None:
        bodies.append(("r", obj["r"], RESPONSE_VALUES))
    for body, value, table in bodies:
        items = _fast_items(value, table)
        if items is None:
            return None
        inner = _fast_dictionary(items)
        if inner is None:
            return None
        key, header = _KEY_HEADERS[body]
        top.append((key, header + inner))
    return _fast_dictionary(top)


#: Message shapes the template builder compiles at most (beyond, :func:`_items_build`).
MAX_TEMPLATES = 64
_TEMPLATES: dict[tuple[Any, tuple, tuple | None], Any] = {}


def _value_code(codec: Value, expression: str, name: str, env: dict[str, Any]) -> str:
    """Source of ``codec.bencoded(expression)`` for a template, with the common case of a
    string codec (a ``bytes`` value of the right length) inlined: the same result, no call."""
    env[name] = codec.bencoded
    if type(codec) is String and codec.length is not None:
        check = f"len(x) == {codec.length}"
    elif type(codec) in (String, _Address):
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
    env: dict[str, Any] = {"P": LENGTH_PREFIX}
    values = [(k, _value_code(ENVELOPE[k], f"obj[{k!r}]", f"E_{k}", env)) for k in top]
    if y == "q":
        values.append(("q", _value_code(ENVELOPE["q"], "obj['method']", "E_q", env)))
    values.append((body, None))
    parts: list[str] = []
    literal = b"d"
    for k, expression in sorted(values):
        literal += _KEY_HEADERS[k][1]
        if expression is not None:
            env[f"L{len(parts)}"] = literal
            parts += [f"L{len(parts)}", expression]
            literal = b""
            continue
        literal += b"d"
        for inner in sorted(body_keys):
            literal += _KEY_HEADERS[inner][1]
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
_parse_bytes = Envelope.parse_bytes


def _parse_other(data: bytes) -> Container | None:
    """Any message the query parser does not recognise, by
    :meth:`~p2pkit.bencode.BencodedDict.parse_bytes` (the declaration without construct's
    streams); None leaves it to the generic schema (an input that is not bytes, or a failure
    that is not a p2pkit error, which the generic schema reports with its path)."""
    try:
        return _parse_bytes(data)
    except P2PKitError:
        raise
    except Exception:  # noqa: BLE001 - the generic schema reports it
        return None


#: The query parser alone (None for anything else), as the tests inspect it.
_fast_parse_query = _compile_query_parser()
#: The installed fast path: common queries inline, every other message by the declaration.
_fast_parse = _compile_query_parser(otherwise=_parse_other)
KrpcMessage.fast_parse = _fast_parse
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
    try:
        # the lenient declaration without construct's streams (same value, same deviations)
        message = _lenient_parse_bytes(data, deviations)
    except P2PKitError:
        message = None  # the generic schema raises the error, with its path and offset
    if message is None:
        deviations = []
        message = KrpcMessageLenient.parse(data, deviations=deviations)
    return LenientMessage(message=message, deviations=deviations)


#: The fast path of :func:`decode_lenient` (tests compare it with the generic schema).
_lenient_parse_bytes = KrpcMessageLenient.subcon.parse_bytes


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
        method = self.pair(message.y, message.t, message.method, src, dst)
        if method is not None:
            message.method = method

    def pair(self, y: Any, t: Any, method: Any, src: Any, dst: Any) -> Any:
        """:meth:`seen` for a message known by its ``y``, ``t`` and (a query's) ``method``:
        the method of the query a response or error answers, else None."""
        if y == "q":
            key = (src, dst, t)
            self._open.pop(key, None)
            self._open[key] = method
            if len(self._open) > self.max_open:  # forget the oldest unanswered query
                del self._open[next(iter(self._open))]
            return None
        if t is not None:
            return self._open.pop((dst, src, t), None)
        return None

    @property
    def unanswered(self) -> int:
        """Queries seen without a response so far."""
        return len(self._open)
