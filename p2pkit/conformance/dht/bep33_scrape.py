"""BEP 33 (DHT scrape): ``scrape``, ``BFsd``/``BFpe`` bloom filters, ``seed``, ``noseed``."""

from __future__ import annotations

from p2pkit.conformance.case import INFO_HASH, Step
from p2pkit.conformance.dht._common import announce, dht_case, get_token, query
from p2pkit.conformance.verifiers import Absent, All, Field, IsResponse, Length, Satisfies
from p2pkit.dht.scrape import ScrapeBloomFilter

SCRAPE = ('If "scrape" is set to 1 in the request *and* the responding node has database '
          'entries for that infohash then it must add two fields to the "r" dictionary in the '
          'response:')
SIZE = ("Each field must be 256 bytes in size and generated based on the algorithm described "
        "in the previous chapter.")
SEED = ("Nodes following this BEP must store the seed status of announcing nodes, if no seed "
        "key was present or the value was not 1 then it should assume that the announcing "
        "node is a peer.")
NOSEED = ('If "noseed" is set to 1 in the request then the responding node should try to fill '
          'the values list with non-seed items on a best-effort basis.')


def _holds(source: str):
    """The filter has the bits of ``source``'s IP set (BEP 33 insertIP)."""
    def check(bloom: bytes, ctx: object) -> bool:
        mine = ScrapeBloomFilter()
        mine.insert(ctx.addresses[source][0])
        want = bytes(mine)
        return all(b & w == w for b, w in zip(bloom, want))
    return check


#: A node without BEP 33 answers a scrape as a plain get_peers.
NO_SCRAPE = All(Field("r.BFsd", Absent()), Field("r.BFpe", Absent()))


def _scrape(expect: object) -> Step:
    return Step(send=query("get_peers", info_hash=INFO_HASH, scrape=1), source="b",
                expect=expect, unsupported_if=NO_SCRAPE)


def _case(name: str, title: str, requirement: str, level: str, rule: str, steps: list,
          spec: str = "BEP 33 §New GET_PEERS semantics") -> object:
    return dht_case(id=f"bep33/{name}", title=title, spec=spec, requirement=requirement,
                    level=level, rule=rule, steps=steps, extension="BEP 33", sources=2)


CASES = [
    _case("scrape-filters", "scrape=1 on a known info-hash adds BFsd and BFpe", SCRAPE, "MUST",
          "bep33/scrape", [get_token(), announce(expect=IsResponse()), _scrape(
              All(IsResponse(), Field("r.BFsd", Length(256)), Field("r.BFpe", Length(256))))]),
    _case("filter-size", "each filter is 256 bytes", SIZE, "MUST", "bep33/scrape",
          [get_token(), announce(seed=1, expect=IsResponse()), _scrape(
              All(Field("r.BFsd", Length(256)), Field("r.BFpe", Length(256))))]),
    _case("seed-in-BFsd", "a peer announced with seed=1 is in BFsd", SEED, "MUST",
          "bep33/seed-status", [get_token(), announce(seed=1, expect=IsResponse()),
                                _scrape(Field("r.BFsd", Satisfies(_holds("a"),
                                                                  "a filter holding the seed")))],
          spec="BEP 33 §Changed announce accounting"),
    _case("peer-in-BFpe", "a peer announced without seed is in BFpe", SEED, "MUST",
          "bep33/seed-status", [get_token(), announce(expect=IsResponse()),
                                _scrape(Field("r.BFpe", Satisfies(_holds("a"),
                                                                  "a filter holding the peer")))],
          spec="BEP 33 §Changed announce accounting"),
    _case("noseed", "noseed=1 leaves seeds out of values", NOSEED, "SHOULD", "bep33/noseed",
          [get_token(), announce(seed=1, expect=IsResponse()),
           Step(send=query("get_peers", info_hash=INFO_HASH, noseed=1, scrape=1), source="b",
                unsupported_if=NO_SCRAPE, expect=Field("r", Satisfies(
                    lambda r, ctx: not any(str(v.ip) == ctx.addresses["a"][0]
                                           for v in (r.get("values") or ())),
                    "values without the seed")))]),
]
