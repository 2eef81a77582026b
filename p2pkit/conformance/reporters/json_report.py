"""The JSON report: one document, its shape documented in docs/conformance.md.

>>> from p2pkit.conformance.runner import RunReport
>>> doc = to_document(RunReport(protocol="dht", target="127.0.0.1:6881", strict=False,
...                             started=0.0))
>>> validate(doc), doc["summary"]["exit_status"]
([], 0)
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from p2pkit.conformance.runner import VERDICTS, RunReport

__all__ = ["SCHEMA", "to_document", "validate", "write"]

#: The document's ``schema`` value; bumped when the shape changes incompatibly.
SCHEMA = "p2pkit-conformance/1"

#: Keys of the document, of each case and of each exchange, with their JSON types.
DOCUMENT = {"schema": str, "protocol": str, "target": str, "strict": bool, "started": str,
            "duration": float, "summary": dict, "cases": list}
SUMMARY = {"total": int, "exit_status": int, **{v: int for v in VERDICTS}}
CASE = {"id": str, "title": str, "spec": str, "requirement": str, "level": str, "rule": str,
        "robustness": bool, "depends": list, "extension": (str, type(None)), "verdict": str, "reason": str,
        "elapsed": float, "failed_step": (int, type(None)), "path": (str, type(None)),
        "exchanges": list}
EXCHANGE = {"step": int, "source": str, "count": int, "sent": str, "sent_fields": dict,
            "expect": str, "received": (str, type(None)), "received_fields": dict,
            "elapsed": float, "deviations": list, "ok": (bool, type(None)), "reason": str,
            "path": (str, type(None))}


def to_document(report: RunReport) -> dict[str, Any]:
    counts = report.counts()
    return {
        "schema": SCHEMA,
        "protocol": report.protocol,
        "target": report.target,
        "strict": report.strict,
        "started": datetime.datetime.fromtimestamp(report.started, datetime.UTC).isoformat(),
        "duration": round(float(report.duration), 6),
        "summary": {"total": len(report.results), **counts,
                    "exit_status": 0 if report.ok else 1},
        "cases": [r.to_json() for r in report.results],
    }


def _check(obj: Any, shape: dict, where: str, problems: list[str]) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: not an object")
        return
    for key, kind in shape.items():
        if key not in obj:
            problems.append(f"{where}.{key}: missing")
        elif kind is float and isinstance(obj[key], (int, float)) and not isinstance(
                obj[key], bool):
            continue
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            problems.append(f"{where}.{key}: {type(obj[key]).__name__}, expected {kind}")


def validate(doc: Any) -> list[str]:
    """The ways ``doc`` departs from the documented shape (empty when it conforms)."""
    problems: list[str] = []
    _check(doc, DOCUMENT, "$", problems)
    if problems:
        return problems
    if doc["schema"] != SCHEMA:
        problems.append(f"$.schema: {doc['schema']!r}, expected {SCHEMA!r}")
    _check(doc["summary"], SUMMARY, "$.summary", problems)
    for i, case in enumerate(doc["cases"]):
        _check(case, CASE, f"$.cases[{i}]", problems)
        if isinstance(case, dict):
            if case.get("verdict") not in VERDICTS:
                problems.append(f"$.cases[{i}].verdict: {case.get('verdict')!r}")
            for j, ex in enumerate(case.get("exchanges") or ()):
                _check(ex, EXCHANGE, f"$.cases[{i}].exchanges[{j}]", problems)
    if not problems and doc["summary"]["total"] != len(doc["cases"]):
        problems.append("$.summary.total: differs from the number of cases")
    return problems


def write(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_document(report), indent=1) + "\n", encoding="utf-8")
