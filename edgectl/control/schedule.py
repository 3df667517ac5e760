"""Time-of-day plan schedule (pure): which entry of ``control.schedule`` is in force.

An entry is in force from its ``at`` time on its ``days`` until the next entry begins, across
midnight and across the week. The daemon acts only when the entry in force changes (and once
at start-up), so an operator's ``set_plan`` holds until the next boundary of the schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from edgectl.config.model import ScheduleEntry

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(entry: ScheduleEntry) -> int:
    hh, mm = entry.at.split(":")
    return int(hh) * 60 + int(mm)


def entry_in_force(schedule: Sequence[ScheduleEntry], now: datetime) -> ScheduleEntry | None:
    """The entry in force at local time ``now``; ``None`` for an empty schedule."""
    minute = now.hour * 60 + now.minute
    for back in range(8):  # today, then up to a week back (the same weekday included)
        day = DAYS[(now - timedelta(days=back)).weekday()]
        candidates = [e for e in schedule if day in e.days and (back > 0 or _minutes(e) <= minute)]
        if candidates:
            # the latest start that day; among equal starts the last one listed wins
            return max(enumerate(candidates), key=lambda ie: (_minutes(ie[1]), ie[0]))[1]
    return None
