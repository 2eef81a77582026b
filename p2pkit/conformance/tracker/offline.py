"""The tracker rules a capture can be judged by: what a tracker answered, over UDP (BEP 15)
and HTTP (BEP 3 §trackers, BEP 23, BEP 48), as the dissector decoded it.

Rule ids are the live catalog's (``bep3/announce/interval``, ``bep15/announce/layout`` …), so
a capture and a live run say the same thing about one tracker. Only answers are judged (the
harness judges trackers, not clients). The transaction id echo cannot be judged offline: the
dissector pairs a BEP 15 answer with its request *by* that id, so an answer that does not echo
it is not recognised as an answer at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from p2pkit.bittorrent.tracker.dissect import HTTP_PROTOCOL
from p2pkit.bittorrent.tracker.udp import PROTOCOL as UDP_PROTOCOL
from p2pkit.conformance.offline import OfflineRule
from p2pkit.conformance.tracker._common import (
    HttpTrackerAnswer,
    UdpTrackerAnswer,
    strip_absent,
)
from p2pkit.conformance.verifiers import (
    Answer,
    Between,
    Field,
    NoDeviation,
    Present,
    Satisfies,
)

__all__ = ["HTTP_RULES", "RULESETS", "UDP_RULES"]


def _udp(action: str) -> Callable[[Any], bool]:
    return lambda record: record.message == action


def _http(kind: str, *, failed: bool = False) -> Callable[[Any], bool]:
    def applies(record: Any) -> bool:
        value = record.value
        return record.message == kind and (failed or getattr(value, "get", None) is not None
                                           and value.get("failure_reason") is None)
    return applies


def _text(value: object, ctx: object) -> bool:
    return isinstance(value, bytes) and bool(value.strip(b"\x00 "))


def _counts(value: object, ctx: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(entry.get(k), int) for entry in value.values()
        for k in ("complete", "downloaded", "incomplete"))


def _compact(value: object, ctx: object) -> bool:
    return value is True


#: What a UDP tracker's answers are judged by.
UDP_RULES: tuple[OfflineRule, ...] = (
    OfflineRule("bep15/connect", "MUST", "BEP 15 §Connect",
                "connect responses carry a connection id", _udp("connect"),
                Field("connection_id", Present())),
    OfflineRule("bep15/announce/layout", "MUST", "BEP 15 §Announce",
                "announce responses carry an interval of at least 1 s", _udp("announce"),
                Field("interval", Between(1, 2**32 - 1))),
    OfflineRule("bep15/scrape", "MUST", "BEP 15 §Scrape",
                "scrape responses carry an entry per info-hash", _udp("scrape"),
                Field("files", Present())),
    OfflineRule("bep15/error", "MUST", "BEP 15 §Errors", "error packets carry a message",
                _udp("error"), Field("message", Satisfies(_text, "a message"))),
)

#: What an HTTP tracker's answers are judged by.
HTTP_RULES: tuple[OfflineRule, ...] = (
    OfflineRule("bep3/http/valid-body", "MUST", "BEP 3 §trackers",
                "no MUST deviation in any response body", _http("announce", failed=True),
                NoDeviation(levels=("MUST",))),
    OfflineRule("bep3/announce/interval", "MUST", "BEP 3 §trackers",
                "announce responses carry an interval", _http("announce"),
                Field("interval", Between(1, 2**31))),
    OfflineRule("bep3/announce/peers", "MUST", "BEP 3 §trackers",
                "announce responses carry peers", _http("announce"), Field("peers", Present())),
    OfflineRule("bep23/compact/layout", "MUST", "BEP 23 §Overview",
                "compact peers are whole 6-byte records", _http("announce"),
                NoDeviation(prefix="tracker/http/wrong-type")),
    OfflineRule("bep23/compact/preferred", "SHOULD", "BEP 23 §Overview",
                "peers come compact", _http("announce"),
                Field("peers_compact", Satisfies(_compact, "a compact string"))),
    OfflineRule("bep48/scrape/files", "MUST", "BEP 48 §Scrape Response",
                "scrape responses carry files with complete, downloaded, incomplete",
                _http("scrape"), Field("files", Satisfies(_counts, "three counts per hash"))),
)


def _udp_answer(record: Any) -> Answer | None:
    if record.fields.get("direction") != "response":
        return None
    return UdpTrackerAnswer(b"", strip_absent(record.value))


def _http_answer(record: Any) -> Answer | None:
    if record.fields.get("direction") != "response":
        return None
    return HttpTrackerAnswer(b"", strip_absent(record.value), list(record.deviations))


#: Protocol of a dissector record -> (its rules, the record as an :class:`Answer`, or None when
#: the record is not judged).
RULESETS: dict[str, tuple[tuple[OfflineRule, ...], Callable[[Any], Answer | None]]] = {
    UDP_PROTOCOL: (UDP_RULES, _udp_answer),
    HTTP_PROTOCOL: (HTTP_RULES, _http_answer),
}
