"""What the benches check on the emulator's record: the independent checker (no conflict, no
short yellow or red clearance) with the plan's minimums, and the daemon's own log counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgectl.config.loader import load_config
from edgectl.testing.checker import channel_minimums, check_record, derive_channel_conflicts

RECORD_JITTER_S = 0.03  # the emulator's record is stamped at its own 20 ms tick


def record_findings(config_path: Path, record: Path, *, limit: int = 10) -> list[str]:
    """The checker's findings on ``record`` for the config's running plan (at most ``limit``)."""
    config = load_config(config_path, environ={})
    mins = channel_minimums(config, config.plan(config.control.plan))
    findings = check_record(
        record,
        sorted(derive_channel_conflicts(config)),
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=RECORD_JITTER_S,
    )
    return [str(f) for f in findings[:limit]]


def count_events(events: list[dict[str, Any]], name: str) -> int:
    """How many of the daemon's JSON log lines are ``name``."""
    return sum(1 for e in events if e.get("event") == name)
