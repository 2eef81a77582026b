"""BEP 6 §Fast Extension: have_all/have_none, reject_request, allowed_fast, suggest_piece,
and "every request is guaranteed to result in EXACTLY ONE response".

The harness sets the fast bit; a target that does not set it makes these cases unsupported
(except the "disabled" ones, where the harness leaves the bit clear and the target must close
on a fast message)."""

from __future__ import annotations

from p2pkit.bittorrent.wire.messages import PeerMessage
from p2pkit.conformance.bittorrent._common import (
    AVAILABILITY,
    COUNT,
    bt_case,
    opening,
    piece_while_choked,
    request,
    unchoked,
    wire,
)
from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.stream_runner import NotApplicable
from p2pkit.conformance.stream_verifiers import (
    Closes,
    NoMessage,
    Receives,
    SessionRule,
    StaysOpen,
)
from p2pkit.conformance.verifiers import OneOf

BLOCK = 16384
EXACTLY_ONE = ("Now, every request is guaranteed to result in EXACTLY ONE response which is "
               "either the corresponding reject or corresponding piece message.")
CANCELLED = ("Even when a request is cancelled, the peer receiving the cancel should respond "
             "with either the corresponding reject or the corresponding piece: requests that "
             "are being processed are allowed to complete.")
UNREQUESTED_PIECE = ("Additionally, if a peer receives a piece that was never requested, the "
                     "peer MUST close the connection.")
EXCLUSIVE = ("Exactly one of *Have All*, *Have None*, or *Have Bitfield* MUST appear and only "
             "immediately after the handshake.")
DISABLED_HAVE = ("When the fast extension is disabled, if a peer receives *Have All* or *Have "
                 "None* then the peer MUST close the connection.")
DISABLED_SUGGEST = ("When the fast extension is disabled, if a peer receives a *Suggest Piece* "
                    "message, the peer MUST close the connection.")
DISABLED_REJECT = ("If the fast extension is disabled and a peer receives a reject request "
                   "then the peer MUST close the connection.")
DISABLED_ALLOWED = ("When the fast extension is disabled, if a peer recieves an Allowed Fast "
                    "message then the peer MUST close the connection.")
REJECT_NEVER_SENT = ("If a peer receives a reject for a request that was never sent then the "
                     "peer SHOULD close the connection.")
REJECT_CHOKED = ("If a peer receives a request from a peer its choking, the peer receiving the "
                 "request SHOULD send a reject unless the piece is in the *allowed fast set.*")
ALLOWED_FAST = ("*Allowed Fast* is an advisory message which means \"if you ask for this "
                "piece, I'll give it to you even if you're choked.\"")
ALLOWED_SHOULD = ("A peer SHOULD send Allowed Fast messages to any starting peer unless the "
                  "local peer lacks sufficient resources.")
SUGGEST = ("*Suggest Piece* is an advisory message meaning \"you might like to download this "
           "piece.\"")
SPEC = "BEP 6 §Fast Extension"


def _case(**fields: object) -> object:
    fields.setdefault("extension", "BEP 6")
    return bt_case(**fields)


def _after_handshake(session: object) -> list[dict]:
    out, seen = [], False
    for m in session.messages:
        if m["type"] == "handshake":
            seen = True
        elif seen and m["type"] not in ("extended_handshake", "keep_alive"):
            out.append(m)
    return out


def _exactly_one(answer: object, ctx: object) -> str | None:
    after = _after_handshake(answer.session)
    if not after:
        return None
    if after[0]["type"] not in AVAILABILITY:
        return f"the first message after the handshake is a {after[0]['type']}"
    lead = 0
    for m in after:
        if m["type"] not in AVAILABILITY:
            break
        lead += 1
    if lead > 1:
        return "several of have_all/have_none/bitfield after the handshake: " + ", ".join(
            m["type"] for m in after[:lead])
    return ""


def _only_first(answer: object, ctx: object) -> str:
    after = _after_handshake(answer.session)
    started = False
    for m in after:
        if m["type"] not in AVAILABILITY:
            started = True
        elif started:
            return f"a {m['type']} later in the session, not immediately after the handshake"
    return ""


def _responses(answer: object, block: tuple) -> int:
    n = 0
    for m in answer.session.messages:
        if m["type"] == "reject_request" and (m["index"], m["begin"], m["length"]) == block:
            n += 1
        elif m["type"] == "piece" and (m["index"], m["begin"], len(m["piece"])) == block:
            n += 1
    return n


def _one_response(block: tuple, *, final: bool) -> SessionRule:
    def rule(answer: object, ctx: object) -> str | None:
        n = _responses(answer, block)
        if n == 0:
            return "no reject or piece" if final else None
        return "" if n == 1 else f"{n} responses (piece/reject) to one request"
    return SessionRule(rule, f"exactly one piece or reject for {block}", silence=final,
                       pending="no piece or reject")


