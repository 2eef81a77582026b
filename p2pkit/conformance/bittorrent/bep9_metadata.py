"""BEP 9 §extension message: ut_metadata request, data and reject; metadata_size (§extension
header). Works with ``--magnet`` too: the data is checked against the info-hash."""

from __future__ import annotations

import hashlib

from p2pkit import bencode
from p2pkit.bittorrent.wire.extensions import encode_extended
from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.conformance.bittorrent._common import (
    bt_case,
    extended,
    opening,
    our_extension_handshake,
)
from p2pkit.conformance.case import Computed, Raw, Step, Wire
from p2pkit.conformance.stream_verifiers import Receives, SessionRule, StaysOpen
from p2pkit.conformance.verifiers import Satisfies

SPEC = "BEP 9 §extension message"
SAME_PIECE = "The response MUST have the same ``piece`` as the request did."
VERIFY = "A peer MUST verify that any piece it sends passes the info-hash verification."
SIZE_16K = "If it is not the last piece of the metadata, it MUST be 16kiB."
TOTAL = 'This key has the same semantics as the "metadata_size" in the extension header.'
UNKNOWN = "In order to support future extensability, an unrecognized message ID MUST be ignored."
HEADER = ('It also adds "metadata_size" to the handshake message (not the "m" dictionary) '
          "specifying an integer value of the number of bytes of the metadata.")
ANSWER = ("The response to this message, from a peer supporting the extension, is either a "
          "``reject`` or a ``data`` message.")
PIECE = 16384


def _case(**fields: object) -> object:
    fields.setdefault("extension", "BEP 9")
    return bt_case(**fields)


def _metadata_size(ctx: object) -> int | None:
    for m in ctx.session.of_type("extended_handshake"):
        size = (m.get("items") or {}).get("metadata_size")
        if isinstance(size, int):
            return size
    return None


def _setup() -> list[Step]:
    return [*opening(extension_handshake=True), Step(send=our_extension_handshake(), wait=0.05)]


def _ask(piece: object) -> Wire:
    return extended("ut_metadata", {"msg_type": "request", "piece": piece})


