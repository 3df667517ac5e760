"""The whole suite: edgectl's own pytest plugin (broker fixtures, leak checks, ``--target``),
and the ``long`` marker: such a test runs only when ``-m`` names it (``-m long``)."""

from __future__ import annotations

import pytest

pytest_plugins = ["edgectl.testing.pytest_plugin"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "long" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long run: scripts/test.sh -m long")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)
