"""Pedestrian intervals: walk, ped clearance, don't walk.

A ped call at green start times walk then ped clear, and min green is stretched to cover
them. Preemption and commanded flash truncate the walk to its ped clearance, which always
runs in full.
"""

from __future__ import annotations

from edgectl.control.engine._core import Core
from edgectl.control.engine._demand import Demand
from edgectl.control.engine._rings import Ring
from edgectl.control.types import EventCode, PedInterval

__all__ = ["Pedestrians"]


class Pedestrians:
    """Times each ring's pedestrian interval during its phase's green."""

    __slots__ = ("_demand", "_layout", "_rings", "_status", "_timing")

    def __init__(self, *, core: Core, demand: Demand) -> None:
        self._layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._demand = demand

    def on_green(self, ring: Ring, p: int, tick: int) -> None:
        """``p`` just turned green: start its walk when a pedestrian call waits."""
        t = self._timing.times[p]
        ring.ped = PedInterval.DONT_WALK
        if (
            p in self._demand.ped_calls
            and self._layout.phase_cfg[p].pedestrian
            and t.walk + t.ped_clear > 0
        ):
            self._start_walk(ring, p, tick)

    def _start_walk(self, ring: Ring, p: int, tick: int) -> None:
        t = self._timing.times[p]
        demand = self._demand
        ring.ped = PedInterval.WALK
        ring.ped_start = tick
        ring.walk_end = tick + t.walk
        ring.ped_end = ring.walk_end + t.ped_clear
        ring.min_end = max(ring.min_end, ring.ped_end)
        ring.min_done = False
        demand.ped_calls.discard(p)
        if p not in demand.calls:
            demand.call_since.pop(p, None)
        demand.ped_calls_out = frozenset(demand.ped_calls)
        self._rings.changed = True
        self._status.emit(EventCode.PED_BEGIN_WALK, p)

    def time(self, ring: Ring, p: int, tick: int) -> None:
        """Walk → ped clear → don't walk, during the green of ``p``."""
        if ring.ped is PedInterval.WALK and tick >= ring.walk_end:
            ring.ped = PedInterval.PED_CLEAR
            ring.ped_start = tick
            self._rings.changed = True
            self._status.emit(EventCode.PED_BEGIN_CLEAR, p)
        if ring.ped is PedInterval.PED_CLEAR and tick >= ring.ped_end:
            ring.ped = PedInterval.DONT_WALK
            ring.ped_start = tick
            self._rings.changed = True
            self._status.emit(EventCode.PED_BEGIN_DONT_WALK, p)

    def truncate_walk(self, ring: Ring) -> None:
        """End a walk now: its ped clearance starts and runs in full."""
        if ring.ped is PedInterval.WALK and ring.phase is not None:
            tick = self._status.tick
            ring.ped = PedInterval.PED_CLEAR
            ring.ped_start = tick
            ring.walk_end = tick
            ring.ped_end = tick + self._timing.times[ring.phase].ped_clear
            self._rings.changed = True
            self._status.emit(EventCode.PED_BEGIN_CLEAR, ring.phase)

    def end(self, ring: Ring, p: int) -> None:
        """The green of ``p`` ends: don't walk (never needed in normal service)."""
        if ring.ped is not PedInterval.DONT_WALK:
            ring.ped = PedInterval.DONT_WALK
            self._status.emit(EventCode.PED_BEGIN_DONT_WALK, p)
