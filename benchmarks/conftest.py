"""Benchmarks run only with ``--benchmark-enable`` (``tox -e bench``); never timing asserts."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.bench)
