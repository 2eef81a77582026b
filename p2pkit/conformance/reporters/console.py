"""The console reporter: a live line per case (id, verdict, time), then a summary table."""

from __future__ import annotations

from collections import Counter
from typing import IO

from rich.console import Console
from rich.table import Table

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


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
