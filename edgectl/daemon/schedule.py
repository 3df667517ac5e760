"""The time-of-day schedule (``[[control.schedule]]``), followed by the control loop.

Looked at every ``SCHEDULE_CHECK_TICKS`` in the cabinet's local time: the daemon switches plan
(and mode) when the entry in force changes and once at start-up, so an operator's
``set_plan`` holds until the schedule's next boundary.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from edgectl.config.model import Mode, ScheduleEntry
from edgectl.control.types import SetMode, SetPlan
from edgectl.daemon.port import OperatorPort

log = structlog.get_logger("edgectl.daemon")

SCHEDULE_CHECK_TICKS = 100  # the time-of-day schedule is looked at every 10 s


class ScheduleFollower:
    """Turns a change of the schedule's entry in force into plan and mode directives."""

    def __init__(self, port: OperatorPort) -> None:
        self.port = port
        self._entry: ScheduleEntry | None = None

    def follow(self, local_now: datetime) -> None:
        from edgectl.control.schedule import entry_in_force

        port = self.port
        entry = entry_in_force(port.config.control.schedule, local_now)
        if entry is None or entry == self._entry:
            return
        self._entry = entry
        plan = port.config.plan(entry.plan)
        if plan.id != port.controller.plan.id:
            port.directives.append(SetPlan(plan))
        mode = entry.mode
        if mode in (Mode.FIXED, Mode.COORDINATED) and (
            plan.coordination is None or plan.coordination.cycle <= 0
        ):
            log.error("schedule_mode_refused", at=entry.at, mode=mode.value, plan=plan.id)
            mode = None
        if mode is not None and mode is not port.controller.mode:
            port.directives.append(SetMode(mode))
        log.info("schedule_entry", at=entry.at, plan=plan.id, mode=mode.value if mode else None)
