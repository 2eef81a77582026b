"""Chapter 10 solutions (checked in CI: ``p2pkit tutorial check 10`` passes on this file)."""

from collections import Counter

from p2pkit.capture.dissect import dissect


def krpc_query_counts(path: str) -> dict[str, int]:
    return Counter(r.fields["method"] for r in dissect(path)
                   if r.protocol == "bt-dht" and r.message == "query")


def tracker_events(path: str) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for r in dissect(path):
        if r.message == "announce" and r.fields.get("peer_id") and r.fields.get("event"):
            client = bytes.fromhex(r.fields["peer_id"])[:8].decode("ascii", "replace")
            seen.setdefault(client, set()).add(r.fields["event"])
    return seen
