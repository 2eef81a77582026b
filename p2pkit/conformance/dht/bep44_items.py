"""BEP 44 (storing arbitrary data in the DHT): ``get`` and ``put`` of immutable and mutable
items, ``seq``, ``cas``, ``salt``, signatures, errors 205-207, 301 and 302."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2pkit.conformance.case import Computed, FromAnswer, Raw, Step
from p2pkit.conformance.dht._common import NODES, dht_case, query, survives
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Equals,
    Field,
    IsError,
    IsResponse,
    OneOf,
    Present,
    Satisfies,
    Silence,
)
from p2pkit.dht.items import immutable_target, mutable_target, public_key, sign, verify

GET = ("Responses to ``get`` should always include ``nodes`` and ``nodes6``. Those fields have "
       "the same semantics as in the ``get_peers`` response. It should also include a write "
       "token, ``token``, with the same semantics as in ``get_peers``.")
IMMUTABLE = "Immutable items are stored under their SHA-1 hash"
STORED = ("The data MUST be stored under the SHA-1 hash of the public key (as it appears in the "
          "bencoded dict) and the salt (if present).")
SIGNATURE = "On the storage node, the signature MUST be verified before accepting the store command."
SALT = "The salt string MUST NOT be longer than 64 bytes."
CAS = "An implementation MUST emit 301 errors if the cas mismatches."
CAS_MATCH = "Only if the ``cas`` matches the stored sequence number is the put performed."
SEQ = ("Storing nodes receiving a ``put`` request where ``seq`` is lower than or equal to "
       "what's already stored on the node, MUST reject the request.")
SEQ_302 = ("If the sequence number in the ``put`` message is lower than the sequence number "
           "associated with the currently stored value, the storing node MAY return an error "
           "message with code 302 (see error codes below).")
SEQ_GET = ("If a stored item exists but its sequence number is less than or equal to the "
           "``seq`` field then the ``k``, ``v``, and ``sig`` fields SHOULD be omitted from the "
           "response.")
TOO_BIG = ("Storing nodes MAY reject ``put`` requests where the bencoded form of ``v`` is "
           "longer than 1000 bytes.")
BAD_BENCODING = ("If the value in a ``put`` request contains invalid bencoding (e.g. a "
                 "dictionary with unsorted keys), the storing node MUST reject the request and "
                 "SHOULD return an error message with code 203.")
TOKEN = ("It should also include a write token, ``token``, with the same semantics as in "
         "``get_peers``.")


def _value(tag: str = "v") -> Callable[[Any], bytes]:
    return lambda ctx: b"p2pkit conformance " + ctx.fresh(tag, 8).hex().encode()


V1, V2 = _value("v1"), _value("v2")


def _seed(ctx: Any) -> bytes:
    return ctx.fresh("seed", 32)


def _k(ctx: Any) -> bytes:
    return public_key(_seed(ctx))


def _target(salt: bytes = b"") -> Computed:
    return Computed(lambda ctx: mutable_target(_k(ctx), salt), "mutable target")


IMMUTABLE_TARGET = Computed(lambda ctx: immutable_target(V1(ctx)), "sha1(v)")


def _get(target: Computed, name: str = "get", source: str = "a", expect: Any = None,
         **extra: Any) -> Step:
    """A ``get``; no answer at all means the target has no BEP 44 (*unsupported*), as a node
    that answers 204 "Method Unknown": a BEP 44 node answers every well-formed ``get``, with
    the value or with nodes and a token (BEP 44 §get message)."""
    return Step(send=query("get", target=target, **extra), name=name, source=source,
                expect=expect, unsupported_if=Silence())


def _put_mutable(seq: int, value: Callable[[Any], Any] = V1, *, salt: bytes = b"",
                 cas: int | None = None, sig: Any = None, expect: Any = None,
                 source: str = "a") -> Step:
    args: dict[str, Any] = {
        "token": FromAnswer("get", "r.token"), "v": Computed(value, "v"),
        "k": Computed(_k, "k"), "seq": seq,
        "sig": sig if sig is not None else Computed(
            lambda ctx: sign(_seed(ctx), seq, value(ctx), salt), "sig")}
    if salt:
        args["salt"] = salt
    if cas is not None:
        args["cas"] = cas
    return Step(send=query("put", **args), source=source, expect=expect)


def _put_immutable(value: Callable[[Any], Any] = V1, token: Any = None,
                   expect: Any = None) -> Step:
    return Step(send=query("put", token=token if token is not None else
                           FromAnswer("get", "r.token"), v=Computed(value, "v")),
                expect=expect)


def _signed(salt: bytes = b""):
    def check(r: Any, ctx: Any) -> bool:
        return r.k == _k(ctx) and verify(r.k, r.sig, r.seq, r.v, salt)
    return check


def _bad_bencoding(ctx: Any) -> bytes:
    token = ctx.answer("get").get("r.token")
    return (b"d1:ad2:id20:" + ctx.node_id + b"5:token%d:" % len(token) + token
            + b"1:vd1:bi1e1:ai2eee1:q3:put1:t2:<T>1:y1:qe")


def _case(name: str, title: str, spec: str, requirement: str, level: str, rule: str,
          steps: list, sources: int = 1) -> Any:
    return dht_case(id=f"bep44/{name}", title=title, spec=spec, requirement=requirement,
                    level=level, rule=rule, steps=steps, extension="BEP 44", sources=sources)


OVERVIEW = "BEP 44 §Messages"
MUTABLE = "BEP 44 §Mutable Items"
REFUSED = OneOf(IsError(), Silence())
NEW = _target()

CASES = [
    _case("get/token", "get returns a write token", OVERVIEW, GET, "SHOULD", "bep44/get/token",
          [_get(NEW, expect=All(IsResponse(), Field("r.token", Present())))]),
    _case("get/nodes", "get returns 'nodes'", OVERVIEW, GET, "SHOULD", "bep44/get/nodes",
          [_get(NEW, expect=All(IsResponse(), NODES))]),
    _case("get/nodes6", "get returns 'nodes6' too", OVERVIEW, GET, "SHOULD", "bep44/get/nodes",
          [_get(NEW, expect=All(IsResponse(), Field("r.nodes6", Present())))]),
    _case("get/unknown-no-value", "get of an unknown target has no 'v'", OVERVIEW, GET, "INFO",
          "bep44/get/unknown", [_get(NEW, expect=All(IsResponse(), Field("r.v", Absent())))]),
    _case("immutable/put-accepted", "an immutable put with a token is accepted",
          "BEP 44 §Immutable Items", IMMUTABLE, "MUST", "bep44/immutable",
          [_get(IMMUTABLE_TARGET), _put_immutable(expect=IsResponse())]),
    _case("immutable/get-returns-value", "a stored immutable item is returned by get",
          "BEP 44 §Immutable Items", IMMUTABLE, "MUST", "bep44/immutable",
          [_get(IMMUTABLE_TARGET), _put_immutable(expect=IsResponse()),
           _get(IMMUTABLE_TARGET, name="read", source="b", expect=Field(
               "r.v", Equals(Computed(V1, "v"))))], sources=2),
    _case("put/wrong-token", "a put with a wrong token is refused, and nothing is stored",
          OVERVIEW, TOKEN, "MUST", "dht/token/checked",
          [_get(IMMUTABLE_TARGET), _put_immutable(token=b"not-a-token", expect=REFUSED),
           _get(IMMUTABLE_TARGET, name="read", source="b", expect=Field("r.v", Absent()))],
          sources=2),
    _case("put/invalid-bencoding", "a put whose v has unsorted keys is refused",
          "BEP 44 §Messages", BAD_BENCODING, "MUST", "bep44/put/bencoding",
          [_get(IMMUTABLE_TARGET), Step(send=Raw(Computed(_bad_bencoding, "put, v unsorted")),
                                        expect=REFUSED)]),
    _case("put/invalid-bencoding-203", "a put whose v has unsorted keys gets error 203",
          "BEP 44 §Messages", BAD_BENCODING, "SHOULD", "bep44/put/bencoding",
          [_get(IMMUTABLE_TARGET), Step(send=Raw(Computed(_bad_bencoding, "put, v unsorted")),
                                        expect=IsError((203,)))]),
    _case("put/205-v-too-big", "a v over 1000 bytes is refused with 205", OVERVIEW,
          TOO_BIG, "MAY", "bep44/put/v-size",
          [_get(Computed(lambda ctx: immutable_target(b"x" * 1100), "sha1(v)")),
           _put_immutable(value=lambda ctx: b"x" * 1100, expect=IsError((205,)))]),
    _case("mutable/put-get", "a signed mutable item is stored under sha1(k) and returned "
          "verifiable", MUTABLE, STORED, "MUST", "bep44/mutable",
          [_get(NEW), _put_mutable(1, expect=IsResponse()),
           _get(NEW, name="read", source="b", expect=Field("r", Satisfies(
               _signed(), "k, seq, sig and v that verify")))], sources=2),
    _case("mutable/bad-signature-refused", "a put with a wrong signature is refused and not "
          "stored", MUTABLE, SIGNATURE, "MUST", "bep44/signature",
          [_get(NEW), _put_mutable(1, sig=b"\x01" * 64, expect=REFUSED),
           _get(NEW, name="read", source="b", expect=Field("r.v", Absent()))], sources=2),
    _case("mutable/206-bad-signature", "a put with a wrong signature gets error 206",
          "BEP 44 §Errors", "206 invalid signature", "SHOULD", "bep44/errors/206",
          [_get(NEW), _put_mutable(1, sig=b"\x01" * 64, expect=IsError((206,)))]),
    _case("mutable/salt-too-big-refused", "a put with a 65-byte salt is refused", MUTABLE, SALT,
          "MUST", "bep44/salt-size",
          [_get(_target(b"s" * 65)), _put_mutable(1, salt=b"s" * 65, expect=REFUSED)]),
    _case("mutable/207-salt-too-big", "a put with a 65-byte salt gets error 207",
          "BEP 44 §Errors", "207 salt (``salt`` field) too big.", "SHOULD", "bep44/errors/207",
          [_get(_target(b"s" * 65)), _put_mutable(1, salt=b"s" * 65, expect=IsError((207,)))]),
    _case("mutable/salted", "a salted item is stored under sha1(k + salt)", MUTABLE, STORED,
          "MUST", "bep44/salt",
          [_get(_target(b"foobar")), _put_mutable(1, salt=b"foobar", expect=IsResponse()),
           _get(_target(b"foobar"), name="read", source="b", expect=Field("r", Satisfies(
               _signed(b"foobar"), "a value signed with the salt")))], sources=2),
    _case("cas/301-mismatch", "a put whose cas mismatches gets error 301", "BEP 44 §Errors",
          CAS, "MUST", "bep44/cas",
          [_get(NEW), _put_mutable(1, expect=IsResponse()),
           _put_mutable(2, V2, cas=7, expect=IsError((301,)))]),
    _case("cas/match-accepted", "a put whose cas matches is performed", "BEP 44 §CAS",
          CAS_MATCH, "MUST", "bep44/cas",
          [_get(NEW), _put_mutable(1, expect=IsResponse()),
           _put_mutable(2, V2, cas=1, expect=IsResponse())]),
    _case("seq/lower-rejected", "a put with a lower seq is rejected", MUTABLE, SEQ, "MUST",
          "bep44/seq",
          [_get(NEW), _put_mutable(5, expect=IsResponse()),
           _put_mutable(3, V2, expect=REFUSED)]),
    _case("seq/equal-rejected", "a put with the same seq and another value is rejected",
          MUTABLE, SEQ, "MUST", "bep44/seq",
          [_get(NEW), _put_mutable(5, expect=IsResponse()),
           _put_mutable(5, V2, expect=REFUSED)]),
    _case("seq/equal-not-stored", "a put with the same seq and another value does not "
          "replace the item", MUTABLE, SEQ, "MUST", "bep44/seq",
          [_get(NEW), _put_mutable(5, expect=IsResponse()), _put_mutable(5, V2, expect=survives()),
           _get(NEW, name="read", source="b", expect=Field("r.v", Equals(Computed(V1, "v1"))))],
          sources=2),
    _case("seq/302-lower", "a put with a lower seq gets error 302", MUTABLE, SEQ_302, "MAY",
          "bep44/seq",
          [_get(NEW), _put_mutable(5, expect=IsResponse()),
           _put_mutable(4, V2, expect=IsError((302,)))]),
    _case("seq/higher-replaces", "a put with a higher seq replaces the item", MUTABLE, STORED,
          "MUST", "bep44/mutable",
          [_get(NEW), _put_mutable(1, expect=IsResponse()), _put_mutable(2, V2,
                                                                         expect=IsResponse()),
           _get(NEW, name="read", source="b", expect=All(
               Field("r.seq", Equals(2)), Field("r.v", Equals(Computed(V2, "v2")))))],
          sources=2),
    _case("get/seq-omits-value", "get with seq ≥ the stored seq omits k, v and sig",
          "BEP 44 §get message", SEQ_GET, "SHOULD", "bep44/get/seq",
          [_get(NEW), _put_mutable(3, expect=IsResponse()),
           _get(NEW, name="read", source="b", seq=3, expect=All(
               Field("r.v", Absent()), Field("r.k", Absent()), Field("r.sig", Absent())))],
          sources=2),
    _case("put/partial-mutable", "a put with k and a bad sig but no seq is not stored as a "
          "mutable item", MUTABLE, SIGNATURE, "MUST", "bep44/signature",
          [_get(NEW), Step(send=query("put", token=FromAnswer("get", "r.token"),
                                      v=Computed(V1, "v"), k=Computed(_k, "k"),
                                      sig=b"\x02" * 64), expect=survives()),
           _get(NEW, name="read", source="b", expect=Field("r.v", Absent()))], sources=2),
]
