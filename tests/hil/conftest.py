"""Hardware-in-the-loop fixtures: ground truth from the emulator, never the daemon's word."""

from __future__ import annotations

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig

from .support import EIGHT_PHASE


@pytest.fixture
def eight_phase() -> DaemonConfig:
    return load_config(EIGHT_PHASE)
