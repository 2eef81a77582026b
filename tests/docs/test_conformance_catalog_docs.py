"""The generated conformance catalog page (docs/_ext/p2pkit_conformance_catalog.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from docutils import nodes

from p2pkit.conformance import CATALOGS, catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import p2pkit_conformance_catalog  # noqa: E402


@pytest.mark.parametrize("protocol", sorted(CATALOGS))
def test_every_case_is_listed_with_its_quote(protocol):
    rendered = p2pkit_conformance_catalog.catalog_nodes(protocol)
    text = "\n".join(node.astext() for node in rendered)
    cases = catalog(protocol)
    assert text.startswith(f"{len(cases)} cases: ")
    for case in cases:
        assert f"{case.id} ({case.level}) {case.title}" in text
        assert " ".join(case.requirement.split()) in text
    quotes = [n for n in rendered if isinstance(n, nodes.block_quote)]
    assert len(quotes) == len(cases)
