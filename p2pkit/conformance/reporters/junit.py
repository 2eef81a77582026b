"""JUnit XML: one ``testsuite`` per spec section, one ``testcase`` per case.

``fail`` is a ``failure``, ``target-died`` an ``error``, ``unsupported`` and ``skipped`` are
``skipped``; ``non-strict`` and ``informational`` pass, with the finding in ``system-out``.
With several targets, each target's suites are named ``LABEL: section``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.runner import RunReport

__all__ = ["to_xml", "write"]


def to_xml(report: RunReport | MatrixReport) -> ET.Element:
    runs = report.runs if isinstance(report, MatrixReport) else [report]
    many = len(runs) > 1
    root = ET.Element("testsuites", name=f"p2pkit conformance {runs[0].protocol}",
                      tests=str(sum(len(r.results) for r in runs)),
                      time=f"{sum(r.duration for r in runs):.3f}")
    suites: dict[str, ET.Element] = {}
    totals = {"failures": 0, "errors": 0, "skipped": 0}
    for run, result in ((r, result) for r in runs for result in r.results):
        section = f"{run.label}: {result.case.section}" if many else result.case.section
        suite = suites.get(section)
        if suite is None:
            suite = suites[section] = ET.SubElement(
                root, "testsuite", name=section, tests="0", failures="0", errors="0",
                skipped="0", time="0")
        suite.set("tests", str(int(suite.get("tests")) + 1))
        suite.set("time", f"{float(suite.get('time')) + result.elapsed:.3f}")
        case = ET.SubElement(suite, "testcase", name=result.case.id, classname=section,
                             time=f"{result.elapsed:.3f}")
        message = f"{result.case.spec} [{result.case.level}]: {result.reason}"
        kind = {"fail": "failures", "target-died": "errors", "unsupported": "skipped",
                "skipped": "skipped"}.get(result.verdict)
        if kind == "failures":
            ET.SubElement(case, "failure", message=message, type=result.case.rule).text = (
                f"{result.case.requirement}\n\n{result.reason}")
        elif kind == "errors":
            ET.SubElement(case, "error", message=message, type="target-died").text = (
                result.reason)
        elif kind == "skipped":
            ET.SubElement(case, "skipped", message=f"{result.verdict}: {result.reason}")
        elif result.verdict in ("non-strict", "informational"):
            ET.SubElement(case, "system-out").text = f"{result.verdict}: {result.reason}"
        if kind:
            suite.set(kind, str(int(suite.get(kind)) + 1))
            totals[kind] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    return root


def write(report: RunReport | MatrixReport, path: str | Path) -> None:
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
