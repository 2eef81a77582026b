"""The matrix of real implementations, drawn at build time (``p2pkit-conformance-matrix``).

The directive reads the committed record of the last real run of a protocol,
``docs/conformance-matrix/<protocol>.json`` (written by tests/conformance/test_real_peers.py,
test_real_nodes.py and test_real_trackers.py with ``P2PKIT_UPDATE_MATRIX=1``; those tests fail
when a live run no longer matches it, and tests/conformance/test_matrix_record.py when the
catalog's cases change), and draws one of three tables:

- ``:targets:`` the implementations: label, what and which version, address, verdict counts,
  duration;
- ``:findings:`` every case an implementation fails or meets only non-strictly (client,
  version, case, level, verdict, the harness's reason);
- default: the matrix, one row per case (catalog order, the case's level), a verdict per
  implementation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from p2pkit_captures import _table

RECORDS = Path(__file__).resolve().parents[1] / "conformance-matrix"
#: How a verdict is written in the matrix (short, so four or more columns fit).
SHORT = {"pass": "pass", "fail": "FAIL", "non-strict": "non-strict", "informational": "info",
         "unsupported": "unsupported", "target-died": "DIED", "skipped": "skipped"}
COUNTS = ("pass", "fail", "non-strict", "informational", "unsupported", "target-died")


def load(protocol: str) -> dict[str, Any]:
    return json.loads((RECORDS / f"{protocol}.json").read_text())


def target_rows(record: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(t["label"], t["implementation"], t["version"], t["target"],
             *(str(t["counts"].get(v, 0)) for v in COUNTS), f"{t['duration']:g} s")
            for t in record["targets"]]


def finding_rows(record: dict[str, Any]) -> list[tuple[str, ...]]:
    by_label = {t["label"]: t for t in record["targets"]}
    return [(f["label"], by_label[f["label"]]["version"], f["case"], f["level"], f["verdict"],
             f["reason"]) for f in record["findings"]]


def matrix_rows(record: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    from p2pkit.conformance import catalog

    labels = [t["label"] for t in record["targets"]]
    levels = {c.id: c.level for c in catalog(record["protocol"])}
    rows = [(case, levels.get(case, "?"),
             *(SHORT.get(verdicts.get(label, ""), "—") for label in labels))
            for case, verdicts in record["verdicts"].items()]
    return ("case", "level", *labels), rows


def setup(app: Any) -> dict[str, Any]:
    from docutils.parsers.rst import Directive, directives

    class MatrixDirective(Directive):
        """``p2pkit-conformance-matrix PROTOCOL`` (``:targets:``, ``:findings:``)."""

        required_arguments = 1
        has_content = False
        option_spec = {"targets": directives.flag, "findings": directives.flag}

        def run(self) -> list[Any]:
            record = load(self.arguments[0])
            env = self.state.document.settings.env
            env.note_dependency(str(RECORDS / f"{self.arguments[0]}.json"))
            if "targets" in self.options:
                return [_table(("label", "implementation", "version", "address", *COUNTS,
                                "duration"), target_rows(record))]
            if "findings" in self.options:
                return [_table(("label", "version", "case", "level", "verdict", "evidence"),
                               finding_rows(record))]
            header, rows = matrix_rows(record)
            return [_table(header, rows)]

    app.add_directive("p2pkit-conformance-matrix", MatrixDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
