"""BEP 15 §Scrape and §Errors: several info-hashes in one scrape, entries in the order asked,
the counts, and the error packet.

An error packet is optional ("it might send an error packet"); when one comes it must be
action 3 with the request's transaction id and a message (MUST: it is the layout). The error
cases provoke one with an announce under a connection id never issued, so their verdict also
depends on the connection id being checked.
"""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, NODE_ID, TARGET, Computed, Step
from p2pkit.conformance.tracker._common import (
    ECHO,
    connected,
    udp_announce,
    udp_case,
    udp_scrape,
)
from p2pkit.conformance.tracker.bep15_connect import _flipped
from p2pkit.conformance.verifiers import (
    All,
    Between,
    Equals,
    Field,
    Length,
    OneOf,
    Satisfies,
    Silence,
)

SPEC = "BEP 15 §Scrape"
ABOUT = "Up to about 74 torrents can be scraped at once."
ENTRY = "8 + 12 * n 32-bit integer seeders 12 + 12 * n 32-bit integer completed"
LEECHERS = "16 + 12 * n 32-bit integer leechers"
ECHO_TEXT = "Check whether the transaction ID is equal to the one you chose."
ERROR = "If the tracker encounters an error, it might send an error packet."
ERROR_LAYOUT = "8 string message"

SCRAPED = Field("action", Equals("scrape"))


def _announce(source: str, **over: object) -> list[Step]:
    return [connected(f"conn_{source}", source),
            Step(send=udp_announce(source, connection=f"conn_{source}", **over),
                 source=source)]


def _in_order(value: object, ctx: object) -> bool:
    """The unknown hash asked first has nothing; the announced one asked second has its one
    peer (as a seeder or a leecher: the counts themselves are another case's)."""
    first, second = value
    return first.seeders + first.leechers == 0 and second.seeders + second.leechers == 1


def _text(value: object, ctx: object) -> bool:
    return isinstance(value, bytes) and bool(value.strip(b"\x00 "))


CASES = [
    udp_case(
        id="bep15/scrape/several", title="a scrape of three info-hashes gets three entries",
        spec=SPEC, requirement=ABOUT, level="MUST", rule="bep15/scrape",
        steps=[connected(), Step(send=udp_scrape(INFO_HASH, TARGET, NODE_ID),
                                 expect=All(SCRAPED, Field("files", Length(3))))]),
    udp_case(
        id="bep15/scrape/transaction-id", title="the scrape response echoes the transaction "
        "id", spec=SPEC, requirement=ECHO_TEXT, level="MUST", rule="bep15/transaction-id",
        steps=[connected(), Step(send=udp_scrape(), expect=ECHO)]),
    udp_case(
        id="bep15/scrape/order", title="entries come in the order the info-hashes were asked",
        spec=SPEC, requirement=ENTRY, level="MUST", rule="bep15/scrape",
        steps=[*_announce("a", left=0),
               Step(send=udp_scrape(TARGET, INFO_HASH, connection="conn_a"), source="a",
                    expect=Field("files", Satisfies(_in_order, "no peer counted for the "
                                                               "first, one for the second")))]),
    udp_case(
        id="bep15/scrape/counts", title="one seeder and two leechers: seeders 1, leechers 2",
        spec=SPEC, requirement=LEECHERS, level="MUST", rule="tracker/scrape/counts",
        steps=[*_announce("a", left=0), *_announce("b"), *_announce("c"),
               Step(send=udp_scrape(connection="conn_a"), source="a",
                    expect=All(Field("files.0.seeders", Equals(1)),
                               Field("files.0.leechers", Equals(2))))]),
    udp_case(
        id="bep15/scrape/completed", title="a completed event (1) counts in completed",
        spec=SPEC, requirement=ENTRY, level="MUST", rule="tracker/scrape/downloaded",
        steps=[*_announce("a"),
               Step(send=udp_announce("a", connection="conn_a", event="completed", left=0),
                    source="a"),
               Step(send=udp_scrape(connection="conn_a"), source="a",
                    expect=Field("files.0.completed", Between(1, 2**32 - 1)))]),
    udp_case(
        id="bep15/errors/layout", title="an error packet is action 3 with a message",
        spec="BEP 15 §Errors", requirement=ERROR_LAYOUT, level="MUST", rule="bep15/error",
        depends=("bep15/connection-id/checked",),
        steps=[connected(), Step(
            send=udp_announce(connection_id=Computed(_flipped, "another id")),
            expect=OneOf(Silence(), All(Field("action", Equals("error")),
                                        Field("message", Satisfies(_text, "a message")))))]),
    udp_case(
        id="bep15/errors/transaction-id", title="an error packet echoes the transaction id",
        spec="BEP 15 §Scrape", requirement=ERROR, level="MUST", rule="bep15/transaction-id",
        depends=("bep15/connection-id/checked",),
        steps=[connected(), Step(
            send=udp_announce(connection_id=Computed(_flipped, "another id")),
            expect=OneOf(Silence(), All(Field("action", Equals("error")), ECHO)))]),
]
