"""handshaking_0.6 §3 (and §2): the three legs, status codes, the version, header syntax.

The harness is the client: it sends ``GNUTELLA CONNECT/0.6`` and its headers, reads the
target's answer, and ends the exchange with its own status line (the third leg). Descriptors
flow only after the third leg; a refusal in the third leg ends the connection.
"""

from __future__ import annotations

from p2pkit.conformance.case import Computed, Raw, Step
from p2pkit.conformance.gnutella._common import (
    HANDSHAKE_RULE,
    LEAF_HEADERS,
    ULTRAPEER_HEADERS,
    closes,
    connect,
    final,
    gn_case,
    handshake_answer,
    join,
    never,
    ping,
    query,
    receives,
    settle,
)
from p2pkit.conformance.stream_verifiers import Receives, SessionRule
from p2pkit.conformance.verifiers import In, Satisfies

SPEC = "handshaking_0.6 §3. Proposed Protocol"
ANSWER = 'The server responds with "GNUTELLA/0.6 200 OK<cr><lf>".'
HEADERS = "The server sends all its headers, in the same format as in (3)."
THIRD = 'The client sends "GNUTELLA/0.6 200 OK<cr><lf>, as in (4).'
AT_WILL = ("Both client and server send binary messages at will, using the information gained "
           "in (3) and (5).")
REFUSED = ('the client (server) should disconnect if receiving any response other than "200 '
           'OK" at step 4 (6).')
HIGHER = ('The server should respond with "GNUTELLA/0.7 200 OK" if it supports the 0.7 '
          'protocol, or "GNUTELLA/0.6 200 OK" otherwise.')
NOT_OLD = 'However, note that an old-fashioned "GNUTELLA OK" is not an appropriate response.'
USER_AGENT = ('servents should use the standard "User-Agent" header rather than make up a '
              '"Servent-Vendor" header.')
NEW_HEADERS = ('it is perfectly legal to add new headers (e.g., "Query-Routing") when no '
               'appropriate HTTP header exists, as long as they follow HTTP syntax.')
OLD = ('servers should respond with an old-fashioned "GNUTELLA OK" if they receive "GNUTELLA '
       'CONNECT/0.4<lf><lf>" instead of the more modern "GNUTELLA CONNECT/0.6<cr><lf>".')


def _lowered(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), value) for name, value in headers)


