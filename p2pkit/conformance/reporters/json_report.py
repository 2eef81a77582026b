"""The JSON report: one document whose shape is the JSON Schema shipped next to this module
(``report.schema.json``, rendered in docs/conformance-reports.md).

One target gives a run document (``"schema": "p2pkit-conformance/1"``); several targets
(``--target a=… --target b=…``) give a matrix document (``p2pkit-conformance-matrix/1``)
holding each run and the per-protocol matrix. Every exchange carries what was sent and what
came back as hex, as flat fields, and as the field trees ``p2pkit dissect -V`` prints, with the
line of the first difference.

>>> from p2pkit.conformance.runner import RunReport
>>> doc = to_document(RunReport(protocol="dht", target="127.0.0.1:6881", strict=False,
...                             started=0.0))
>>> validate(doc), doc["summary"]["exit_status"], doc["label"]
([], 0, '127.0.0.1:6881')
>>> validate(dict(doc, duration=-1))
['$.duration: -1 is less than the minimum of 0']
"""

from __future__ import annotations

import datetime
import functools
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.reporters.field_trees import case_trees, trees_json
from p2pkit.conformance.runner import Result, RunReport

__all__ = ["MATRIX_SCHEMA", "SCHEMA", "json_schema", "matrix_document", "to_document",
           "validate", "write"]

#: The run document's ``schema`` value; bumped when the shape changes incompatibly.
SCHEMA = "p2pkit-conformance/1"
#: The multi-target document's ``schema`` value.
MATRIX_SCHEMA = "p2pkit-conformance-matrix/1"


@functools.cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of both documents, as shipped in the package."""
    text = files("p2pkit.conformance.reporters").joinpath("report.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def _case(result: Result) -> dict[str, Any]:
    doc = result.to_json()
    steps = trees_json(case_trees(result))
    for exchange, trees in zip(doc["exchanges"], steps, strict=True):
        exchange.update(trees)
    failing = [t["difference"] for t in steps if t["difference"] is not None]
    doc["difference"] = failing[0] if failing and result.verdict not in ("pass",) else None
    return doc


def to_document(report: RunReport) -> dict[str, Any]:
    """The run document of one target."""
    counts = report.counts()
    return {
        "schema": SCHEMA,
        "protocol": report.protocol,
        "target": report.target,
        "label": report.label,
        "strict": report.strict,
        "started": datetime.datetime.fromtimestamp(report.started, datetime.UTC).isoformat(),
        "duration": round(float(report.duration), 6),
        "summary": {"total": len(report.results), **counts,
                    "exit_status": 0 if report.ok else 1},
        "cases": [_case(r) for r in report.results],
    }


def matrix_document(matrix: MatrixReport) -> dict[str, Any]:
    """The multi-target document: each run, and a row per case with a verdict per target."""
    return {
        "schema": MATRIX_SCHEMA,
        "protocol": matrix.protocol,
        "targets": [{"label": run.label, "target": run.target} for run in matrix.runs],
        "exit_status": 0 if matrix.ok else 1,
        "matrix": [{"section": row.section, "id": row.case.id, "level": row.case.level,
                    "verdicts": row.verdicts} for row in matrix.rows()],
        "runs": [to_document(run) for run in matrix.runs],
    }


def validate(doc: Any) -> list[str]:
    """The ways ``doc`` departs from the JSON Schema (empty when it conforms), each as
    ``$.json.path: message``; plus the one rule a schema cannot say: ``summary.total`` is the
    number of cases. Needs the ``jsonschema`` package."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                        for p in error.absolute_path)
        problems.append(f"${where}: {error.message}")
    if problems:
        return problems
    runs = doc["runs"] if doc["schema"] == MATRIX_SCHEMA else [doc]
    for i, run in enumerate(runs):
        if run["summary"]["total"] != len(run["cases"]):
            problems.append(f"$.runs[{i}].summary.total: differs from the number of cases"
                            if run is not doc else
                            "$.summary.total: differs from the number of cases")
    return problems


def write(report: RunReport | MatrixReport, path: str | Path) -> None:
    """Write the run document (one target) or the matrix document (several)."""
    if isinstance(report, MatrixReport):
        doc = to_document(report.runs[0]) if len(report.runs) == 1 else matrix_document(report)
    else:
        doc = to_document(report)
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
