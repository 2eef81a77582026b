"""BEP 3 §peer messages: 'bitfield' (only first, its size, spare bits zero) and 'have'.

The harness leaves the fast bit clear here, so the target has to say what it has with a
bitfield (BEP 6's have_all/have_none are for bep6_fast)."""

from __future__ import annotations

from p2pkit.conformance.bittorrent._common import (
    AVAILABILITY,
    bt_case,
    first_after_handshake,
    opening,
    request,
    unchoked,
)
from p2pkit.conformance.case import Step
from p2pkit.conformance.stream_verifiers import Receives, SessionRule

SPEC = "BEP 3 §peer messages"
ONLY_FIRST = "'bitfield' is only ever sent as the first message."
CONTENT = ("Its payload is a bitfield with each index that downloader has sent set to one and "
           "the rest set to zero.")
LAYOUT = ("The first byte of the bitfield corresponds to indices 0 - 7 from high bit to low "
          "bit, respectively. The next one 8-15, etc.")
SPARE = "Spare bits at the end are set to zero."
HAVE = ("The 'have' message's payload is a single number, the index which that downloader just "
        "completed and checked the hash of.")
SKIP = "Downloaders which don't have anything yet may skip the 'bitfield' message."


def _bitfield(answer: object) -> bytes | None:
    found = answer.session.of_type("bitfield")
    return found[0]["bitfield"] if found else None


def _first_is_bitfield(answer: object, ctx: object) -> str:
    first = first_after_handshake(answer.session)
    bitfields = answer.session.of_type("bitfield")
    if bitfields and first is not bitfields[0]:
        return f"the first message after the handshake is a {first['type']}, not the bitfield"
    return ""


def _size(answer: object, ctx: object) -> str | None:
    bits = _bitfield(answer)
    if bits is None:
        return None
    want = (ctx.facts.piece_count + 7) // 8
    return "" if len(bits) == want else (
        f"{len(bits)} bytes for {ctx.facts.piece_count} pieces, expected {want}")


def _spare(answer: object, ctx: object) -> str | None:
    bits = _bitfield(answer)
    if bits is None:
        return None
    n = ctx.facts.piece_count
    spare = [i for i in range(n, len(bits) * 8) if bits[i // 8] & (0x80 >> (i % 8))]
    return "" if not spare else f"spare bits set: {spare[:8]}"


def _complete(answer: object, ctx: object) -> str | None:
    bits = _bitfield(answer)
    if bits is None:
        return None
    n = ctx.facts.piece_count
    missing = [i for i in range(n) if i // 8 >= len(bits) or not bits[i // 8] & (
        0x80 >> (i % 8))]
    return "" if not missing else f"pieces not announced: {missing[:8]} (seeding partly?)"


def _once(answer: object, ctx: object) -> str:
    s = answer.session
    first = first_after_handshake(s)
    for m in s.messages:
        if m["type"] == "bitfield" and m is not first:
            return "a second bitfield, after the first message"
    return ""


def _haves_valid(answer: object, ctx: object) -> str:
    for m in answer.session.of_type("have"):
        if not 0 <= m["index"] < ctx.facts.piece_count:
            return f"have for piece {m['index']} of a {ctx.facts.piece_count}-piece torrent"
    return ""


def _no_redundant_have(answer: object, ctx: object) -> str:
    bits = _bitfield(answer) or b""
    for m in answer.session.of_type("have"):
        i = m["index"]
        if i // 8 < len(bits) and bits[i // 8] & (0x80 >> (i % 8)):
            return f"have for piece {i}, already in its bitfield"
    return ""


def _bitfield_rule(fn, text: str) -> Step:
    return Step(send=None, expect=SessionRule(fn, text, pending="no bitfield (a seeder has "
                                              "pieces to announce)", path="bitfield"))


CASES = [
    bt_case(
        id="bep3/bitfield/first", title="the bitfield, if any, is the first message",
        spec=SPEC, requirement=ONLY_FIRST, level="MUST", rule="bep3/bitfield/first",
        steps=[*opening(fast=False), Step(send=None, expect=SessionRule(
            _first_is_bitfield, "the bitfield is the first message after the handshake"))]),
    bt_case(
        id="bep3/bitfield/sent-by-seed", title="a seed announces its pieces with a bitfield",
        spec=SPEC, requirement=SKIP, level="MUST", rule="bep3/bitfield/first",
        steps=[*opening(fast=False), Step(send=None, expect=Receives(
            AVAILABILITY, session=True, text="(a seed has pieces: it may not skip the bitfield)"))],
        tags=("torrent",)),
    bt_case(
        id="bep3/bitfield/size", title="ceil(pieces / 8) bytes", spec=SPEC,
        requirement=LAYOUT, level="MUST", rule="bep3/bitfield/size", tags=("torrent",),
        steps=[*opening(fast=False), _bitfield_rule(_size, "ceil(pieces / 8) bytes")]),
    bt_case(
        id="bep3/bitfield/spare-bits", title="spare bits at the end are zero", spec=SPEC,
        requirement=SPARE, level="MUST", rule="bep3/bitfield/spare-bits", tags=("torrent",),
        steps=[*opening(fast=False), _bitfield_rule(_spare, "spare bits zero")]),
    bt_case(
        id="bep3/bitfield/seed-complete", title="the seed announces every piece of the torrent",
        spec=SPEC, requirement=CONTENT, level="INFO", rule="bep3/bitfield/content",
        tags=("torrent",),
        steps=[*opening(fast=False), _bitfield_rule(_complete, "every piece set")]),
    bt_case(
        id="bep3/bitfield/only-once", title="no second bitfield later in the session",
        spec=SPEC, requirement=ONLY_FIRST, level="MUST", rule="bep3/bitfield/only-first",
        steps=[*opening(fast=False), unchoked(),
               Step(send=request(0), expect=Receives("piece")),
               Step(send=None, expect=SessionRule(_once, "one bitfield only",
                                                  silence=True))]),
    bt_case(
        id="bep3/have/index-in-range", title="have messages name pieces of the torrent",
        spec=SPEC, requirement=HAVE, level="MUST", rule="bep3/have/index", tags=("torrent",),
        steps=[*opening(fast=False), unchoked(),
               Step(send=None, expect=SessionRule(_haves_valid, "have indices below the "
                                                  "piece count", silence=True))]),
    bt_case(
        id="bep3/have/not-redundant", title="no have for a piece already in the bitfield",
        spec=SPEC, requirement=HAVE, level="INFO", rule="bep3/have/redundant",
        steps=[*opening(fast=False), unchoked(),
               Step(send=None, expect=SessionRule(_no_redundant_have, "no redundant have",
                                                  silence=True))]),
]
