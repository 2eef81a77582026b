"""BEP 3 §peer messages: 'request', 'piece', 'cancel' and keep-alives; the block-size limit.

Every case here is unchoked first (interested, then the target's unchoke) without the fast
extension; the BEP 6 variants are in bep6_fast."""

from __future__ import annotations

from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.conformance.bittorrent._common import (
    COUNT,
    LAST,
    LAST_LIMIT,
    bt_case,
    opening,
    piece_sha1,
    request,
    unchoked,
    wire,
)
from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.stream_verifiers import (
    Closes,
    NoMessage,
    Receives,
    SessionRule,
    StaysOpen,
)
from p2pkit.conformance.verifiers import OneOf, Satisfies

SPEC = "BEP 3 §peer messages"
REQUEST = "'request' messages contain an index, begin, and length."
PIECE = "'piece' messages contain an index, begin, and piece."
BY_INDEX = ("The peer protocol refers to pieces of the file by index as described in the "
            "metainfo file, starting at zero.")
LIMIT = ("All current implementations use 2^14 (16 kiB), and close connections which request "
         "an amount greater than that.")
POWER = ("Length is generally a power of two unless it gets truncated by the end of the "
         "file.")
PIPELINE = ("When data is being transferred, downloaders should keep several piece requests "
            "queued up at once in order to get good TCP performance (this is called "
            "'pipelining'.)")
CANCEL = "'cancel' messages have the same payload as request messages."
KEEPALIVE = "Messages of length zero are keepalives, and ignored."
CONTENT = ("Its payload is a bitfield with each index that downloader has sent set to one and "
           "the rest set to zero.")
HASH_CHECKED = ("When a peer finishes downloading a piece and checks that the hash matches, it "
                "announces that it has that piece to all of its peers.")

BLOCK = 16384
FIRST_BLOCK = Computed(lambda ctx: min(BLOCK, ctx.facts.piece_length(0)), "first block length")
LAST_BEGIN = Computed(lambda ctx: (ctx.facts.piece_length(ctx.facts.piece_count - 1) - 1)
                      // BLOCK * BLOCK, "last block's begin")
LAST_BLOCK = Computed(lambda ctx: ctx.facts.piece_length(ctx.facts.piece_count - 1)
                      - (ctx.facts.piece_length(ctx.facts.piece_count - 1) - 1) // BLOCK * BLOCK,
                      "last block's length")


def _whole_piece(index_of) -> Computed:
    def build(ctx: object) -> bytes:
        index = index_of(ctx)
        return b"".join(PeerMessage.build(dict(type="request", index=i, begin=b, length=n))
                        for i, b, n in ctx.facts.blocks(index))
    return Computed(build, "a request for every block of the piece")


def _piece_hash(index_of):
    def rule(answer: object, ctx: object) -> str | None:
        index = index_of(ctx)
        digest = piece_sha1(answer.session, index, ctx.facts.piece_length(index))
        if digest is None:
            return None
        want = ctx.facts.metainfo.pieces[index]
        return "" if digest == want else (
            f"piece {index} hashes to {digest.hex()}, the torrent says {want.hex()}")
    return SessionRule(rule, "the blocks of the piece hash to the torrent's piece hash",
                       pending="the piece's blocks did not all arrive", path="piece")


def _pipelined(ctx: object) -> bytes:
    blocks = [b for i in range(min(ctx.facts.piece_count, 4)) for b in ctx.facts.blocks(i)][:8]
    ctx.pipelined = blocks
    return b"".join(PeerMessage.build(dict(type="request", index=i, begin=b, length=n))
                    for i, b, n in blocks)


def _all_pipelined(answer: object, ctx: object) -> str | None:
    got = {(m["index"], m["begin"], len(m["piece"])) for m in answer.session.of_type("piece")}
    missing = [b for b in ctx.pipelined if b not in got]
    return "" if not missing else None


def _at_most_one(answer: object, ctx: object) -> str:
    n = sum(1 for m in answer.session.of_type("piece") if m["index"] == 0 and m["begin"] == 0)
    return "" if n <= 1 else f"{n} pieces for one request"


def _outside(m: dict, ctx: object) -> bool:
    return m["index"] >= ctx.facts.piece_count or (
        m["begin"] + len(m["piece"]) > ctx.facts.request_limit(m["index"]))


def _no_piece_outside() -> NoMessage:
    return NoMessage("piece", where=_outside, text="beyond the torrent's pieces")


def _out_of_bounds(name: str, title: str, index, begin, length, *,
                   rule: str = "bep3/request/block-bounds") -> object:
    return bt_case(
        id=f"bep3/request/{name}", title=title, spec=SPEC, requirement=BY_INDEX,
        level="MUST", rule=rule, tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(index, begin, length),
                    expect=NoMessage("piece", text="(closing, or staying silent, is fine)"))])


