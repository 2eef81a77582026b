"""The matrix of real implementations per protocol (issue 11: "CI runs the suite against real
implementations on loopback inside ``unshare -n``"), shared by test_real_peers.py,
test_real_nodes.py and test_real_trackers.py.

Each of those runs its catalog against the real implementations and p2pkit's own peer inside
one network namespace, then :func:`write_artifacts` puts the matrix report (HTML, JSON, JUnit)
into ``$P2PKIT_CONFORMANCE_ARTIFACTS/<protocol>`` (or the test's tmp dir), and
:func:`record` condenses it into the committed record ``docs/conformance-matrix/<protocol>.json``
the docs page draws (``docs/_ext/p2pkit_conformance_matrix.py``). The test then checks that the
MUST failures of each implementation equal the record's findings, so the page stays true; run
it with ``P2PKIT_UPDATE_MATRIX=1`` to rewrite the record after a real change.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "docs" / "conformance-matrix"
#: Verdicts that make a run fail (a MUST case failed, or the target died on it).
FAILING = ("fail", "target-died")
#: Verdicts listed as findings on the docs page (SHOULD and MAY findings too).
FINDINGS = (*FAILING, "non-strict")


def p2pkit_version() -> str:
    try:
        return metadata.version("p2pkit")
    except metadata.PackageNotFoundError:
        return "source"


def artifacts_dir(protocol: str, default: Path) -> Path:
    """Where a run's reports go: ``$P2PKIT_CONFORMANCE_ARTIFACTS/<protocol>``, else ``default``."""
    root = os.environ.get("P2PKIT_CONFORMANCE_ARTIFACTS")
    out = Path(root) / protocol if root else default
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_artifacts(reports: Iterable[Any], out: Path) -> Any:
    """The matrix of ``reports`` (each labelled) as ``matrix.html``, ``matrix.json`` and
    ``matrix.xml`` in ``out``, and each run's own JSON; returns the
    :class:`~p2pkit.conformance.matrix.MatrixReport`."""
    from p2pkit.conformance.matrix import MatrixReport
    from p2pkit.conformance.reporters import html, json_report, junit

    matrix = MatrixReport(list(reports))
    html.write(matrix, out / "matrix.html")
    json_report.write(matrix, out / "matrix.json")
    junit.write(matrix, out / "matrix.xml")
    for run in matrix.runs:
        json_report.write(run, out / f"{run.label}.json")
    return matrix


def record(matrix: Any, targets: Mapping[str, Mapping[str, str]], command: str) -> dict:
    """The committed record of a matrix run: per target its implementation, version, address,
    counts and duration; per case the verdict on each target; the findings (every case a
    target fails or meets only non-strictly) with the harness's reason as evidence.
    ``targets`` maps each label to ``{"implementation": …, "version": …}``."""
    runs = []
    for run in matrix.runs:
        runs.append({"label": run.label, **targets[run.label], "target": run.target,
                     "duration": round(run.duration, 1), "counts": run.counts()})
    findings = [{"label": run.label, "case": r.case.id, "level": r.case.level,
                 "spec": r.case.spec, "verdict": r.verdict, "reason": r.reason}
                for run in matrix.runs for r in run.results if r.verdict in FINDINGS]
    return {"protocol": matrix.protocol, "command": command, "targets": runs,
            "verdicts": {row.case.id: row.verdicts for row in matrix.rows()},
            "findings": findings}


def record_path(protocol: str) -> Path:
    return RECORDS / f"{protocol}.json"


def load_record(protocol: str) -> dict:
    return json.loads(record_path(protocol).read_text())


def failing(verdicts: Mapping[str, Mapping[str, str]], label: str) -> set[str]:
    """The cases ``label`` fails (MUST, or target died) in a record's ``verdicts``."""
    return {case for case, per in verdicts.items() if per.get(label) in FAILING}


def check_against_record(seen: dict, expected: Mapping[str, set[str]]) -> None:
    """Assert the live run's failures per label equal ``expected`` (the test's constants) and
    the committed record's (what the docs page shows); with ``P2PKIT_UPDATE_MATRIX=1`` write
    the record from the live run first."""
    path = record_path(seen["protocol"])
    for label, cases in expected.items():
        live = failing(seen["verdicts"], label)
        assert live == cases, (label, sorted(live ^ cases),
                               [f for f in seen["findings"] if f["label"] == label])
    if os.environ.get("P2PKIT_UPDATE_MATRIX"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(seen, indent=1, sort_keys=False) + "\n")
    committed = json.loads(path.read_text())
    for label, cases in expected.items():
        assert failing(committed["verdicts"], label) == cases, (
            f"{path.name} is out of date for {label}: run with P2PKIT_UPDATE_MATRIX=1")
    assert [t["label"] for t in committed["targets"]] == [t["label"] for t in seen["targets"]]
