"""Keeps the per-case items out of runs that name no target (the project's own test run).

The options and fixtures come from :mod:`p2pkit.conformance.pytest_plugin`, registered by the
``pytest11`` entry point of an installed p2pkit, or with ``-p p2pkit.conformance.pytest_plugin``
from a source checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name == "test_conformance.py" and not config.getoption(
            "--p2p-target", default=None):
        return True
    return None
