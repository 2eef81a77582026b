"""The conformance case catalog, generated from the cases themselves.

```` ```{p2pkit-cases} dht ``` ```` renders one protocol's catalog
(:func:`p2pkit.conformance.catalog`): a count per level, then one entry per case with its id,
title, level, spec reference and the requirement quoted from the spec. Without an argument it
renders every protocol of :data:`p2pkit.conformance.CATALOGS`, one section each.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def _case_nodes(case: Any) -> list[Any]:
    term = nodes.paragraph(classes=["p2pkit-case"])
    term += nodes.literal(text=case.id)
    term += nodes.Text(f" ({case.level}) {case.title}. ")
    term += nodes.emphasis(text=case.spec)
    if case.extension:
        term += nodes.Text(f"; needs {case.extension}")
    quote = nodes.block_quote()
    quote += nodes.paragraph(text=" ".join(case.requirement.split()))
    return [term, quote]


def catalog_nodes(protocol: str) -> list[Any]:
    """A protocol's catalog: the per-level counts, then every case."""
    from p2pkit.conformance import catalog

    cases = catalog(protocol)
    levels = Counter(case.level for case in cases)
    summary = ", ".join(f"{levels[level]} {level}" for level in ("MUST", "SHOULD", "MAY", "INFO")
                        if levels[level])
    result: list[Any] = [nodes.paragraph(text=f"{len(cases)} cases: {summary}.")]
    for case in cases:
        result += _case_nodes(case)
    return result


class CasesDirective(SphinxDirective):
    """```` ```{p2pkit-cases} PROTOCOL ``` ````: one catalog, or every catalog."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[Any]:
        from p2pkit.conformance import CATALOGS

        chosen = [self.arguments[0]] if self.arguments else sorted(CATALOGS)
        result: list[Any] = []
        for protocol in chosen:
            try:
                body = catalog_nodes(protocol)
            except Exception as e:  # noqa: BLE001 - report, never crash the build
                logger.warning("p2pkit-cases: cannot list %s: %s", protocol, e,
                               location=self.get_location())
                continue
            if self.arguments:
                result += body
            else:
                section = nodes.section(ids=[nodes.make_id("cases " + protocol)])
                section += nodes.title(text=protocol)
                section += body
                result.append(section)
        return result


def setup(app: Any) -> dict[str, Any]:
    """Register the ``p2pkit-cases`` directive."""
    app.add_directive("p2pkit-cases", CasesDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
