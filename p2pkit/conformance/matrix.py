"""Several targets judged by one catalog: the per-protocol matrix (h2spec and Autobahn report
one implementation at a time; the QUIC interop runner's matrix puts them side by side).

A :class:`MatrixReport` holds one :class:`~p2pkit.conformance.runner.RunReport` per target,
each under its label (``libtorrent``, ``p2pkit``); :meth:`MatrixReport.rows` gives the rows
the reporters draw: one per case, grouped by spec section, a verdict per target. The run
succeeds only when no MUST case fails on any target.

>>> from p2pkit.conformance.case import Case, Step
>>> from p2pkit.conformance.runner import Result, RunReport
>>> case = Case(id="dht/bep5/ping/response", title="t", spec="BEP 5 §ping", requirement="",
...             level="MUST", rule="r", steps=(Step(send=None),))
>>> a = RunReport("dht", "127.0.0.1:6881", False, 0.0, results=[Result(case, "pass")], label="a")
>>> b = RunReport("dht", "127.0.0.1:6882", False, 0.0, results=[Result(case, "fail")], label="b")
>>> m = MatrixReport([a, b])
>>> [(row.case.id, row.verdicts) for row in m.rows()], m.ok
([('dht/bep5/ping/response', {'a': 'pass', 'b': 'fail'})], False)
>>> parse_labelled_target("libtorrent=127.0.0.1:6881"), parse_labelled_target("[::1]:6881")
(('libtorrent', '127.0.0.1:6881'), (None, '[::1]:6881'))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from p2pkit.conformance.case import Case
from p2pkit.conformance.runner import RunReport

__all__ = ["MatrixReport", "MatrixRow", "parse_labelled_target"]

#: ``LABEL=TARGET``: a label is a word (letters, digits, ``.``, ``_``, ``-``), so neither an
#: address (``[::1]:6881``) nor a URL (``udp://h:1``) is ever taken for one.
_LABELLED = re.compile(r"^([A-Za-z][A-Za-z0-9._-]{0,39})=(.+)$")


def parse_labelled_target(text: str) -> tuple[str | None, str]:
    """``LABEL=TARGET`` as ``(label, target)``; ``(None, text)`` without a label."""
    m = _LABELLED.match(text)
    return (m.group(1), m.group(2)) if m else (None, text)


@dataclass
class MatrixRow:
    """One case across the targets: its verdict on each (absent where it was not run)."""

    section: str
    case: Case
    verdicts: dict[str, str] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        """The targets do not all get the same verdict."""
        return len(set(self.verdicts.values())) > 1


@dataclass
class MatrixReport:
    """The runs of one catalog against several targets, in the order they ran."""

    runs: list[RunReport]

    @property
    def protocol(self) -> str:
        return self.runs[0].protocol if self.runs else ""

    @property
    def labels(self) -> list[str]:
        return [run.label for run in self.runs]

    @property
    def ok(self) -> bool:
        """No MUST case fails (and no target died) on any target."""
        return all(run.ok for run in self.runs)

    def rows(self) -> list[MatrixRow]:
        """One row per case in catalog order (the first run's, then cases only later runs
        had), sections kept together."""
        rows: dict[str, MatrixRow] = {}
        for run in self.runs:
            for result in run.results:
                row = rows.get(result.case.id)
                if row is None:
                    row = rows[result.case.id] = MatrixRow(result.case.section, result.case)
                row.verdicts[run.label] = result.verdict
        order = {section: i for i, section in enumerate(dict.fromkeys(
            row.section for row in rows.values()))}
        return sorted(rows.values(), key=lambda row: order[row.section])

    def sections(self) -> list[tuple[str, list[MatrixRow]]]:
        """The rows grouped by spec section."""
        out: dict[str, list[MatrixRow]] = {}
        for row in self.rows():
            out.setdefault(row.section, []).append(row)
        return list(out.items())

    @classmethod
    def of(cls, runs: Iterable[RunReport]) -> MatrixReport:
        return cls(list(runs))
