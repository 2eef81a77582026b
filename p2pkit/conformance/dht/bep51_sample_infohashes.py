"""BEP 51 (DHT infohash indexing): ``sample_infohashes``."""

from __future__ import annotations

from p2pkit.conformance.case import TARGET, Step
from p2pkit.conformance.dht._common import announce, dht_case, get_token, query
from p2pkit.conformance.verifiers import (
    Absent,
    All,
    Between,
    Field,
    IsResponse,
    OneOf,
    Present,
    Satisfies,
    Silence,
)

SPEC = "BEP 51 §Sampling RPC"
SAMPLES = ("Nodes supporting this extension should always include the ``samples`` field in the "
           "response, even when it is zero-length.")
RANGE = "The the permissible range is between 0 and 21600 seconds (inclusive)."
NUM = ("The ``num`` field indicates how many infohash keys are currently in the node's "
       "storage.")
FORMAT = '"samples": *<subset of stored infohashes, N × 20 bytes (string)>*'


#: BEP 51: samples "lets indexing nodes to distinguish nodes supporting this extension from
#: those that respond to unknown query types which contain a ``target`` field".
#: A node that drops unknown queries (bittorrent-dht) does not answer at all.
NO_SAMPLES = OneOf(Silence(), Field("r.samples", Absent()))


def _holds_announced(r: object, ctx: object) -> bool:
    """A node tracking more hashes than fit returns "a randomly sampled subset" (BEP 51)."""
    samples = r.get("samples") or []
    return ctx.info_hash in samples or r.get("num", 0) > len(samples)


def _ask(**fields: object) -> Step:
    return Step(send=query("sample_infohashes", target=TARGET), unsupported_if=NO_SAMPLES,
                **fields)


def _sample() -> Step:
    return _ask(source="b", name="sample")


def _case(name: str, title: str, requirement: str, level: str, rule: str, steps: list,
          spec: str = SPEC) -> object:
    return dht_case(id=f"bep51/{name}", title=title, spec=spec, requirement=requirement,
                    level=level, rule=rule, steps=steps, extension="BEP 51", sources=2)


CASES = [
    _case("samples-present", "the answer always has 'samples'", SAMPLES, "SHOULD",
          "bep51/samples", [_ask(expect=All(IsResponse(), Field("r.samples", Present())))]),
    _case("samples-20-bytes", "samples is N × 20 bytes", FORMAT, "MUST", "bep51/format",
          [_ask(expect=All(
              IsResponse(), Field("r.samples", Satisfies(
                  lambda s, ctx: all(len(h) == 20 for h in s), "20-byte hashes"))))],
          spec="BEP 51 §message format"),
    _case("interval-range", "interval is within 0..21600 s", RANGE, "MUST", "bep51/interval",
          [_ask(expect=Field("r.interval", Between(0, 21600)))]),
    _case("num-counts-storage", "num counts an announced info-hash, and samples hold it", NUM,
          "SHOULD", "bep51/num",
          [get_token(), announce(expect=IsResponse()), _ask(
              source="b", expect=All(Field("r.num", Between(1, 1 << 62)), Field("r", Satisfies(
                  _holds_announced, "samples holding the announced info-hash (or num larger "
                  "than the sample)"))))]),
    _case("nodes", "the answer carries nodes for the target", "The ``target`` and "
          "``nodes``/``nodes6`` mechanic for iterative lookups is included so that indexing "
          "nodes can perform a keyspace traversal with a single RPC per node by adjusting the "
          "target value for each RPC.", "INFO", "bep51/nodes",
          [_ask(expect=Field("r.nodes", Present()))]),
]
