"""BEP 3 §peer protocol: choking and interest ("Connections start out choked and not
interested"; "Choking is a notification that no data will be sent until unchoking happens")."""

from __future__ import annotations

from p2pkit.conformance.bittorrent._common import (
    bt_case,
    opening,
    piece_while_choked,
    request,
    unchoked,
    wire,
)
from p2pkit.conformance.case import Step
from p2pkit.conformance.stream_verifiers import NoMessage, Receives, SessionRule, StaysOpen

SPEC = "BEP 3 §peer protocol"
CHOKED = ("Choking is a notification that no data will be sent until unchoking happens.")
START = "Connections start out choked and not interested."
TRANSFER = ("Data transfer takes place whenever one side is interested and the other side is "
            "not choking.")
INTEREST = ("Interest state must be kept up to date at all times - whenever a downloader "
            "doesn't have something they currently would ask a peer for in unchoked, they "
            "must express lack of interest, despite being choked.")

def _choked_piece(answer: object, ctx: object) -> str:
    m = piece_while_choked(answer.session)
    return "" if m is None else f"piece {m['index']}/{m['begin']} sent while choking"


CASES = [
    bt_case(
        id="bep3/choke/no-data-while-choked", title="a request before unchoke gets no piece",
        spec=SPEC, requirement=CHOKED, level="MUST", rule="bep3/choke/no-data-while-choked",
        steps=[*opening(fast=False), Step(send=request(0), expect=SessionRule(
            _choked_piece, "no piece while the target chokes", silence=True))]),
    bt_case(
        id="bep3/choke/starts-choked", title="the target does not unchoke before interest",
        spec=SPEC, requirement=START, level="INFO", rule="bep3/choke/initial",
        steps=[*opening(fast=False), Step(send=None, expect=NoMessage("unchoke"))]),
    bt_case(
        id="bep3/choke/unchoke-after-interested", title="interested gets an unchoke from a "
        "seed with a free slot", spec=SPEC, requirement=TRANSFER, level="INFO",
        rule="bep3/choke/algorithm", steps=[*opening(fast=False), unchoked()]),
    bt_case(
        id="bep3/choke/data-when-unchoked", title="interested and unchoked: data flows",
        spec=SPEC, requirement=TRANSFER, level="MUST", rule="bep3/request/answer",
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0), expect=Receives("piece", index=0, begin=0))]),
    bt_case(
        id="bep3/interest/not-interested-tolerated", title="not interested after interested",
        spec=SPEC, requirement=INTEREST, level="MUST", rule="bep3/interest/state",
        steps=[*opening(fast=False), unchoked(),
               Step(send=wire("not_interested"), expect=StaysOpen())]),
    bt_case(
        id="bep3/interest/seed-not-interested", title="a seed is not interested in a peer "
        "with nothing", spec=SPEC, requirement=INTEREST, level="MUST",
        rule="bep3/interest/up-to-date",
        steps=[*opening(fast=False), Step(send=wire("interested"),
                                          expect=NoMessage("interested"))]),
    bt_case(
        id="bep3/choke/harness-choke-tolerated", title="the harness choking and unchoking the "
        "target", spec=SPEC, requirement=START, level="MUST", rule="bep3/interest/state",
        steps=[*opening(fast=False), Step(send=wire("unchoke"), wait=0.05),
               Step(send=wire("choke"), wait=0.05), unchoked()]),
]
