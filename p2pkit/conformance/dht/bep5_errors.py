"""BEP 5 §Errors (codes 201-204) and the message types a node must not answer."""

from __future__ import annotations

from p2pkit.conformance.case import NODE_ID, Bencoded, Krpc, Step, T
from p2pkit.conformance.dht._common import (
    ERROR_CODES,
    announce,
    dht_case,
    dropped_or_error,
    get_token,
    query,
    survives,
)
from p2pkit.conformance.verifiers import (
    All,
    Field,
    In,
    IsError,
    IsResponse,
    OneOf,
    Satisfies,
    Silence,
)

SPEC = "BEP 5 §Errors"
SHAPE = ('The value of "e" is a list. The first element is an integer representing the error '
         'code. The second element is a string containing the error message.')
UNFULFILLED = "Errors are sent when a query cannot be fulfilled."


def _text(value: object, ctx: object) -> bool:
    return isinstance(value, (str, bytes))


CASES = [
    dht_case(
        id="bep5/errors/204-method-unknown", title="an unknown method gets error 204",
        spec=SPEC, requirement="204 Method Unknown", level="SHOULD",
        rule="bep5/errors/method-unknown",
        steps=[Step(send=query("frobnicate_x"), expect=IsError((204,)))]),
    dht_case(
        id="bep5/errors/204-unknown-method-with-target",
        title="an unknown method carrying a target gets 204 or a find_node-like answer",
        spec=SPEC, requirement="204 Method Unknown", level="SHOULD",
        rule="bep5/errors/method-unknown",
        steps=[Step(send=query("frobnicate_y", target=b"\x44" * 20),
                    expect=OneOf(IsError((204,)), IsResponse()))]),
    dht_case(
        id="bep5/errors/203-protocol-error", title="a query whose 'a' is not a dictionary "
        "gets error 203", spec=SPEC,
        requirement="203 Protocol Error, such as a malformed packet, invalid arguments, or "
        "bad token", level="SHOULD", rule="bep5/errors/protocol-error", robustness=True,
        steps=[Step(send=Bencoded({"t": T, "y": "q", "q": "ping", "a": b"oops"}),
                    expect=IsError((203,)))]),
    dht_case(
        id="bep5/errors/201-or-203-invalid-arguments",
        title="invalid arguments get a generic (201) or protocol (203) error, or are dropped",
        spec=SPEC, requirement="201 Generic Error", level="SHOULD",
        rule="bep5/errors/invalid-arguments", robustness=True,
        steps=[Step(send=Bencoded({"t": T, "y": "q", "q": "find_node",
                                   "a": {"id": NODE_ID, "target": [1, 2]}}),
                    expect=dropped_or_error(201, 203))]),
    dht_case(
        id="bep5/errors/202-not-for-valid-query",
        title="a well-formed query is answered, not refused with 202 Server Error",
        spec=SPEC, requirement=UNFULFILLED, level="SHOULD", rule="krpc/error-only-when-needed",
        steps=[Step(send=query("get_peers", info_hash=b"\x55" * 20), expect=IsResponse())]),
    dht_case(
        id="bep5/errors/shape", title="an error's 'e' is [integer code, string message]",
        spec=SPEC, requirement=SHAPE, level="MUST", rule="krpc/error-shape",
        depends=("dht/token/checked",),  # the error provoked: a wrong token
        steps=[get_token(), announce(token=b"not-a-token", expect=All(
            IsError(), Field("e.message", Satisfies(_text, "a string"))))]),
    dht_case(
        id="bep5/errors/known-code", title="error codes are those BEP 5 and BEP 44 define",
        spec="BEP 44 §Errors",
        requirement=("In addition to the error codes defined in BEP 5, this specification "
                     "defines some additional error codes."),
        level="SHOULD", rule="krpc/error-code-known", depends=("dht/token/checked",),
        steps=[get_token(), announce(token=b"not-a-token",
                                     expect=All(IsError(), Field("e.code", In(ERROR_CODES))))]),
    dht_case(
        id="bep5/errors/unsolicited-response-ignored",
        title="a response nobody asked for is not answered", spec="BEP 5 §Responses",
        requirement="Response messages are sent upon successful completion of a query.",
        level="SHOULD", rule="krpc/no-answer-to-answers", robustness=True,
        steps=[Step(send=Krpc({"t": b"zz", "y": "r", "r": {"id": NODE_ID}}),
                    expect=Silence())]),
    dht_case(
        id="bep5/errors/unsolicited-error-ignored",
        title="an error nobody asked for is not answered", spec=SPEC,
        requirement=UNFULFILLED, level="SHOULD", rule="krpc/no-answer-to-answers",
        robustness=True,
        steps=[Step(send=Krpc({"t": b"zy", "y": "e",
                               "e": {"code": 201, "message": "A Generic Error Ocurred"}}),
                    expect=Silence())]),
    dht_case(
        id="bep5/errors/unknown-type", title="y = 'x' is refused or dropped",
        spec="BEP 5 §KRPC Protocol",
        requirement=('The value of the "y" key is one of "q" for query, "r" for response, '
                     'or "e" for error.'),
        level="MUST", rule="krpc/robustness", robustness=True,
        steps=[Step(send=Bencoded({"t": T, "y": "x", "a": {"id": NODE_ID}}),
                    expect=survives())]),
    dht_case(
        id="bep5/errors/query-without-a", title="a query without 'a' is refused or dropped",
        spec="BEP 5 §Queries",
        requirement=('Queries, or KRPC message dictionaries with a "y" value of "q", contain '
                     'two additional keys; "q" and "a".'),
        level="MUST", rule="krpc/robustness", robustness=True,
        steps=[Step(send=Bencoded({"t": T, "y": "q", "q": "ping"}), expect=survives())]),
]
