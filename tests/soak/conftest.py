"""Fixtures of the campaign tests: no process may outlive its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgectl.testing import hil


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    before = set(hil.LIVE)
    yield
    leaked = set(hil.LIVE) - before
    assert not leaked, f"test leaked processes {sorted(leaked)}"