def _allowed(answer: object, ctx: object) -> str:
    for m in answer.session.of_type("allowed_fast"):
        if m["index"] >= ctx.facts.piece_count:
            return f"allowed_fast {m['index']} of a {ctx.facts.piece_count}-piece torrent"
    return ""


def _suggested(answer: object, ctx: object) -> str:
    for m in answer.session.of_type("suggest_piece"):
        if m["index"] >= ctx.facts.piece_count:
            return f"suggest_piece {m['index']} of a {ctx.facts.piece_count}-piece torrent"
    return ""


def _first_allowed(ctx: object) -> int:
    found = ctx.session.of_type("allowed_fast")
    if not found:
        raise KeyError("the target offered no allowed_fast piece")
    return found[0]["index"]


def _choked_piece(answer: object, ctx: object) -> str:
    exempt = {a["index"] for a in answer.session.of_type("allowed_fast")}
    m = piece_while_choked(answer.session, exempt)
    return "" if m is None else f"piece {m['index']}/{m['begin']} sent while choking"


def _allowed_fast_set(session: object) -> set[int]:
    return {a["index"] for a in session.of_type("allowed_fast")}


def _not_allowed_fast(ctx: object) -> int:
    allowed = _allowed_fast_set(ctx.session)
    for index in range(ctx.facts.piece_count if ctx.facts.known else 1):
        if index not in allowed:
            return index
    raise NotApplicable("every piece is in the target's allowed fast set")


#: The first piece outside the target's allowed fast set (BEP 6 exempts those from rejects).
NOT_ALLOWED_FAST = Computed(_not_allowed_fast, "a piece outside the allowed fast set")


def _unchoked_then_served(answer: object, ctx: object) -> str | None:
    if piece_while_choked(answer.session, _allowed_fast_set(answer.session)) is not None:
        return "a piece while choking"
    index = ctx.resolve(NOT_ALLOWED_FAST)
    served = [m for m in answer.session.of_type("piece") if m["index"] == index]
    return "" if served else None


UNCHOKED = SessionRule(
    lambda a, ctx: "" if a.session.of_type("unchoke") else "no",
    "the target unchoked the harness unasked: its answer while choking cannot be seen")
NO_ALLOWED_FAST = SessionRule(
    lambda a, ctx: "" if not a.session.of_type("allowed_fast") else "offered",
    "the target offered no allowed_fast piece")


def _disabled(name: str, title: str, requirement: str, message: object) -> object:
    return bt_case(
        id=f"bep6/disabled/{name}", title=title, spec=SPEC, requirement=requirement,
        level="MUST", rule="bep6/disabled/close", robustness=True,
        steps=[*opening(fast=False), Step(send=message, expect=Closes())])


