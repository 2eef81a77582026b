"""Reporters: turn a :class:`~p2pkit.conformance.runner.RunReport` into something to read.

They are separate from the runner (DESIGN.md): :mod:`.console` (a live line per case, then a
summary table), :mod:`.junit` (JUnit XML for CI), :mod:`.json_report` (a documented JSON
document) and :mod:`.html` (one self-contained HTML file).
"""

from __future__ import annotations

__all__ = ["console", "html", "json_report", "junit"]
