"""Helpers of the hardware-in-the-loop tests."""

from __future__ import annotations

from pathlib import Path

from edgectl.config.model import DaemonConfig
from edgectl.control.types import ChannelState
from edgectl.testing.checker import Finding, channel_minimums, check_record

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "examples" / "eight_phase.toml"
# The daemon holds its clock when a frame reaches the cabinet later than the link's usual
# latency + 20 ms (edgectl.daemon.DeliveryClock), so an interval shown can be shorter than the
# engine's count of ticks by at most that threshold plus scheduling noise: 30 ms in all.
RECORD_JITTER_S = 0.03


def record_findings(
    config: DaemonConfig, record: Path, conflicts: list[list[int]]
) -> list[Finding]:
    plan = config.plan(config.control.plan)
    mins = channel_minimums(config, plan)
    return check_record(
        record,
        [(a, b) for a, b in conflicts],
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=RECORD_JITTER_S,
    )


def greens_per_channel(rows: list[tuple[float, int, str]], after: float = 0.0) -> dict[int, int]:
    """How often each channel turned green (or walk) after ``after`` seconds."""
    counts: dict[int, int] = {}
    for t, ch, state in rows:
        if t >= after and state in (ChannelState.G.name, ChannelState.W.name):
            counts[ch] = counts.get(ch, 0) + 1
    return counts
