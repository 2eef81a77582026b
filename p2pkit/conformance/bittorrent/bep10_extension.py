"""BEP 10 §handshake message: the extension handshake (m, v, reqq, p …) and extended ids."""

from __future__ import annotations

from p2pkit import bencode
from p2pkit.conformance.bittorrent._common import (
    HARNESS_EXTENSIONS,
    bt_case,
    opening,
    our_extension_handshake,
    unchoked,
    wire,
)
from p2pkit.conformance.case import Step
from p2pkit.conformance.stream_verifiers import Receives, SessionRule, StaysOpen
from p2pkit.conformance.verifiers import Present

SPEC = "BEP 10 §handshake message"
SENT = ("This message should be sent immediately after the standard bittorrent handshake to any "
        "peer that supports this extension protocol.")
DICTIONARY = "The payload of the handshake message is a bencoded dictionary."
M = ("Dictionary of supported extension messages which maps names of extensions to an extended "
     "message ID for each extension message.")
UNIQUE = "The only requirement on these IDs is that no extension message share the same one."
V = "Client name and version (as a utf-8 string)."
REQQ = ("An integer, the number of outstanding request messages this client supports without "
        "dropping any.")
REPEAT = ("It is valid to send the handshake message more than once during the lifetime of a "
          "connection, the sending client should not be disconnected.")
UNKNOWN = "Any unknown names should be ignored by the client."
LOCAL_IDS = ("The extension message IDs are the IDs used to send the extension messages to the "
             "peer sending this handshake.")
P = "Local TCP listen port."


def _case(**fields: object) -> object:
    fields.setdefault("extension", "BEP 10")
    return bt_case(**fields)


def _raw(answer: object) -> object:
    found = answer.session.of_type("extended_handshake")
    return found[0].get("raw", None) if found else None


def _dictionary(answer: object, ctx: object) -> str | None:
    found = answer.session.of_type("extended_handshake")
    if not found:
        return None
    if "error" in found[0] and found[0].get("raw") is None:
        return f"not a bencoded dictionary: {found[0]['error']}"
    return "" if isinstance(found[0].get("raw"), dict) else "not a bencoded dictionary"


def _m(answer: object, ctx: object) -> str | None:
    raw = _raw(answer)
    if raw is None:
        return None
    m = raw.get(b"m") if isinstance(raw, dict) else None
    if m is None:
        return ""  # "All items in the dictionary are optional."
    if not isinstance(m, dict):
        return f"m is a {type(m).__name__}, not a dictionary"
    bad = [k for k, v in m.items() if not isinstance(v, int) or v < 0 or v > 255]
    return "" if not bad else f"m[{bad[0]!r}] is not an id in 0..255"


def _unique(answer: object, ctx: object) -> str | None:
    raw = _raw(answer)
    if raw is None:
        return None
    m = raw.get(b"m") if isinstance(raw, dict) else None
    ids = [v for v in (m or {}).values() if isinstance(v, int) and v]
    return "" if len(ids) == len(set(ids)) else f"ids shared in m: {sorted(ids)}"


def _item(key: bytes, check, text: str):
    def rule(answer: object, ctx: object) -> str | None:
        raw = _raw(answer)
        if raw is None:
            return None
        if not isinstance(raw, dict) or key not in raw:
            return ""  # optional
        return "" if check(raw[key]) else f"{key.decode()} = {raw[key]!r}: not {text}"
    return rule


def _utf8(value: object) -> bool:
    if not isinstance(value, bytes):
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _local_ids(answer: object, ctx: object) -> str:
    for m in answer.session.messages:
        if m["type"] == "extended" and m.get("extended_id") not in (
                0, *HARNESS_EXTENSIONS.values()):
            return (f"an extended message with id {m['extended_id']}, which the harness's "
                    f"handshake did not give (it offered {HARNESS_EXTENSIONS})")
    return ""


def _handshake_rule(fn, text: str) -> Step:
    return Step(send=None, expect=SessionRule(fn, text, pending="no extension handshake"))


