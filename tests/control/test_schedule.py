from datetime import datetime

from edgectl.config.model import ScheduleEntry
from edgectl.control.schedule import entry_in_force

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SCHEDULE = (
    ScheduleEntry(at="06:30", days=WEEKDAYS, plan=2),
    ScheduleEntry(at="09:30", days=WEEKDAYS, plan=1),
    ScheduleEntry(at="16:30", days=WEEKDAYS, plan=3),
    ScheduleEntry(at="19:00", plan=1),
    ScheduleEntry(at="10:00", days=("sat", "sun"), plan=4),
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_entry_in_force_through_the_day_and_week() -> None:
    # 2026-11-23 is a Monday
    assert entry_in_force(SCHEDULE, at("2026-11-23T07:00")).plan == 2  # type: ignore[union-attr]
    assert entry_in_force(SCHEDULE, at("2026-11-23T09:30")).plan == 1  # type: ignore[union-attr]
    assert entry_in_force(SCHEDULE, at("2026-11-23T17:00")).plan == 3  # type: ignore[union-attr]
    assert entry_in_force(SCHEDULE, at("2026-11-23T23:59")).plan == 1  # type: ignore[union-attr]
    # before Monday's first entry: Sunday's 19:00 entry is still in force (across midnight)
    assert entry_in_force(SCHEDULE, at("2026-11-23T05:00")).plan == 1  # type: ignore[union-attr]
    # Saturday 08:00: Friday 19:00 still; 10:00 the weekend plan
    assert entry_in_force(SCHEDULE, at("2026-11-28T08:00")).plan == 1  # type: ignore[union-attr]
    assert entry_in_force(SCHEDULE, at("2026-11-28T10:00")).plan == 4  # type: ignore[union-attr]


def test_empty_and_single_entry_schedules() -> None:
    assert entry_in_force((), at("2026-11-23T07:00")) is None
    only = (ScheduleEntry(at="12:00", days=("wed",), plan=5),)
    # a week-old entry is still the one in force
    assert entry_in_force(only, at("2026-11-24T08:00")).plan == 5  # type: ignore[union-attr]
    assert entry_in_force(only, at("2026-11-25T11:59")).plan == 5  # type: ignore[union-attr]