def _all_pieces(ctx: object) -> list:
    size = _metadata_size(ctx)
    if size is None:
        raise KeyError("no metadata_size in the target's extension handshake")
    return list(range((size + PIECE - 1) // PIECE))


def _ask_all(ctx: object) -> bytes:
    mid = ctx.their_extension("ut_metadata")
    return b"".join(PeerMessage.build(dict(type="extended", extended_id=mid, payload=(
        encode_extended("ut_metadata", {"msg_type": "request", "piece": i}))))
        for i in _all_pieces(ctx))


def _data_check(answer: object, ctx: object) -> str | None:
    size = _metadata_size(ctx)
    pieces = {m["piece"]: m.get("metadata", b"") for m in answer.session.of_type("ut_metadata")
              if m.get("msg_type") == "data"}
    if size is None or len(pieces) < (size + PIECE - 1) // PIECE:
        return None
    metadata = b"".join(pieces[i] for i in sorted(pieces))
    if hashlib.sha1(metadata).digest() == ctx.info_hash or \
            hashlib.sha256(metadata).digest()[:20] == ctx.info_hash:
        return ""
    return (f"the {len(metadata)} bytes of metadata do not hash to the info-hash "
            f"{ctx.info_hash.hex()}")


def _sizes(answer: object, ctx: object) -> str | None:
    size = _metadata_size(ctx)
    data = [m for m in answer.session.of_type("ut_metadata") if m.get("msg_type") == "data"]
    if size is None or not data:
        return None
    last = (size - 1) // PIECE
    for m in data:
        n = len(m.get("metadata", b""))
        want = PIECE if m["piece"] < last else size - last * PIECE
        if n != want:
            return f"piece {m['piece']} carries {n} bytes, expected {want}"
    return ""


CASES = [
    _case(id="bep9/header/metadata-size", title="metadata_size in the extension handshake",
          spec="BEP 9 §extension header", requirement=HEADER, level="MUST",
          rule="bep9/metadata-size",
          steps=[*opening(extension_handshake=True), Step(send=None, expect=Receives(
              "extended_handshake", session=True, items__metadata_size=Satisfies(
                  lambda v, ctx: isinstance(v, int) and v > 0, "a positive integer")))]),
    _case(id="bep9/header/metadata-size-matches", title="metadata_size is the info "
          "dictionary's size", spec="BEP 9 §extension header", requirement=HEADER,
          level="MUST", rule="bep9/metadata-size", tags=("torrent",),
          steps=[*opening(extension_handshake=True), Step(send=None, expect=Receives(
              "extended_handshake", session=True, items__metadata_size=Satisfies(
                  lambda v, ctx: v == len(ctx.facts.metainfo.info_bytes),
                  "the length of the torrent's info dictionary")))]),
    _case(id="bep9/request/same-piece", title="a request for piece 0 is answered for piece 0",
          spec=SPEC, requirement=SAME_PIECE, level="MUST", rule="bep9/request/same-piece",
          steps=[*_setup(), Step(send=_ask(0), expect=Receives(
              "ut_metadata", where=lambda m, ctx: m.get("msg_type") in ("data", "reject"),
              piece=0))]),
    _case(id="bep9/request/answered", title="a seed answers a metadata request with data",
          spec=SPEC, requirement=ANSWER, level="MUST", rule="bep9/request/answered",
          steps=[*_setup(), Step(send=_ask(0), expect=Receives(
              "ut_metadata", msg_type="data"))]),
    _case(id="bep9/data/total-size", title="total_size equals metadata_size", spec=SPEC,
          requirement=TOTAL, level="MUST", rule="bep9/data/total-size",
          steps=[*_setup(), Step(send=_ask(0), expect=Receives(
              "ut_metadata", msg_type="data", total_size=Satisfies(
                  lambda v, ctx: v == _metadata_size(ctx), "metadata_size")))]),
    _case(id="bep9/data/piece-size", title="pieces are 16 KiB but the last", spec=SPEC,
          requirement=SIZE_16K, level="MUST", rule="bep9/data/piece-size",
          steps=[*_setup(), Step(send=_ask(0), expect=SessionRule(
              _sizes, "16 KiB pieces, the last one shorter", pending="no data message"))]),
    _case(id="bep9/data/verifies", title="the metadata hashes to the info-hash", spec=SPEC,
          requirement=VERIFY, level="MUST", rule="bep9/data/verified",
          steps=[*_setup(), Step(send=Raw(Computed(_ask_all, "a request per metadata piece")),
                                 expect=SessionRule(_data_check, "SHA-1 (or SHA-256) of the "
                                                    "metadata is the info-hash",
                                                    pending="not every metadata piece came"))]),
    _case(id="bep9/request/out-of-range", title="a request beyond the metadata is rejected",
          spec=SPEC, requirement=SAME_PIECE, level="MUST", rule="bep9/request/same-piece",
          steps=[*_setup(), Step(send=_ask(1000), expect=Receives(
              "ut_metadata", where=lambda m, ctx: m.get("msg_type") in ("data", "reject"),
              msg_type="reject", piece=1000))]),
    _case(id="bep9/request/unknown-msg-type-ignored", title="msg_type 7 is ignored", spec=SPEC,
          requirement=UNKNOWN, level="MUST", rule="bep9/unknown-msg-type",
          steps=[*_setup(),
                 Step(send=Wire({"type": "extended", "extended_id": Computed(
                     lambda ctx: ctx.their_extension("ut_metadata"), "their ut_metadata id"),
                     "payload": bencode.encode({b"msg_type": 7, b"piece": 0})}),
                     expect=StaysOpen()),
                 Step(send=_ask(0), expect=Receives("ut_metadata", msg_type="data"))]),
]
