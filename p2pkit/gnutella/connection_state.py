"""The states of one Gnutella 0.6 connection, as data (h11's ``_state.py`` shape).

Specs: handshaking_0.6 §3 (the three legs: the connecting side sends ``GNUTELLA CONNECT/0.6``
and its headers, the accepting side answers ``GNUTELLA/0.6 200 OK`` or a refusal, the
connecting side ends with its own status line), bye §3 and Appendix 2 (after sending a Bye a
servent may "defer the close() operation for 'some time' [...] When 'some time' has elapsed, a
close() is forced nonetheless"), bye §4 ("Upon reading a Bye packet, a node should immediately
close the connection").

:class:`~p2pkit.gnutella.servent.Connection` moves through :data:`TRANSITIONS` only; the docs
draw the diagram from the same dict, so the picture cannot drift from the code.

>>> next_state(CONNECTING, RESPONSE_OK)
'ESTABLISHED'
>>> next_state(ESTABLISHED, BYE_SENT), next_state(CLOSING, LINGER_EXPIRED)
('CLOSING', 'CLOSED')
>>> next_state(ACCEPTING, FINAL_OK) is None
True
"""

from __future__ import annotations

__all__ = [
    "ACCEPTING",
    "ABORTED",
    "AWAITING_FINAL",
    "BYE_RECEIVED",
    "BYE_SENT",
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "CONNECT_ACCEPTED",
    "CONNECT_REFUSED",
    "EOF",
    "ESTABLISHED",
    "FINAL_OK",
    "FINAL_REFUSED",
    "HANDSHAKE_STATES",
    "HANDSHAKE_TIMED_OUT",
    "LINGER_EXPIRED",
    "RESPONSE_OK",
    "RESPONSE_REFUSED",
    "TLS_FAILED",
    "TRANSITIONS",
    "next_state",
]

# -- states ---------------------------------------------------------------------------------
#: We connected and sent ``GNUTELLA CONNECT/0.6``; waiting for the answer (second leg).
CONNECTING = "CONNECTING"
#: The peer connected to us; waiting for its ``GNUTELLA CONNECT/0.6`` (first leg).
ACCEPTING = "ACCEPTING"
#: We answered ``200 OK``; waiting for the peer's final status line (third leg).
AWAITING_FINAL = "AWAITING_FINAL"
#: Handshake done: descriptors flow both ways.
ESTABLISHED = "ESTABLISHED"
#: We sent a Bye (bye §3); nothing more is sent or read, the close is deferred (Appendix 2).
CLOSING = "CLOSING"
#: Over: the driver closes the socket.
CLOSED = "CLOSED"

#: The states in which the handshake timeout runs.
HANDSHAKE_STATES = frozenset({CONNECTING, ACCEPTING, AWAITING_FINAL})

# -- what moves a connection ----------------------------------------------------------------
#: handshaking_0.6 §3 leg 2, read by the connecting side: ``GNUTELLA/0.6 200 OK`` (we answer
#: with our final ``200 OK``) ...
RESPONSE_OK = "response 200 received"
#: ... or a refusal (``503``), or our own refusal of an answer we cannot use (leaf to leaf).
RESPONSE_REFUSED = "response refused"
#: Leg 1, read by the accepting side: ``GNUTELLA CONNECT/0.6``, answered ``200 OK`` ...
CONNECT_ACCEPTED = "connect accepted"
#: ... or answered with a refusal (ultra-peers §: ``503`` when no slot is free).
CONNECT_REFUSED = "connect refused"
#: Leg 3, read by the accepting side: the peer's final ``200 OK`` ...
FINAL_OK = "final 200 received"
#: ... or its final refusal.
FINAL_REFUSED = "final refused"
#: The handshake did not finish within ``HANDSHAKE_TIMEOUT``.
HANDSHAKE_TIMED_OUT = "handshake timed out"
#: A protocol error during the handshake, or the application closing before it ends (no Bye
#: can be sent before descriptors flow).
ABORTED = "aborted"
#: We sent a Bye (asked by the application, or for the peer's fault, or for inactivity).
BYE_SENT = "bye sent"
#: The peer's Bye (bye §4: close at once).
BYE_RECEIVED = "bye received"
#: ``BYE_LINGER`` elapsed after our Bye (bye Appendix 2: the close is forced).
LINGER_EXPIRED = "linger expired"
#: The peer closed the stream (``receive_data(b"")``).
EOF = "end of stream"
#: gnet-TLS-upgrade §2: "If the TLS handshake cannot proceed correctly, both servents must
#: close the connection" (no Bye can be sent on a link whose TLS failed).
TLS_FAILED = "tls failed"

#: state -> what happened -> next state. A name missing from a state's row is a protocol error
#: there. Every state but ``CLOSED`` ends on ``EOF``.
TRANSITIONS: dict[str, dict[str, str]] = {
    CONNECTING: {
        ABORTED: CLOSED,
        RESPONSE_OK: ESTABLISHED,
        RESPONSE_REFUSED: CLOSED,
        HANDSHAKE_TIMED_OUT: CLOSED,
        EOF: CLOSED,
    },
    ACCEPTING: {
        ABORTED: CLOSED,
        CONNECT_ACCEPTED: AWAITING_FINAL,
        CONNECT_REFUSED: CLOSED,
        HANDSHAKE_TIMED_OUT: CLOSED,
        EOF: CLOSED,
    },
    AWAITING_FINAL: {
        ABORTED: CLOSED,
        FINAL_OK: ESTABLISHED,
        FINAL_REFUSED: CLOSED,
        HANDSHAKE_TIMED_OUT: CLOSED,
        EOF: CLOSED,
    },
    ESTABLISHED: {
        BYE_SENT: CLOSING,
        BYE_RECEIVED: CLOSED,
        TLS_FAILED: CLOSED,
        EOF: CLOSED,
    },
    CLOSING: {
        LINGER_EXPIRED: CLOSED,
        EOF: CLOSED,
    },
    CLOSED: {},
}


def next_state(state: str, happened: str) -> str | None:
    """The state after ``happened`` in ``state``, or ``None`` when it is not allowed there."""
    return TRANSITIONS[state].get(happened)