CASES = [
    _case(id="bep10/handshake/sent", title="the extension handshake follows the handshake",
          spec=SPEC, requirement=SENT, level="SHOULD", rule="bep10/handshake/sent",
          steps=[*opening(), Step(send=None, expect=Receives("extended_handshake", session=True))]),
    _case(id="bep10/handshake/dictionary", title="its payload is a bencoded dictionary",
          spec=SPEC, requirement=DICTIONARY, level="MUST", rule="bep10/handshake/dictionary",
          steps=[*opening(extension_handshake=True),
                 _handshake_rule(_dictionary, "a bencoded dictionary")]),
    _case(id="bep10/handshake/m", title="m maps names to ids", spec=SPEC, requirement=M,
          level="MUST", rule="bep10/handshake/m",
          steps=[*opening(extension_handshake=True), _handshake_rule(_m, "m: name -> id")]),
    _case(id="bep10/handshake/m-unique", title="no two extensions share an id", spec=SPEC,
          requirement=UNIQUE, level="MUST", rule="bep10/handshake/m",
          steps=[*opening(extension_handshake=True),
                 _handshake_rule(_unique, "distinct ids")]),
    _case(id="bep10/handshake/v", title="v, if present, is a UTF-8 string", spec=SPEC,
          requirement=V, level="MUST", rule="bep10/handshake/items",
          steps=[*opening(extension_handshake=True),
                 _handshake_rule(_item(b"v", _utf8, "a UTF-8 string"), "v: UTF-8")]),
    _case(id="bep10/handshake/reqq", title="reqq, if present, is a positive integer",
          spec=SPEC, requirement=REQQ, level="MUST", rule="bep10/handshake/items",
          steps=[*opening(extension_handshake=True), _handshake_rule(_item(
              b"reqq", lambda v: isinstance(v, int) and v > 0, "a positive integer"),
              "reqq: a positive integer")]),
    _case(id="bep10/handshake/p", title="p, if present, is a TCP port", spec=SPEC,
          requirement=P, level="MUST", rule="bep10/handshake/items",
          steps=[*opening(extension_handshake=True), _handshake_rule(_item(
              b"p", lambda v: isinstance(v, int) and 0 < v < 65536, "a port"), "p: a port")]),
    _case(id="bep10/handshake/client-name", title="the target's client name (v)", spec=SPEC,
          requirement=V, level="INFO", rule="bep10/handshake/v-info",
          steps=[*opening(), Step(send=None, expect=Receives("extended_handshake", session=True,
                                                              items__v=Present()))]),
    _case(id="bep10/handshake/repeat-tolerated", title="a second extension handshake from "
          "the harness", spec="BEP 10 §Extension Protocol", requirement=REPEAT, level="MUST",
          rule="bep10/handshake/repeat",
          steps=[*opening(), Step(send=our_extension_handshake(), wait=0.05),
                 Step(send=our_extension_handshake(reqq=10), expect=StaysOpen()),
                 unchoked()]),
    _case(id="bep10/handshake/unknown-names-ignored", title="unknown keys in the harness's "
          "extension handshake", spec=SPEC, requirement=UNKNOWN, level="SHOULD",
          rule="bep10/handshake/unknown-names",
          steps=[*opening(), Step(send=wire("extended", extended_id=0, payload=bencode.encode(
              {b"m": {b"zz_unknown": 42, **{k.encode(): v for k, v in
                                            HARNESS_EXTENSIONS.items()}},
               b"zz_item": b"x", b"zzz": [1, 2]})), expect=StaysOpen()), unchoked()]),
    _case(id="bep10/extended/ids-local", title="the target sends extensions with the harness's ids",
          spec=SPEC, requirement=LOCAL_IDS, level="MUST", rule="bep10/ids-local",
          steps=[*opening(), Step(send=our_extension_handshake(), wait=0.05), unchoked(),
                 Step(send=None, expect=SessionRule(_local_ids, "ids from the harness's m",
                                                    silence=True))]),
]
