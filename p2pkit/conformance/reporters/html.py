"""One self-contained HTML file: per case the quoted requirement and, per step, what was sent
and what came back side by side as the field trees ``p2pkit dissect -V`` prints (decoded by
the dissector's own decoders, :mod:`p2pkit.conformance.reporters.field_trees`), the line of
the first difference highlighted with what was expected and what came; with several targets,
the per-protocol matrix first (rows = cases grouped by section, columns = targets).

The page is rendered from the jinja2 template ``report.html.j2`` next to this module; it
needs no network (inline CSS, no scripts but the browser's own ``<details>``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.reporters.field_trees import case_trees
from p2pkit.conformance.reporters.json_report import to_document
from p2pkit.conformance.runner import VERDICTS, RunReport

__all__ = ["render", "write"]


def _anchor(run: RunReport, case_id: str, many: bool) -> str:
    return f"{run.label}/{case_id}" if many else case_id


def _run(run: RunReport, many: bool) -> dict[str, Any]:
    doc = to_document(run)
    cases = []
    for result, case_doc in zip(run.results, doc["cases"], strict=True):
        steps = []
        for exchange, trees in zip(result.exchanges, case_trees(result), strict=True):
            steps.append({
                "step": exchange.step + 1, "source": exchange.source, "count": exchange.count,
                "expect": exchange.expect, "elapsed": exchange.answer.elapsed,
                "ok": None if exchange.check is None else exchange.check.ok,
                "reason": "" if exchange.check is None else exchange.check.reason,
                "kind": exchange.answer.kind,
                "deviations": [f"{d.level} {d.rule}: {d.message}"
                               for d in exchange.answer.deviations],
                "sent": trees.sent, "received": trees.received, "marked": trees.marked,
                "difference": trees.difference})
        cases.append({"result": result, "case": result.case, "steps": steps,
                      "anchor": _anchor(run, result.case.id, many),
                      "difference": case_doc["difference"]})
    return {"run": run, "doc": doc, "cases": cases}


def render(report: RunReport | MatrixReport) -> str:
    """The report (one run, or the runs of several targets with their matrix) as one HTML
    document."""
    import jinja2

    matrix = report if isinstance(report, MatrixReport) else MatrixReport([report])
    many = len(matrix.runs) > 1
    template = files("p2pkit.conformance.reporters").joinpath("report.html.j2").read_text(
        encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    sections = [(section, [{"row": row, "cells": [
        (label, row.verdicts.get(label), _anchor(run, row.case.id, many))
        for label, run in zip(matrix.labels, matrix.runs, strict=True)]} for row in rows])
        for section, rows in matrix.sections()] if many else []
    return env.from_string(template).render(
        protocol=matrix.protocol, runs=[_run(run, many) for run in matrix.runs],
        many=many, matrix=matrix, sections=sections, verdicts=VERDICTS)


def write(report: RunReport | MatrixReport, path: str | Path) -> None:
    Path(path).write_text(render(report), encoding="utf-8")
