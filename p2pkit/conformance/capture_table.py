"""Every capture judged: the table of ``conformance check`` over a set of capture files.

One row per capture and implementation (endpoints of one implementation with the same
verdicts share a row), with the verdict of each section: the DHT rules
(``p2pkit.conformance.offline.RULES``), the tracker rules
(:mod:`p2pkit.conformance.tracker.offline`), the peer-wire rules
(:mod:`p2pkit.conformance.bittorrent.offline`), the Gnutella rules
(:mod:`p2pkit.conformance.gnutella.offline`) and the IPFS rules
(:mod:`p2pkit.conformance.ipfs.offline`; a capture's Noise key log, the same name with
``.keylog``, decrypts its libp2p sessions). The docs draw it at build time (the
``p2pkit-captures`` directive, ``docs/_ext/p2pkit_captures.py``), so it cannot drift from the
rules or the captures. A capture found under several roots (the same bytes) is judged once.

>>> section_of("bep5/get_peers/token"), section_of("bep3/piece/requested")
('DHT', 'peer wire')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from p2pkit.conformance.bittorrent.offline import RULES as PEER_WIRE_RULES
from p2pkit.conformance.gnutella.offline import RULES as GNUTELLA_RULES
from p2pkit.conformance.ipfs.offline import RULES as IPFS_RULES
from p2pkit.conformance.offline import RULES as DHT_RULES
from p2pkit.conformance.offline import CaptureReport, EndpointReport, check_capture
from p2pkit.conformance.tracker.offline import HTTP_RULES, UDP_RULES

__all__ = ["SECTIONS", "CaptureRow", "capture_files", "capture_rows", "section_of"]

#: The sections of the table, in column order.
SECTIONS = ("DHT", "tracker", "peer wire", "Gnutella", "IPFS")
_SECTION = {**{r.rule: "DHT" for r in DHT_RULES},
            **{r.rule: "tracker" for r in (*UDP_RULES, *HTTP_RULES)},
            **{rule: "peer wire" for rule in PEER_WIRE_RULES},
            **{rule: "Gnutella" for rule in GNUTELLA_RULES},
            **{rule: "IPFS" for rule in IPFS_RULES}}
#: Endpoints named in one row before "and N more".
SHOWN_ENDPOINTS = 3
CAPTURE_SUFFIXES = (".pcap", ".pcapng")


def section_of(rule: str) -> str:
    return _SECTION[rule]


@dataclass
class CaptureRow:
    """One implementation's endpoints in one capture, and each section's verdict."""

    capture: str
    implementation: str
    endpoints: list[str] = field(default_factory=list)
    messages: int = 0
    #: Each section's verdict: ``pass``, ``fail: `` and the MUST rules failed, ``pass (SHOULD
    #: failed: …)``, or empty (no traffic of that section).
    verdicts: dict[str, str] = field(default_factory=dict)
    #: The first failure of each failing rule: its id, frame and reason.
    evidence: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def endpoint_text(self) -> str:
        shown = ", ".join(self.endpoints[:SHOWN_ENDPOINTS])
        more = len(self.endpoints) - SHOWN_ENDPOINTS
        return f"{shown} and {more} more" if more > 0 else shown


def capture_files(roots: Iterable[Path]) -> list[tuple[Path, list[Path]]]:
    """Every capture under ``roots`` (roots that do not exist are skipped), by name, each
    with the other paths of the same bytes."""
    seen: dict[str, tuple[Path, list[Path]]] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.suffix in CAPTURE_SUFFIXES):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                seen[digest][1].append(path)
            else:
                seen[digest] = (path, [])
    return sorted(seen.values(), key=lambda item: item[0].name)


def _verdicts(who: EndpointReport) -> tuple[dict[str, str], list[tuple[str, int, str]]]:
    verdicts: dict[str, str] = {}
    evidence: list[tuple[str, int, str]] = []
    for section in SECTIONS:
        tallies = [t for t in who.tallies.values()
                   if t.checked and section_of(t.rule.rule) == section]
        if not tallies:
            verdicts[section] = ""
            continue
        must = [t.rule.rule for t in tallies if t.verdict == "fail"]
        should = [t.rule.rule for t in tallies if t.verdict == "non-strict"]
        evidence += [(t.rule.rule, *t.failures[0]) for t in tallies if t.failures]
        if must:
            verdicts[section] = "fail: " + ", ".join(must)
        elif should:
            verdicts[section] = "pass (SHOULD failed: " + ", ".join(should) + ")"
        else:
            verdicts[section] = "pass"
    return verdicts, evidence


def _torrents(capture: Path, torrent_dirs: Iterable[Path]) -> list:
    """The torrent recorded with a capture (same name, ``.torrent``), if any."""
    from p2pkit.bittorrent.wire.metainfo import Metainfo

    for folder in (capture.parent, *torrent_dirs):
        path = folder / (capture.stem + ".torrent")
        if path.is_file():
            return [Metainfo.parse(path.read_bytes())]
    return []


def _secrets(capture: Path) -> dict[str, object] | None:
    """The Noise key log recorded with a capture (same name, ``.keylog``), if any."""
    from p2pkit.ipfs.noise_keylog import parse_noise_keylog

    path = capture.with_suffix(".keylog")
    if not path.is_file():
        return None
    keylog = parse_noise_keylog(path.read_text(encoding="ascii", errors="replace"))
    return {"ipfs": keylog} if len(keylog) else None


def capture_rows(roots: Iterable[Path], torrent_dirs: Iterable[Path] = ()) -> list[CaptureRow]:
    """Judge every capture under ``roots`` and group its endpoints into rows. A capture with
    nothing the rules judge gets one row with no implementation and empty verdicts."""
    torrent_dirs = list(torrent_dirs)
    rows: list[CaptureRow] = []
    for path, _copies in capture_files(roots):
        report: CaptureReport = check_capture(path, torrents=_torrents(path, torrent_dirs),
                                               secrets=_secrets(path))
        grouped: dict[tuple, CaptureRow] = {}
        for who in report.endpoints.values():
            if not any(t.checked for t in who.tallies.values()):
                continue
            verdicts, evidence = _verdicts(who)
            key = (who.implementation, tuple(sorted(verdicts.items())))
            row = grouped.get(key)
            if row is None:
                row = grouped[key] = CaptureRow(path.name, who.implementation,
                                                verdicts=verdicts)
            row.endpoints.append(who.endpoint)
            row.messages += who.messages
            row.evidence += [e for e in evidence if e[0] not in {r for r, _, _ in row.evidence}]
        if not grouped:
            rows.append(CaptureRow(path.name, "", verdicts=dict.fromkeys(SECTIONS, "")))
        rows += sorted(grouped.values(), key=lambda r: (r.implementation, r.endpoints[0]))
    return rows
