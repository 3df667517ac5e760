"""What every part of the engine shares."""

from __future__ import annotations

from dataclasses import dataclass

from edgectl.control.engine._layout import Layout
from edgectl.control.engine._rings import RingSet
from edgectl.control.engine._status import Status
from edgectl.control.engine._timing import PlanTiming

__all__ = ["Core"]


@dataclass(frozen=True, slots=True)
class Core:
    """The junction's layout, the unit's status, the running plan's timing and the rings."""

    layout: Layout
    status: Status
    timing: PlanTiming
    rings: RingSet
