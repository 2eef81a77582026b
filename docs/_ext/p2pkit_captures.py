"""``conformance check`` over every capture, drawn at build time (``p2pkit-captures``).

The directive judges every capture of ``tests/data/captures`` and ``../shared/traces`` (or
``$P2PKIT_TRACES``; roots
that are not there are skipped; the same bytes in two places are judged once) with
:func:`p2pkit.conformance.capture_table.capture_rows`, and draws two tables: the verdict of
each section per capture and implementation, and the first failing frame of every rule that
failed (the evidence). Nothing is typed by hand, so the page cannot drift from the rules.

Options: ``:evidence:`` draws the evidence table instead of the verdicts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Where captures are looked for, in order (a missing root is skipped): the repository's, and
#: the shared traces beside the checkout (``P2PKIT_TRACES`` names them from a worktree).
ROOTS = (ROOT / "tests" / "data" / "captures",
         Path(os.environ.get("P2PKIT_TRACES", ROOT.parent / "shared" / "traces")))
TORRENTS = (ROOT / "tests" / "data" / "torrents",)

VERDICT_HEADER = ("capture", "endpoints", "implementation", "messages", "DHT", "tracker",
                  "peer wire", "Gnutella", "IPFS")
EVIDENCE_HEADER = ("capture", "implementation", "rule", "frame", "what was sent")


def verdict_rows(rows: list[Any]) -> list[tuple[str, ...]]:
    """The verdict table's cells ("—": no traffic of that section; a capture with nothing
    judged says so)."""
    out = []
    for row in rows:
        if not row.endpoints:
            out.append((row.capture, "—", "nothing judged (no DHT, tracker, Gnutella, libp2p "
                        "or readable peer-wire traffic)", "0", "—", "—", "—", "—", "—"))
            continue
        out.append((row.capture, row.endpoint_text, row.implementation or "?",
                    str(row.messages), *(row.verdicts[s] or "—" for s in
                                         ("DHT", "tracker", "peer wire", "Gnutella",
                                          "IPFS"))))
    return out


def evidence_rows(rows: list[Any]) -> list[tuple[str, ...]]:
    return [(row.capture, row.implementation or "?", rule, str(frame), reason)
            for row in rows for rule, frame, reason in row.evidence]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Any:
    from docutils import nodes

    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=10)
    head = nodes.thead()
    group += head
    body = nodes.tbody()
    group += body
    for cells, section in ([header], head), (rows, body):
        for cell_texts in cells:
            row = nodes.row()
            for text in cell_texts:
                entry = nodes.entry()
                entry += nodes.paragraph(text=text)
                row += entry
            section += row
    return table


def setup(app: Any) -> dict[str, Any]:
    from docutils.parsers.rst import Directive, directives

    class CapturesDirective(Directive):
        """``p2pkit-captures``: every capture judged (``:evidence:`` for the failures)."""

        has_content = False
        option_spec = {"evidence": directives.flag}

        def run(self) -> list[Any]:
            from p2pkit.conformance.capture_table import capture_rows

            rows = capture_rows(ROOTS, TORRENTS)
            if "evidence" in self.options:
                return [_table(EVIDENCE_HEADER, evidence_rows(rows))]
            return [_table(VERDICT_HEADER, verdict_rows(rows))]

    app.add_directive("p2pkit-captures", CapturesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