def _announced(session: object) -> set[int] | None:
    bitfields = session.of_type("bitfield")
    if session.of_type("have_all"):
        return None
    have = {m["index"] for m in session.of_type("have")}
    if bitfields:
        bits = bitfields[0]["bitfield"]
        have |= {i for i in range(len(bits) * 8) if bits[i // 8] & (0x80 >> (i % 8))}
    return have


def _unannounced(ctx: object) -> int:
    have = _announced(ctx.session) or set()
    missing = [i for i in range(ctx.facts.piece_count) if i not in have]
    if not missing:
        raise KeyError("the target announced every piece")
    return missing[0]


ANNOUNCED_ALL = SessionRule(
    lambda a, ctx: "" if _announced(a.session) is None or not [
        i for i in range(ctx.facts.piece_count) if i not in _announced(a.session)] else "no",
    "the target announced every piece: nothing to ask outside what it has")


CASES = [
    bt_case(
        id="bep3/request/first-block", title="a 16 KiB request gets the matching piece",
        spec=SPEC, requirement=PIECE, level="MUST", rule="bep3/request/answer",
        tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0, 0, FIRST_BLOCK), expect=Receives(
                   "piece", index=0, begin=0, piece=Satisfies(
                       lambda v, ctx: len(v) == min(BLOCK, ctx.facts.piece_length(0)),
                       "as long as the request")))]),
    bt_case(
        id="bep3/request/last-block", title="the torrent's last, short block",
        spec=SPEC, requirement=POWER, level="MUST", rule="bep3/request/answer",
        tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(LAST, LAST_BEGIN, LAST_BLOCK), expect=Receives(
                   "piece", index=LAST, begin=LAST_BEGIN, piece=Satisfies(
                       lambda v, ctx: len(v) == ctx.resolve(LAST_BLOCK),
                       "as long as the request")))]),
    bt_case(
        id="bep3/piece/first-piece-data", title="piece 0's blocks hash to the torrent's hash",
        spec="BEP 3 §peer protocol", requirement=HASH_CHECKED, level="MUST",
        rule="bep3/piece/data", tags=("torrent", "v1"),
        steps=[*opening(fast=False), unchoked(),
               Step(send=Raw(_whole_piece(lambda ctx: 0)), expect=_piece_hash(lambda ctx: 0))]),
    bt_case(
        id="bep3/piece/last-piece-data", title="the last piece's blocks hash to its hash",
        spec="BEP 3 §peer protocol", requirement=HASH_CHECKED, level="MUST",
        rule="bep3/piece/data", tags=("torrent", "v1"),
        steps=[*opening(fast=False), unchoked(),
               Step(send=Raw(_whole_piece(lambda ctx: ctx.facts.piece_count - 1)),
                    expect=_piece_hash(lambda ctx: ctx.facts.piece_count - 1))]),
    bt_case(
        id="bep3/request/pipelined", title="eight requests at once are all answered",
        spec="BEP 3 §peer protocol", requirement=PIPELINE, level="MUST",
        rule="bep3/request/answer", tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=Raw(Computed(_pipelined, "eight requests")), expect=SessionRule(
                   _all_pipelined, "a piece for each request",
                   pending="not every request was answered"))]),
    bt_case(
        id="bep3/piece/within-torrent", title="no piece outside the torrent, ever",
        spec=SPEC, requirement=BY_INDEX, level="MUST", rule="bep3/piece/within-torrent",
        tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0), expect=Receives("piece")),
               Step(send=None, expect=_no_piece_outside())]),
    bt_case(
        id="bep3/piece/announced-only", title="no piece the target did not announce",
        spec=SPEC, requirement=CONTENT, level="MUST", rule="bep3/piece/announced",
        tags=("torrent",),
        steps=[*opening(fast=False), Step(send=None, wait=0.05, unsupported_if=ANNOUNCED_ALL),
               unchoked(),
               Step(send=request(Computed(_unannounced, "a piece it did not announce")),
                    expect=NoMessage("piece", where=lambda m, ctx: m["index"] == _unannounced(
                        ctx), text="for a piece it did not announce"))]),
    _out_of_bounds("index-out-of-range", "a request for piece <piece count>", COUNT, 0, BLOCK,
                   rule="bep3/request/index-bounds"),
    _out_of_bounds("index-huge", "a request for piece 2^32 - 1", 0xFFFF_FFFF, 0, BLOCK,
                   rule="bep3/request/index-bounds"),
    _out_of_bounds("beyond-piece-end", "a block that runs past the piece's end", LAST,
                   Computed(lambda ctx: ctx.resolve(LAST_LIMIT) - 100, "limit - 100"), 101),
    _out_of_bounds("begin-beyond-piece", "a block that starts at the piece's end", 0,
                   Computed(lambda ctx: ctx.facts.piece_length(0), "piece length"), BLOCK),
    _out_of_bounds("last-piece-overrun", "two bytes from the last byte of the torrent", LAST,
                   Computed(lambda ctx: ctx.resolve(LAST_LIMIT) - 1, "limit - 1"), 2),
    bt_case(
        id="bep3/request/oversized-block", title="a 32 KiB request: served, or the connection "
        "closed", spec=SPEC, requirement=LIMIT, level="MAY", rule="bep3/request/block-size",
        tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0, 0, 32768), expect=OneOf(
                   Closes(), Receives("piece", index=0, begin=0)))]),
    bt_case(
        id="bep3/request/unaligned", title="a block that does not start on 16 KiB",
        spec=SPEC, requirement=REQUEST, level="INFO", rule="bep3/request/alignment",
        tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0, 1, 1000), expect=Receives("piece", index=0, begin=1))]),
    bt_case(
        id="bep3/cancel/before-answer", title="request and cancel together: at most one piece",
        spec=SPEC, requirement=CANCEL, level="MUST", rule="bep3/cancel",
        steps=[*opening(fast=False), unchoked(),
               Step(send=Raw(PeerMessage.build(dict(type="request", index=0, begin=0,
                                                    length=BLOCK))
                             + PeerMessage.build(dict(type="cancel", index=0, begin=0,
                                                      length=BLOCK))),
                    expect=SessionRule(_at_most_one, "the connection stays, at most one piece",
                                       silence=True))]),
    bt_case(
        id="bep3/cancel/unknown-request", title="a cancel for a block never requested",
        spec=SPEC, requirement=CANCEL, level="MUST", rule="bep3/cancel",
        steps=[*opening(fast=False), unchoked(),
               Step(send=wire("cancel", index=0, begin=0, length=BLOCK), expect=StaysOpen()),
               Step(send=request(0), expect=Receives("piece"))]),
    bt_case(
        id="bep3/keep-alive/ignored", title="a keep-alive, then a request", spec=SPEC,
        requirement=KEEPALIVE, level="MUST", rule="bep3/keep-alive",
        steps=[*opening(fast=False), unchoked(),
               Step(send=wire("keep_alive"), expect=StaysOpen()),
               Step(send=request(0), expect=Receives("piece"))]),
    bt_case(
        id="bep3/keep-alive/before-interest", title="keep-alives right after the handshake",
        spec=SPEC, requirement=KEEPALIVE, level="MUST", rule="bep3/keep-alive",
        steps=[*opening(fast=False), Step(send=Raw(bytes(4) * 3), expect=StaysOpen()),
               unchoked()]),
    bt_case(
        id="bep3/keep-alive/between-requests", title="keep-alives inside a request pipeline",
        spec=SPEC, requirement=KEEPALIVE, level="MUST", rule="bep3/keep-alive",
        steps=[*opening(fast=False), unchoked(),
               Step(send=Raw(bytes(4) + PeerMessage.build(dict(type="request", index=0,
                                                                begin=0, length=BLOCK))
                             + bytes(4)), expect=Receives("piece", index=0, begin=0))]),
]
