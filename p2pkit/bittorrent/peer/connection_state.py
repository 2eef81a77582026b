"""The states of one direction of a peer connection, as data (h11's ``_state.py`` shape).

Specs: BEP 3 §handshake ("The handshake starts [...] After the fixed headers come"), BEP 3
§bitfield ("'bitfield' is only ever sent as the first message"), BEP 6 §Have All/Have None
("Exactly one of Have All, Have None, or Have Bitfield MUST appear and only immediately after
the handshake").

Each direction of the stream (what we send, what the peer sends) follows the same grammar, so
:class:`~p2pkit.bittorrent.peer.connection.PeerConnection` keeps two states, ``our_state`` and
``their_state``, and moves both with this one table: a handshake, then optionally one piece-set
message (``bitfield``, ``have_all`` or ``have_none``), then every other message. The docs draw
their state diagram from :data:`TRANSITIONS`, so the picture cannot drift from the code.

>>> next_state(AWAIT_HANDSHAKE, "Handshake")
'AWAIT_FIRST_MESSAGE'
>>> next_state(AWAIT_FIRST_MESSAGE, "Bitfield")
'ESTABLISHED'
>>> next_state(ESTABLISHED, "Bitfield") is None
True

Real clients differ in one place: µTorrent and Transmission send their BEP 10 extension
handshake *before* the bitfield, and libtorrent accepts that. So do we: messages that say nothing
about pieces (``extended``, ``port``, keep-alives) leave the stream in ``AWAIT_FIRST_MESSAGE``.
"""

from __future__ import annotations

__all__ = [
    "AWAIT_FIRST_MESSAGE",
    "AWAIT_HANDSHAKE",
    "CLOSED",
    "ESTABLISHED",
    "OTHER_MESSAGE",
    "PIECE_SET_MESSAGES",
    "TRANSITIONS",
    "next_state",
]

AWAIT_HANDSHAKE = "AWAIT_HANDSHAKE"
AWAIT_FIRST_MESSAGE = "AWAIT_FIRST_MESSAGE"
ESTABLISHED = "ESTABLISHED"
CLOSED = "CLOSED"

#: Stands for any message the table does not name in a state.
OTHER_MESSAGE = "*"
#: BEP 3 / BEP 6: the messages allowed only "immediately after the handshake".
PIECE_SET_MESSAGES = frozenset({"Bitfield", "HaveAll", "HaveNone"})

#: state -> event class name -> next state. ``None``, or a name missing from a state that has no
#: ``OTHER_MESSAGE`` entry, is a protocol error in that state. ``ConnectionClosed`` ends them all.
TRANSITIONS: dict[str, dict[str, str | None]] = {
    AWAIT_HANDSHAKE: {
        "Handshake": AWAIT_FIRST_MESSAGE,
        "ConnectionClosed": CLOSED,
    },
    AWAIT_FIRST_MESSAGE: {
        "Handshake": None,
        "Bitfield": ESTABLISHED,
        "HaveAll": ESTABLISHED,
        "HaveNone": ESTABLISHED,
        "ExtensionHandshake": AWAIT_FIRST_MESSAGE,
        "ExtensionMessage": AWAIT_FIRST_MESSAGE,
        "Port": AWAIT_FIRST_MESSAGE,
        "KeepAlive": AWAIT_FIRST_MESSAGE,
        "ConnectionClosed": CLOSED,
        OTHER_MESSAGE: ESTABLISHED,
    },
    ESTABLISHED: {
        "Handshake": None,
        "Bitfield": None,
        "HaveAll": None,
        "HaveNone": None,
        "ConnectionClosed": CLOSED,
        OTHER_MESSAGE: ESTABLISHED,
    },
    CLOSED: {},
}


def next_state(state: str, event: str) -> str | None:
    """The state after ``event`` (an event class name), or ``None`` when it is not allowed."""
    row = TRANSITIONS[state]
    return row[event] if event in row else row.get(OTHER_MESSAGE)
