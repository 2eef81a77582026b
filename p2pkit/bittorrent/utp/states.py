"""The states of one uTP connection, as data (BEP 29 §connection setup, §type).

BEP 29 names ``CS_SYN_SENT``, ``CS_SYN_RECV`` and ``CS_CONNECTED``; ``FIN_SENT`` (our ST_FIN is
out: "ST_FIN [...] Finalize the connection. This is the last packet") and ``CLOSED`` complete the
life cycle. Inputs are the received packet types (``st_*``) and the local ones ``close``
(the application is done sending), ``reset`` (we abort), ``timeout`` (too many retransmissions)
and ``finished`` (both FINs acknowledged). A packet type missing from a state is ignored there.

>>> next_state(SYN_SENT, "st_state"), next_state(SYN_RECV, "st_data")
('CONNECTED', 'CONNECTED')
>>> next_state(SYN_SENT, "st_data") is None
True
"""

from __future__ import annotations

__all__ = ["CLOSED", "CONNECTED", "FIN_SENT", "SYN_RECV", "SYN_SENT", "TRANSITIONS", "next_state"]

SYN_SENT = "SYN_SENT"
SYN_RECV = "SYN_RECV"
CONNECTED = "CONNECTED"
FIN_SENT = "FIN_SENT"
CLOSED = "CLOSED"

_ENDS = {"st_reset": CLOSED, "reset": CLOSED, "timeout": CLOSED}

#: state -> input -> next state.
TRANSITIONS: dict[str, dict[str, str]] = {
    # BEP 29: the initiator is connected when "c.state = CS_CONNECTED" on the ST_STATE reply.
    SYN_SENT: {"st_state": CONNECTED, "close": SYN_SENT, **_ENDS},
    # The acceptor is connected with the first ST_DATA ("c.state = CS_CONNECTED").
    SYN_RECV: {"st_syn": SYN_RECV, "st_state": SYN_RECV, "st_data": CONNECTED,
               "st_fin": CONNECTED, "close": FIN_SENT, **_ENDS},
    CONNECTED: {"st_syn": CONNECTED, "st_state": CONNECTED, "st_data": CONNECTED,
                "st_fin": CONNECTED, "close": FIN_SENT, **_ENDS},
    FIN_SENT: {"st_syn": FIN_SENT, "st_state": FIN_SENT, "st_data": FIN_SENT,
               "st_fin": FIN_SENT, "close": FIN_SENT, "finished": CLOSED, **_ENDS},
    CLOSED: {},
}


def next_state(state: str, event: str) -> str | None:
    """The state after ``event`` in ``state``, or None when ``event`` is ignored there."""
    return TRANSITIONS[state].get(event)
