"""BEP 52 §peer protocol: hash request, hashes (with proofs) and hash reject, for v2 and
hybrid torrents (the harness needs the torrent: ``--torrent F`` of a v2 or hybrid torrent)."""

from __future__ import annotations

import hashlib

from p2pkit.bittorrent.wire.metainfo import BLOCK_SIZE
from p2pkit.conformance.bittorrent._common import bt_case, opening, request, unchoked
from p2pkit.conformance.case import Computed, Step, Wire
from p2pkit.conformance.stream_verifiers import Closes, Receives, SessionRule
from p2pkit.conformance.verifiers import OneOf

SPEC = "BEP 52 §peer protocol"
ANSWERED = "Hash requests MUST be answered with either a 'hashes' or 'hash reject' message."
CORRELATE = "This message MUST correlate with a 'hash request' message."
PROOFS = ("Hashes starts with the base layer and ends with the uncle hash closest to the root.")
LENGTH = "Length MUST be equal-to-or-greater-than two and a power of two."
CHOKE = "Hash requests may be sent to a peer regardless of its choke state."
LEAF = ("Clients MUST NOT reject a hash request with a base layer of zero if it immediately "
        "follows a request for one of the chunks in the requested range and the client "
        "services the chunk request with a piece message.")
HASH_MESSAGES = ("hashes", "hash_reject")
FIELDS = ("pieces_root", "base_layer", "index", "length", "proof_layers")


def _case(**fields: object) -> object:
    fields["tags"] = (*fields.get("tags", ()), "v2", "torrent")
    return bt_case(**fields)


def _file(ctx: object) -> object:
    """The first file with more than two pieces (a piece layer worth asking for)."""
    meta = ctx.facts.metainfo
    files = [f for f in meta.files if f.pieces_root and f.length > 2 * meta.piece_length]
    if not files:
        raise KeyError("the torrent has no file of more than two pieces")
    return files[0]


