"""The states of one candidate of an iterative lookup, as data (h11's ``_state.py`` shape).

Kademlia (Maymounkov and Mazières 2002, §2.3): "the initiator resends the FIND NODE to nodes it
has learned about from previous RPCs. [...] Nodes that fail to respond quickly are removed from
consideration until and unless they do respond." libp2p-ipfs/libp2p-kad-dht.md §Peer routing:
"mark it as queried", "If an error or timeout occurs, discard it." BEP 5 §Routing Table: "If a
node in the bucket fails to respond to a ping, it is suggested to try once more before
discarding the node" (p2pkit gives a lookup's queries the same second chance).

A candidate is ``NEW`` when heard of, ``QUERIED`` while a query to it is in flight,
then ``RESPONDED`` or :data:`FAILED`; a first timeout sends it back to ``NEW`` (asked
once more), the last one fails it. An answer counts whenever it comes. The docs can draw the
diagram from :data:`TRANSITIONS`.

>>> next_state(NEW, QUERY)
'queried'
>>> next_state(QUERIED, TIMEOUT), next_state(QUERIED, LAST_TIMEOUT)
('new', 'failed')
>>> next_state(RESPONDED, ERROR)  # a failure after an answer changes nothing
'responded'
"""

from __future__ import annotations

__all__ = [
    "ANSWER",
    "ERROR",
    "FAILED",
    "LAST_TIMEOUT",
    "NEW",
    "QUERIED",
    "QUERY",
    "RESPONDED",
    "TIMEOUT",
    "TRANSITIONS",
    "next_state",
]

# states
NEW = "new"
QUERIED = "queried"
RESPONDED = "responded"
FAILED = "failed"

# what happens to a candidate
#: A query was sent to it.
QUERY = "query"
#: It answered (a response that counts).
ANSWER = "answer"
#: It answered with an error, its query could not be sent, or its answer does not count.
ERROR = "error"
#: Its query timed out and it may be asked once more.
TIMEOUT = "timeout"
#: Its query timed out and it was asked as often as allowed.
LAST_TIMEOUT = "last timeout"

#: state -> what happened -> next state.
TRANSITIONS: dict[str, dict[str, str]] = {
    NEW: {QUERY: QUERIED, ANSWER: RESPONDED, ERROR: FAILED, TIMEOUT: FAILED,
          LAST_TIMEOUT: FAILED},
    QUERIED: {QUERY: QUERIED, ANSWER: RESPONDED, ERROR: FAILED, TIMEOUT: NEW,
              LAST_TIMEOUT: FAILED},
    RESPONDED: {QUERY: RESPONDED, ANSWER: RESPONDED, ERROR: RESPONDED, TIMEOUT: RESPONDED,
                LAST_TIMEOUT: RESPONDED},
    FAILED: {QUERY: FAILED, ANSWER: RESPONDED, ERROR: FAILED, TIMEOUT: FAILED,
             LAST_TIMEOUT: FAILED},
}


def next_state(state: str, happened: str) -> str:
    """The state a candidate in ``state`` moves to when ``happened``."""
    return TRANSITIONS[state][happened]
