"""Hardware-in-the-loop fixtures: ground truth from the emulator, never the daemon's word."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig
from edgectl.testing import hil

from .support import EIGHT_PHASE


@pytest.fixture
def eight_phase() -> DaemonConfig:
    return load_config(EIGHT_PHASE)


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    before = set(hil.LIVE)
    yield
    leaked = set(hil.LIVE) - before
    assert not leaked, f"test leaked processes {sorted(leaked)}"