def _base(ctx: object) -> int:
    return (ctx.facts.metainfo.piece_length // BLOCK_SIZE).bit_length() - 1


def _width(count: int) -> int:
    return max(2, 1 << (count - 1).bit_length())


def _layer_width(ctx: object, base: int) -> int:
    return _width(-(-_file(ctx).length // (BLOCK_SIZE << base)))


def _request_fields(ctx: object, *, base: int | None = None, index: int = 0,
                    length: int = 2, full_proof: bool = True) -> dict:
    base = _base(ctx) if base is None else base
    width = _layer_width(ctx, base)
    proof = (width.bit_length() - 1) - 1 if full_proof else 0
    fields = dict(pieces_root=_file(ctx).pieces_root, base_layer=base, index=index,
                  length=length, proof_layers=proof)
    ctx.hash_request = fields
    return fields


def _hash_request(**options: object) -> Wire:
    return Wire({"type": "hash_request", **{k: Computed(
        lambda ctx, k=k: _request_fields(ctx, **options)[k], k) for k in FIELDS}})


def _same_fields(m: dict, ctx: object) -> bool:
    return all(m.get(k) == ctx.hash_request[k] for k in FIELDS)


def _correlates(answer: object, ctx: object) -> str | None:
    found = [m for m in answer.messages if m["type"] in HASH_MESSAGES]
    if not found:
        return None
    m = found[0]
    for k in FIELDS:
        if m.get(k) != ctx.hash_request[k]:
            return f"{m['type']}.{k} = {m.get(k)!r}, the request said {ctx.hash_request[k]!r}"
    return ""


def _proves(answer: object, ctx: object) -> str | None:
    found = [m for m in answer.messages if m["type"] in HASH_MESSAGES]
    if not found:
        return None
    m = found[0]
    if m["type"] != "hashes":
        return "a hash_reject for a piece layer of the torrent the target seeds"
    req = ctx.hash_request
    hashes = list(m["hashes"])
    n = req["length"]
    if len(hashes) < n:
        return f"{len(hashes)} hashes for a request of {n}"
    level = hashes[:n]
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest()
                 for i in range(0, len(level), 2)]
    node, position = level[0], req["index"] // n
    covered = n
    for uncle in hashes[n:]:
        node = hashlib.sha256(node + uncle if position % 2 == 0 else uncle + node).digest()
        position //= 2
        covered *= 2
    if covered < _layer_width(ctx, req["base_layer"]):
        return f"the proof stops {covered} hashes wide, below the root"
    root = _file(ctx).pieces_root
    return "" if node == root else f"the hashes and uncles lead to {node.hex()[:16]}…, " \
                                   f"not the pieces root {root.hex()[:16]}…"



CASES = [
    _case(id="bep52/hash-request/answered", title="a piece-layer request gets hashes or a "
          "reject", spec=SPEC, requirement=ANSWERED, level="MUST",
          rule="bep52/hash-request/answered",
          steps=[*opening(v2=True), unchoked(), Step(send=_hash_request(),
                                                     expect=Receives(HASH_MESSAGES))]),
    _case(id="bep52/hashes/correlate", title="the answer repeats the request's fields",
          spec=SPEC, requirement=CORRELATE, level="MUST", rule="bep52/hashes/correlate",
          steps=[*opening(v2=True), unchoked(), Step(send=_hash_request(), expect=SessionRule(
              _correlates, "the request's fields", pending="no hashes or hash_reject"))]),
    _case(id="bep52/hashes/proof-first", title="hashes 0-1 of the piece layer prove up to "
          "the pieces root", spec=SPEC, requirement=PROOFS, level="MUST",
          rule="bep52/hashes/proof",
          steps=[*opening(v2=True), unchoked(), Step(send=_hash_request(), expect=SessionRule(
              _proves, "hashes and uncles lead to the pieces root",
              pending="no hashes or hash_reject"))]),
    _case(id="bep52/hashes/proof-second", title="hashes 2-3 of the piece layer prove up to "
          "the pieces root", spec=SPEC, requirement=PROOFS, level="MUST",
          rule="bep52/hashes/proof",
          steps=[*opening(v2=True), unchoked(), Step(send=_hash_request(index=2),
                                                     expect=SessionRule(
              _proves, "hashes and uncles lead to the pieces root",
              pending="no hashes or hash_reject"))]),
    _case(id="bep52/hash-request/while-choked", title="a hash request while choked is "
          "answered", spec=SPEC, requirement=CHOKE, level="MUST",
          rule="bep52/hash-request/answered",
          steps=[*opening(v2=True), Step(send=_hash_request(),
                                         expect=Receives(HASH_MESSAGES))]),
    _case(id="bep52/hash-request/unknown-root", title="a request for an unknown pieces root "
          "is rejected", spec=SPEC, requirement=ANSWERED, level="MUST",
          rule="bep52/hash-request/answered",
          steps=[*opening(v2=True), unchoked(), Step(send=Wire({
              "type": "hash_request", "pieces_root": b"\x5a" * 32, "base_layer": 1,
              "index": 0, "length": 2, "proof_layers": 0}), expect=Receives("hash_reject"))]),
    _case(id="bep52/hash-request/bad-length", title="a length of 3: answered or closed",
          spec=SPEC, requirement=LENGTH, level="MUST", rule="bep52/hash-request/answered",
          robustness=True,
          steps=[*opening(v2=True), unchoked(), Step(send=_hash_request(length=3),
                                                     expect=OneOf(Closes(),
                                                                  Receives(HASH_MESSAGES)))]),
    _case(id="bep52/hash-request/leaf-after-piece", title="leaf hashes right after serving a "
          "block of their range", spec=SPEC, requirement=LEAF, level="MUST",
          rule="bep52/hash-request/leaf-layer",
          steps=[*opening(v2=True), unchoked(),
                 Step(send=request(Computed(lambda ctx: _file(ctx).offset
                                            // ctx.facts.metainfo.piece_length, "file's piece")),
                      expect=Receives("piece")),
                 Step(send=_hash_request(base=0), expect=Receives("hashes"))]),
]
