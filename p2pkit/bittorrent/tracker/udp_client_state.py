"""The states of one BEP 15 client operation (an announce or a scrape), as data (h11's
``_state.py`` shape).

BEP 15: "Before announcing or scraping, you have to obtain a connection ID. [...] 1. Choose a
random transaction ID. 2. Fill the connect request structure. 3. Send the packet." Then the
announce or scrape goes out with that connection ID. An operation waits for a connect
response while no live connection ID is known, then for the answer to its request; it goes
back to connecting when the ID expires before a retransmission ("it is necessary to rerequest
a connection ID when it has expired") or when the tracker refuses an ID kept from an earlier
operation.

>>> next_state(AWAIT_CONNECT, "connect")
'AWAIT_RESPONSE'
>>> next_state(AWAIT_RESPONSE, "connect") is None
True
"""

from __future__ import annotations

__all__ = ["AWAIT_CONNECT", "AWAIT_RESPONSE", "DONE", "TRANSITIONS", "next_state"]

AWAIT_CONNECT = "AWAIT_CONNECT"
AWAIT_RESPONSE = "AWAIT_RESPONSE"
DONE = "DONE"

#: state -> what happened -> next state. "connect", "announce", "scrape", "error" are the BEP 15
#: actions of the response received; "kept_id" is starting with a live connection ID kept from
#: an earlier operation, "expired" is a retransmission finding the connection ID
#: too old, "refused_kept_id" an error answering an ID kept from an earlier operation,
#: "gave_up" the last retransmission unanswered.
TRANSITIONS: dict[str, dict[str, str]] = {
    AWAIT_CONNECT: {
        "connect": AWAIT_RESPONSE,
        "kept_id": AWAIT_RESPONSE,
        "error": DONE,
        "gave_up": DONE,
    },
    AWAIT_RESPONSE: {
        "announce": DONE,
        "scrape": DONE,
        "error": DONE,
        "refused_kept_id": AWAIT_CONNECT,
        "expired": AWAIT_CONNECT,
        "gave_up": DONE,
    },
    DONE: {},
}


def next_state(state: str, what: str) -> str | None:
    """The state after ``what`` in ``state``, or ``None`` when it does not apply there."""
    return TRANSITIONS[state].get(what)
