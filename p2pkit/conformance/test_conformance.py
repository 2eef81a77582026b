"""One pytest item per conformance case (see :mod:`p2pkit.conformance.pytest_plugin`)."""

from __future__ import annotations

from typing import Any

from p2pkit.conformance.pytest_plugin import run_one


def test_case(conformance_case: Any, p2p_session: Any) -> None:
    run_one(p2p_session, conformance_case)
