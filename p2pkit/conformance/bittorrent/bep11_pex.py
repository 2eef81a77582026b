"""BEP 11 §ut_pex: what a peer-exchange message holds, and how often one comes.

A target sends PEX only when it has peers to tell about, so a case that saw no ut_pex message
in its window is unsupported, not passed."""

from __future__ import annotations

from p2pkit.conformance.bittorrent._common import bt_case, opening, our_extension_handshake
from p2pkit.conformance.case import Step
from p2pkit.conformance.stream_verifiers import Receives, SessionRule
from p2pkit.conformance.verifiers import Satisfies

SPEC = "BEP 11 §ut_pex"
FIELDS = ("Messages must contain at least one of the following fields: ``added, added6, "
          "dropped, dropped6``.")
DUPLICATES = "Added or removed contacts must not contain duplicates."
ADDED_DROPPED = "An added contact must not be dropped in the same message."
RATE = "Clients must batch updates to send no more than 1 PEX message per minute."
FLAGS = "added.f: *<optional, bit-flags, 1 byte per added IPv4 peer (string)>*"
#: Seconds a PEX case listens for the target's ut_pex messages.
LISTEN = 1.0

NO_PEX = SessionRule(lambda a, ctx: "" if not a.session.of_type("ut_pex") else "sent",
                     "the target sent no ut_pex message in the window")


def _case(**fields: object) -> object:
    fields.setdefault("extension", "BEP 11")
    return bt_case(**fields)


def _peers(m: dict, key: str) -> list:
    return [(str(p.get("ip")), p.get("port")) for p in (m.get(key) or [])]


def _each(check):
    def rule(answer: object, ctx: object) -> str:
        for m in answer.session.of_type("ut_pex"):
            reason = check(m)
            if reason:
                return reason
        return ""
    return rule


def _fields(m: dict) -> str:
    if m.get("error"):
        return f"not a valid ut_pex message: {m['error']}"
    keys = ("added", "added6", "dropped", "dropped6")
    return "" if any(k in m for k in keys) else "none of added/added6/dropped/dropped6"


def _duplicates(m: dict) -> str:
    for key in ("added", "added6", "dropped", "dropped6"):
        peers = _peers(m, key)
        if len(peers) != len(set(peers)):
            return f"{key} lists a contact twice"
    return ""


def _added_dropped(m: dict) -> str:
    for a, d in (("added", "dropped"), ("added6", "dropped6")):
        both = set(_peers(m, a)) & set(_peers(m, d))
        if both:
            return f"{sorted(both)[0]} both added and dropped"
    return ""


def _flags(m: dict) -> str:
    for key in ("added", "added6"):
        flags = m.get(key + ".f")
        if flags is not None and len(flags) != len(m.get(key) or []):
            return f"{len(flags)} {key}.f flags for {len(m.get(key) or [])} peers"
    return ""


def _rate(answer: object, ctx: object) -> str:
    n = len(answer.session.of_type("ut_pex"))
    return "" if n <= 1 else f"{n} ut_pex messages within {LISTEN:g} s"


def _listen() -> list[Step]:
    return [*opening(extension_handshake=True), Step(send=our_extension_handshake(),
                                                     wait=LISTEN, unsupported_if=NO_PEX)]


def _message_case(name: str, title: str, requirement: str, check, rule: str) -> object:
    return _case(id=f"bep11/message/{name}", title=title, spec=SPEC, requirement=requirement,
                 level="MUST", rule=rule, steps=[*_listen(), Step(send=None, expect=SessionRule(
                     _each(check), title, silence=True))])


CASES = [
    _case(id="bep11/handshake/offered", title="ut_pex in the extension handshake", spec=SPEC,
          requirement=RATE, level="INFO", rule="bep11/offered",
          steps=[*opening(), Step(send=None, expect=Receives(
              "extended_handshake", session=True, items__m__ut_pex=Satisfies(
                  lambda v, ctx: isinstance(v, int) and v > 0, "a positive id")))]),
    _message_case("fields", "each message has added/added6/dropped/dropped6", FIELDS, _fields,
                  "bep11/message/fields"),
    _message_case("no-duplicates", "no contact listed twice", DUPLICATES, _duplicates,
                  "bep11/message/duplicates"),
    _message_case("added-not-dropped", "no contact both added and dropped", ADDED_DROPPED,
                  _added_dropped, "bep11/message/added-dropped"),
    _message_case("flags", "one flag byte per added peer", FLAGS, _flags,
                  "bep11/message/fields"),
    _case(id="bep11/rate/once-a-minute", title="at most one ut_pex message a minute", spec=SPEC,
          requirement=RATE, level="MUST", rule="bep11/rate",
          steps=[*_listen(), Step(send=None, expect=SessionRule(_rate, "one message at most",
                                                                silence=True))]),
]