CASES = [
    _case(id="bep6/have/exactly-one", title="exactly one of have_all/have_none/bitfield",
          spec=SPEC, requirement=EXCLUSIVE, level="MUST", rule="bep6/have/exactly-one",
          steps=[*opening(), unchoked(), Step(send=None, expect=SessionRule(
              _exactly_one, "exactly one availability message, first", silence=True))]),
    _case(id="bep6/have/only-after-handshake", title="no have_all/have_none/bitfield later",
          spec=SPEC, requirement=EXCLUSIVE, level="MUST", rule="bep6/have/only-first",
          steps=[*opening(), unchoked(), Step(send=request(0), expect=Receives("piece")),
                 Step(send=None, expect=SessionRule(_only_first, "no later availability "
                                                    "message", silence=True))]),
    _case(id="bep6/have/seed-sends-have-all", title="a seed says have_all", spec=SPEC,
          requirement=EXCLUSIVE, level="INFO", rule="bep6/have/have-all",
          steps=[*opening(), Step(send=None, expect=Receives("have_all", session=True))]),
    _case(id="bep6/reject/on-choke", title="a request while choked is rejected",
          spec=SPEC, requirement=REJECT_CHOKED, level="SHOULD", rule="bep6/reject/on-choke",
          steps=[*opening(), Step(send=None, wait=0.05, unsupported_if=UNCHOKED),
                 Step(send=request(NOT_ALLOWED_FAST), expect=OneOf(
                     Receives("reject_request", begin=0, length=BLOCK,
                              index=NOT_ALLOWED_FAST),
                     SessionRule(_unchoked_then_served, "(or: unchoked meanwhile, and served)",
                                 pending="no piece")))]),
    _case(id="bep6/reject/no-piece-while-choked", title="choked, a request gets no piece",
          spec="BEP 3 §peer protocol",
          requirement="Choking is a notification that no data will be sent until unchoking "
          "happens.", level="MUST", rule="bep3/choke/no-data-while-choked",
          steps=[*opening(), Step(send=request(0), expect=SessionRule(
              _choked_piece, "no piece while the target chokes (allowed fast aside)",
              silence=True))]),
    _case(id="bep6/request/exactly-one-response", title="a request and its cancel get "
          "exactly one response", spec=SPEC, requirement=CANCELLED, level="SHOULD",
          rule="bep6/request/exactly-one",
          steps=[*opening(), unchoked(),
                 Step(send=Raw(PeerMessage.build(dict(type="request", index=0, begin=0,
                                                      length=BLOCK))
                               + PeerMessage.build(dict(type="cancel", index=0, begin=0,
                                                        length=BLOCK))),
                      expect=_one_response((0, 0, BLOCK), final=False)),
                 Step(send=None, expect=_one_response((0, 0, BLOCK), final=True))]),
    _case(id="bep6/request/plain-exactly-one", title="an unchoked request gets exactly one "
          "response", spec=SPEC, requirement=EXACTLY_ONE, level="MUST",
          rule="bep6/request/exactly-one",
          steps=[*opening(), unchoked(),
                 Step(send=request(0), expect=_one_response((0, 0, BLOCK), final=False)),
                 Step(send=None, expect=_one_response((0, 0, BLOCK), final=True))]),
    _case(id="bep6/request/out-of-range", title="a request beyond the torrent: reject or "
          "close, never a piece", spec=SPEC, requirement=EXACTLY_ONE, level="MUST",
          rule="bep3/request/index-bounds", tags=("torrent",),
          steps=[*opening(), unchoked(), Step(send=request(COUNT), expect=NoMessage(
              "piece", text="(a reject or a close is fine)"))]),
    _case(id="bep6/allowed-fast/index", title="allowed_fast names pieces of the torrent",
          spec=SPEC, requirement=ALLOWED_FAST, level="MUST", rule="bep6/allowed-fast/index",
          tags=("torrent",),
          steps=[*opening(), Step(send=None, expect=SessionRule(
              _allowed, "allowed_fast indices below the piece count", silence=True))]),
    _case(id="bep6/allowed-fast/offered", title="a starting peer is offered allowed_fast "
          "pieces", spec=SPEC, requirement=ALLOWED_SHOULD, level="INFO",
          rule="bep6/allowed-fast/offered",
          steps=[*opening(), Step(send=None, expect=Receives("allowed_fast", session=True))]),
    _case(id="bep6/allowed-fast/served-while-choked", title="an allowed_fast piece is served "
          "while choked", spec=SPEC, requirement=ALLOWED_FAST, level="SHOULD",
          rule="bep6/allowed-fast/served",
          steps=[*opening(), Step(send=None, wait=0.3, expect=None,
                                  unsupported_if=NO_ALLOWED_FAST),
                 Step(send=request(Computed(_first_allowed, "an allowed_fast piece")),
                      expect=Receives("piece"))]),
    _case(id="bep6/suggest/index", title="suggest_piece names pieces of the torrent",
          spec=SPEC, requirement=SUGGEST, level="MUST", rule="bep6/suggest/index",
          tags=("torrent",),
          steps=[*opening(), unchoked(), Step(send=None, expect=SessionRule(
              _suggested, "suggest_piece indices below the piece count", silence=True))]),
    _case(id="bep6/reject/unrequested-closes", title="a reject for a request never sent",
          spec=SPEC, requirement=REJECT_NEVER_SENT, level="SHOULD",
          rule="bep6/reject/unrequested", robustness=True,
          steps=[*opening(), Step(send=wire("reject_request", index=0, begin=0, length=BLOCK),
                                  expect=Closes())]),
    _case(id="bep6/piece/unrequested-closes", title="a piece never requested", spec=SPEC,
          requirement=UNREQUESTED_PIECE, level="MUST", rule="bep6/piece/unrequested",
          robustness=True,
          steps=[*opening(), Step(send=wire("piece", index=0, begin=0, piece=b"\x00" * 64),
                                  expect=Closes())]),
    _case(id="bep6/have/have-none-accepted", title="the harness says have_none",
          spec=SPEC, requirement=EXCLUSIVE, level="MUST", rule="bep6/have/accepted",
          steps=[*opening(), Step(send=None, expect=StaysOpen()), unchoked()]),
    _disabled("have-all", "have_all without the fast bit", DISABLED_HAVE, wire("have_all")),
    _disabled("have-none", "have_none without the fast bit", DISABLED_HAVE,
              wire("have_none")),
    _disabled("suggest", "suggest_piece without the fast bit", DISABLED_SUGGEST,
              wire("suggest_piece", index=0)),
    _disabled("reject", "reject_request without the fast bit", DISABLED_REJECT,
              wire("reject_request", index=0, begin=0, length=BLOCK)),
    _disabled("allowed-fast", "allowed_fast without the fast bit", DISABLED_ALLOWED,
              wire("allowed_fast", index=0)),
]