def _folded(ctx: object) -> bytes:
    """An ultrapeer's CONNECT whose X-Ultrapeer value is on a continuation line."""
    lines = [f"{n}: {v}" for n, v in ULTRAPEER_HEADERS if n != "X-Ultrapeer"]
    lines.insert(1, "X-Ultrapeer:\r\n True")
    return ("GNUTELLA CONNECT/0.6\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()


def _version_ok(answer: object, ctx: object) -> str | None:
    for m in answer.messages:
        if m["type"] == "handshake":
            if m["kind"] != "response":
                return f"answered a {m['kind']} block, not 'GNUTELLA/0.x 200 OK'"
            if m["version"] not in ("0.6", "0.7"):
                return f"answered GNUTELLA/{m['version']}"
            return "" if m["status_code"] == 200 else f"status {m['status_code']}"
    return None


def _forwarded_to(source: str) -> list[Step]:
    """Then a query from an ultrapeer ``a`` reaches ``source``: the target took ``source``
    for an ultrapeer (a leaf without a QRP table would get it too: the cases using this
    send an ultrapeer's headers and no table). ``[:3]`` is ``a``'s handshake."""
    return [*join("a", role="ultrapeer"), Step(send=query("conformance"), source="a"),
            receives("query", "q", source)]


CASES = [
    gn_case(id="handshake/accept", title="GNUTELLA CONNECT/0.6 is answered "
            "'GNUTELLA/0.6 200 OK'", spec=SPEC, requirement=ANSWER, level="MUST",
            rule=HANDSHAKE_RULE, steps=[connect(expect=Receives(
                "handshake", kind="response", status_code=200, version="0.6"))]),
    gn_case(id="handshake/answer-headers", title="the answer carries the target's headers",
            spec=SPEC, requirement=HEADERS, level="MUST", rule="gnutella/handshake/headers",
            steps=[connect(expect=Receives("handshake", kind="response", headers=Satisfies(
                lambda v, ctx: bool(v), "at least one header")))]),
    gn_case(id="handshake/user-agent", title="the answer names the servent in User-Agent",
            spec="handshaking_0.6 §3. Proposed Protocol", requirement=USER_AGENT,
            level="SHOULD", rule="gnutella/handshake/user-agent",
            steps=[connect(expect=Receives("handshake", kind="response",
                                           headers__user_agent=Satisfies(
                                               lambda v, ctx: isinstance(v, str) and bool(v),
                                               "a User-Agent")))]),
    gn_case(id="handshake/third-leg-required", title="no descriptor is served before the "
            "client's third leg", spec=SPEC, requirement=THIRD, level="MUST",
            rule="gnutella/handshake/third-leg",
            steps=[connect(), Step(send=ping(ttl=1)),
                   never("pong", "ping", "a", wait=0.8,
                         text="to a ping sent before the third leg")]),
    gn_case(id="handshake/served-after-third-leg", title="descriptors flow once the third leg "
            "is sent", spec=SPEC, requirement=AT_WILL, level="MUST",
            rule="gnutella/handshake/established",
            steps=[connect(), final(), Step(send=ping(ttl=1), expect=Receives("pong"))]),
    gn_case(id="handshake/final-refused", title="a 503 in the third leg ends the connection",
            spec=SPEC, requirement=REFUSED, level="SHOULD",
            rule="gnutella/handshake/final-refused",
            steps=[connect(), final(status=503, reason="Conformance refusal"),
                   Step(send=ping(ttl=1)), closes()]),
    gn_case(id="handshake/final-refused-no-descriptors", title="nothing is served after a "
            "refused third leg", spec=SPEC, requirement=REFUSED, level="MUST",
            rule="gnutella/handshake/final-refused-silent",
            steps=[connect(), final(status=503, reason="Conformance refusal"),
                   Step(send=ping(ttl=1)),
                   never("pong", "ping", "a", text="after the harness refused")]),
    gn_case(id="handshake/higher-version", title="CONNECT/0.7 is answered with 0.6 or 0.7 "
            "and 200", spec=SPEC, requirement=HIGHER, level="SHOULD",
            rule="gnutella/handshake/version",
            steps=[connect(version="0.7", expect=SessionRule(
                _version_ok, "GNUTELLA/0.6 or /0.7 200 OK"))]),
    gn_case(id="handshake/not-old-ok", title="a 0.6 CONNECT is not answered 'GNUTELLA OK'",
            spec=SPEC, requirement=NOT_OLD, level="MUST", rule="gnutella/handshake/version",
            steps=[connect(expect=Receives("handshake", kind="response"))]),
    gn_case(id="handshake/header-names-any-case", title="header names are matched whatever "
            "their case (x-ultrapeer: True)", spec=SPEC, requirement=NEW_HEADERS,
            level="MUST", rule="gnutella/handshake/header-case", tags=("ultrapeer",),
            steps=[*_forwarded_to("b")[:3],
                   connect("b", headers=_lowered(ULTRAPEER_HEADERS)), final("b"), settle("b"),
                   *_forwarded_to("b")[3:]]),
    gn_case(id="handshake/continuation-lines", title="a header value on a continuation line "
            "is read", spec=SPEC, requirement=NEW_HEADERS, level="SHOULD",
            rule="gnutella/handshake/continuation", tags=("ultrapeer",),
            steps=[*_forwarded_to("b")[:3],
                   Step(send=Raw(Computed(_folded, "CONNECT with a folded X-Ultrapeer")),
                        source="b", expect=handshake_answer()), final("b"), settle("b"),
                   *_forwarded_to("b")[3:]]),
    gn_case(id="handshake/unknown-headers", title="unknown headers are ignored",
            spec=SPEC, requirement=NEW_HEADERS, level="MUST",
            rule="gnutella/handshake/unknown-header",
            steps=[connect(extra=(("X-Conformance-Unknown", "1; x=y"),
                                  ("Vendor-Data", "5ef89a"))), final(),
                   Step(send=ping(ttl=1), expect=Receives("pong"))]),
    gn_case(id="handshake/duplicate-header-lines", title="a header given on two lines is "
            "accepted", spec=SPEC, requirement=NEW_HEADERS, level="SHOULD",
            rule="gnutella/handshake/unknown-header",
            steps=[connect(extra=(("X-Try", "127.0.0.2:6346"), ("X-Try", "127.0.0.3:6346")))]),
    gn_case(id="handshake/refusal-status", title="the answer's status code, a 3-digit code whether it accepts or refuses",
            spec="ultra-peers §3.2. Leaf to Shielded Leaf",
            requirement='Note that B does not send "200 OK" in its response.', level="INFO",
            rule="gnutella/handshake/refusal",
            steps=[connect(headers=LEAF_HEADERS, expect=Receives(
                "handshake", kind="response", status_code=In(range(200, 600))))]),
    gn_case(id="handshake/0.4-greeting", title="GNUTELLA CONNECT/0.4 is answered "
            "'GNUTELLA OK'", spec="handshaking_0.6 §3. Proposed Protocol", requirement=OLD,
            level="SHOULD", rule="gnutella/handshake/0.4",
            steps=[Step(send=Raw(b"GNUTELLA CONNECT/0.4\n\n"), expect=Receives(
                "handshake", kind="ok_0_4"))]),
]
