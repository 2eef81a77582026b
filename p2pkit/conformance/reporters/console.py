"""The console reporter: a live line per case (id, verdict, time), then a summary table;
with several targets, the matrix (a row per section, a column per target) and the cases whose
verdicts differ between targets."""

from __future__ import annotations

from collections import Counter
from typing import IO

from rich.console import Console
from rich.table import Table

from p2pkit.conformance.matrix import MatrixReport
from p2pkit.conformance.runner import VERDICTS, Result, RunReport

__all__ = ["ConsoleReporter"]

STYLE = {"pass": "green", "fail": "bold red", "non-strict": "yellow",
         "informational": "cyan", "unsupported": "magenta", "target-died": "bold red reverse",
         "skipped": "dim"}


class ConsoleReporter:
    """Prints to ``file`` (standard output by default); colours only on a terminal."""

    def __init__(self, file: IO[str] | None = None, *, verbose: bool = False) -> None:
        self.console = Console(file=file, highlight=False, soft_wrap=True)
        self.verbose = verbose

    def line(self, result: Result) -> None:
        """One case as it finishes."""
        style = STYLE.get(result.verdict, "")
        reason = ""
        if result.verdict not in ("pass", "informational") or self.verbose:
            reason = f"  [dim]{_escape(result.reason)}[/dim]" if result.reason else ""
        self.console.print(f"[{style}]{result.verdict:<13}[/{style}] {result.elapsed:6.3f}s "
                           f"{result.case.level:<6} {_escape(result.case.id)}{reason}")

    def summary(self, report: RunReport) -> None:
        """Verdict counts per section, then the cases that fail the run."""
        table = Table(title=f"{report.protocol} conformance of {report.target}"
                            f"{' (strict)' if report.strict else ''}: "
                            f"{len(report.results)} cases in {report.duration:.1f} s")
        table.add_column("section")
        shown = [v for v in VERDICTS if any(r.verdict == v for r in report.results)]
        for v in shown:
            table.add_column(v, justify="right", style=STYLE.get(v, ""))
        per: dict[str, Counter] = {}
        for r in report.results:
            per.setdefault(r.case.section, Counter())[r.verdict] += 1
        for section, counts in per.items():
            table.add_row(section, *[str(counts.get(v, 0) or "") for v in shown])
        totals = report.counts()
        table.add_row("[b]total[/b]", *[f"[b]{totals[v]}[/b]" for v in shown])
        self.console.print(table)
        failing = report.must_failures
        if failing:
            self.console.print(f"[bold red]{len(failing)} case(s) fail the run:[/bold red]")
            for r in failing:
                self.console.print(f"  {_escape(r.case.id)} ({r.case.spec}, {r.case.level}): "
                                   f"{_escape(r.reason)}")
        else:
            self.console.print("[green]no MUST case fails[/green]")


    def matrix(self, matrix: MatrixReport) -> None:
        """Verdict counts per section and target, then each case the targets disagree on."""
        table = Table(title=f"{matrix.protocol} conformance matrix: "
                            f"{len(matrix.runs)} targets")
        table.add_column("section")
        for run in matrix.runs:
            table.add_column(f"{run.label}\n{run.target}" if run.label != run.target
                             else run.target)
        for section, rows in matrix.sections():
            cells = []
            for label in matrix.labels:
                counts = Counter(row.verdicts[label] for row in rows if label in row.verdicts)
                cells.append(" ".join(f"[{STYLE.get(v, '')}]{counts[v]} {v}[/]"
                                      for v in VERDICTS if counts.get(v)) or "-")
            table.add_row(section, *cells)
        self.console.print(table)
        differing = [row for row in matrix.rows() if row.differs]
        if differing:
            self.console.print(f"{len(differing)} case(s) where the targets differ:")
            for row in differing:
                verdicts = ", ".join(f"{label} [{STYLE.get(v, '')}]{v}[/]"
                                     for label, v in row.verdicts.items())
                self.console.print(f"  {_escape(row.case.id)} ({row.case.level}): {verdicts}")
        failing = [run.label for run in matrix.runs if not run.ok]
        if failing:
            self.console.print(f"[bold red]a MUST case fails on: {', '.join(failing)}"
                               "[/bold red]")
        else:
            self.console.print("[green]no MUST case fails on any target[/green]")


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
