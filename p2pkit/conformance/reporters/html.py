"""One self-contained HTML file: per case the quoted requirement, what was sent and what came
back as decoded fields side by side, the first difference highlighted.

The page is rendered from the jinja2 template ``report.html.j2`` next to this module; it
needs no network (inline CSS, no scripts but the browser's own ``<details>``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from p2pkit.conformance.reporters.json_report import to_document
from p2pkit.conformance.runner import VERDICTS, Result, RunReport

__all__ = ["render", "write"]


def _rows(result: Result, index: int, exchange: Any) -> list[dict[str, Any]]:
    """Sent and received fields side by side, the differing row marked."""
    sent = exchange.sent_fields()
    received = exchange.received_fields()
    diff = result.path if result.failed_step == index else None
    rows = []
    for i in range(max(len(sent), len(received), 1)):
        s = sent[i] if i < len(sent) else ("", "")
        r = received[i] if i < len(received) else ("", "")
        marked = diff is not None and diff != "" and r[0] != "" and (
            r[0] == diff or r[0].startswith(diff + "."))
        rows.append({"sent_path": s[0], "sent": s[1], "received_path": r[0], "received": r[1],
                     "diff": marked})
    if diff and not any(row["diff"] for row in rows):  # a missing field: say so in a row
        rows.append({"sent_path": "", "sent": "", "received_path": diff,
                     "received": "(missing)", "diff": True})
    return rows


def render(report: RunReport) -> str:
    """The report as one HTML document."""
    import jinja2

    template = files("p2pkit.conformance.reporters").joinpath("report.html.j2").read_text(
        encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    doc = to_document(report)
    cases = []
    for result in report.results:
        exchanges = [{"step": e.step + 1, "source": e.source, "count": e.count,
                      "expect": e.expect, "elapsed": e.answer.elapsed,
                      "ok": None if e.check is None else e.check.ok,
                      "reason": "" if e.check is None else e.check.reason,
                      "kind": e.answer.kind,
                      "deviations": [f"{d.level} {d.rule}: {d.message}"
                                     for d in e.answer.deviations],
                      "rows": _rows(result, e.step, e)} for e in result.exchanges]
        cases.append({"result": result, "case": result.case, "exchanges": exchanges})
    return env.from_string(template).render(doc=doc, cases=cases, verdicts=VERDICTS)


def write(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(render(report), encoding="utf-8")
