"""The daemon follows the time-of-day plan schedule."""

from __future__ import annotations


def test_the_daemon_follows_the_time_of_day_schedule() -> None:
    """Plan (and mode) change when the schedule's entry in force changes, not in between."""
    from datetime import datetime
    from pathlib import Path

    from edgectl.config.loader import load_config
    from edgectl.config.model import Mode, ScheduleEntry
    from edgectl.control.types import SetMode, SetPlan
    from edgectl.daemon.loop import Daemon

    base = load_config(
        Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
    )
    schedule = (
        ScheduleEntry(at="07:00", plan=2, mode=Mode.COORDINATED),
        ScheduleEntry(at="09:00", plan=1, mode=Mode.ACTUATED),
    )
    config = base.model_copy(
        update={"control": base.control.model_copy(update={"schedule": schedule})}
    )
    daemon = Daemon(config, devices=[])
    daemon.follow_schedule(datetime(2026, 11, 23, 6, 0))  # before 07:00: yesterday's 09:00
    assert list(daemon.directives) == []  # plan 1 actuated is already in force
    daemon.follow_schedule(datetime(2026, 11, 23, 7, 0))
    assert list(daemon.directives) == [SetPlan(config.plan(2)), SetMode(Mode.COORDINATED)]
    daemon.directives.clear()
    daemon.follow_schedule(datetime(2026, 11, 23, 8, 59))  # same entry: an operator's
    assert list(daemon.directives) == []  # set_plan in between would hold
