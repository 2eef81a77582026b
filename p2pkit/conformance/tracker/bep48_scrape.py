"""BEP 48 scrape over HTTP: the scrape URL derived from the announce URL, ``files`` with
``complete``, ``downloaded`` and ``incomplete``, several info-hashes at once.

BEP 48 defines the exchange without RFC 2119 keywords; its response format and the meaning of
the three counts are MUST cases here (a scrape answer without them is no answer). "scrape
exchanges have no effect on a peer's participation in a swarm" is a MUST too (a tracker that
counts a scraper as a peer reports wrong counts). An unknown info-hash is either left out of
``files`` or given zero counts (SHOULD: the BEP does not say).
"""

from __future__ import annotations

from collections.abc import Mapping

from p2pkit.conformance.case import INFO_HASH, TARGET, Computed, Step
from p2pkit.conformance.tracker._common import (
    http_announce,
    http_case,
    http_scrape,
    scrape_file,
)
from p2pkit.conformance.tracker.bep3_announce import FAILURE_REASON
from p2pkit.conformance.verifiers import Absent, All, Between, Equals, Field, Satisfies

URL = ("This is done by locating the string ``announce`` in the path section [#URL_Syntax]_ "
       "of the announce URL and replacing it with the string ``scrape``.")
FILES = ("The response to a successful request is a bencoded dictionary containing one "
         "key-value pair: the key ``files`` with the value being a dictionary of the 20-byte "
         "string representation of an infohash paired with a dictionary of swarm metadata.")
MULTIPLE = ("This key can be appended multiple times with different values for collecting data "
            "about multiple swarms in one request.")
COMPLETE = "The number of active peers that have completed downloading."
INCOMPLETE = "The number of active peers that have not completed downloading."
DOWNLOADED = "The number of peers that have ever completed downloading."
NO_EFFECT = ("It should be noted that scrape exchanges have no effect on a peer's participation "
             "in a swarm.")
UNSUCCESSFUL = ("The response to an unsuccessful request is a bencoded dictionary with the key "
                "``failure reason`` and a string value as described in BEP 003 [#BEP_003]_.")

COUNT = Between(0, 2**31)
#: The cases reading counts need ``files`` keyed by the 20-byte info-hash first.
FILES_KEYED = ("bep48/scrape/files",)


def _both(value: object, ctx: object) -> bool:
    return isinstance(value, Mapping) and ctx.info_hash in value and ctx.target in value


def _unknown_zero(value: object, ctx: object) -> bool:
    entry = value.get(ctx.target) if isinstance(value, Mapping) else None
    return entry is None or all(entry.get(k, 0) == 0 for k in
                                ("complete", "downloaded", "incomplete"))


CASES = [
    http_case(
        id="bep48/scrape/files", title="the derived scrape URL answers files with complete, "
        "downloaded and incomplete", spec="BEP 48 §Scrape Response", requirement=FILES,
        level="MUST", rule="bep48/scrape/files",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_scrape(), expect=All(scrape_file("complete", COUNT),
                                                   scrape_file("downloaded", COUNT),
                                                   scrape_file("incomplete", COUNT)))]),
    http_case(
        id="bep48/scrape/url-derived", title="the scrape URL replaces announce with scrape",
        spec="BEP 48 §Scrape Request", requirement=URL, level="MUST", rule="bep48/scrape/files",
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_scrape(), expect=All(
                   Field("failure_reason", Absent()),
                   Field("files", Satisfies(lambda v, ctx: isinstance(v, Mapping),
                                            "a dictionary"))))]),
    http_case(
        id="bep48/scrape/counts", title="one seeder and two leechers: complete 1, incomplete 2",
        spec="BEP 48 §Scrape Response", requirement=COMPLETE, level="MUST",
        rule="tracker/scrape/counts", depends=FILES_KEYED,
        steps=[Step(send=http_announce("a", left=0), source="a"),
               Step(send=http_announce("b"), source="b"),
               Step(send=http_announce("c"), source="c"),
               Step(send=http_scrape(), expect=All(scrape_file("complete", Equals(1)),
                                                   scrape_file("incomplete", Equals(2))))]),
    http_case(
        id="bep48/scrape/downloaded", title="a completed event counts in downloaded",
        spec="BEP 48 §Scrape Response", requirement=DOWNLOADED, level="MUST",
        rule="tracker/scrape/downloaded", depends=FILES_KEYED,
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("a", event="completed", left=0), source="a"),
               Step(send=http_scrape(), expect=scrape_file("downloaded", Between(1, 2**31)))]),
    http_case(
        id="bep48/scrape/multiple", title="two info_hash keys get two files entries",
        spec="BEP 48 §Scrape Request", requirement=MULTIPLE, level="MUST",
        rule="bep48/scrape/multiple", depends=FILES_KEYED,
        steps=[Step(send=http_announce("a"), source="a"),
               Step(send=http_announce("b", info_hash=TARGET), source="b"),
               Step(send=http_scrape(INFO_HASH, TARGET),
                    expect=Field("files", Satisfies(_both, "entries for both info-hashes")))]),
    http_case(
        id="bep48/scrape/no-effect", title="a scrape does not make the scraper a peer",
        spec="BEP 48 §Abstract", requirement=NO_EFFECT, level="MUST",
        rule="bep48/scrape/no-effect", depends=("tracker/scrape/counts", *FILES_KEYED),
        steps=[Step(send=http_scrape(), source="a"),
               Step(send=http_announce("b"), source="b"),
               Step(send=http_scrape(), source="a",
                    expect=All(scrape_file("complete", Equals(0)),
                               scrape_file("incomplete", Equals(1))))]),
    http_case(
        id="bep48/scrape/unknown-hash", title="an unknown info-hash is left out or counted "
        "zero", spec="BEP 48 §Scrape Response", requirement=INCOMPLETE, level="SHOULD",
        rule="bep48/scrape/unknown",
        steps=[Step(send=http_scrape(TARGET),
                    expect=Field("files", Satisfies(_unknown_zero, "without counts for it")))]),
    http_case(
        id="bep48/scrape/short-info-hash", title="a 19-byte info_hash gets a failure reason",
        spec="BEP 48 §Scrape Response", requirement=UNSUCCESSFUL, level="SHOULD",
        rule="bep3/http/failure-reason", robustness=True,
        steps=[Step(send=http_scrape(Computed(lambda ctx: ctx.info_hash[:19], "19 bytes")),
                    expect=FAILURE_REASON)]),
]
