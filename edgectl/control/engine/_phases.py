"""A ring's phase intervals: green (minimum, passage, max, hold, force-off), yellow, red
clearance, and the next phase in the ring's sequence within the current barrier group.

Green: minimum (min green, variable initial, walk + ped clear) → gap-out (passage timer) /
max-out (max 1 or 2, started by a conflicting call) / force-off; only when a conflicting call
is waiting (or rest in red is configured); hold suspends gap- and max-out. A phase with no
next phase in its group but a call beyond the barrier becomes *ready to terminate* and waits
for the other rings (``_barrier``). Yellow and red clearance run exactly as configured.
"""

from __future__ import annotations

import math

from edgectl.config.model import Recall
from edgectl.control.detectors import TICKS_PER_S
from edgectl.control.engine._core import Core
from edgectl.control.engine._demand import Demand
from edgectl.control.engine._frame import ChannelFrame
from edgectl.control.engine._pedestrian import Pedestrians
from edgectl.control.engine._rings import Ring
from edgectl.control.types import (
    NO_REQUESTS,
    EventCode,
    Interval,
    OperatingState,
    PedInterval,
    Requests,
    Termination,
)

__all__ = ["PhaseTimer"]


class PhaseTimer:
    """Starts, times and ends the phases of every ring."""

    __slots__ = (
        "_demand",
        "_frame",
        "_layout",
        "_peds",
        "_rings",
        "_status",
        "_timing",
        "capped",
        "hold_max",
        "req",
        "rest_in_red",
    )

    def __init__(
        self,
        *,
        core: Core,
        demand: Demand,
        peds: Pedestrians,
        frame: ChannelFrame,
        rest_in_red: bool,
        hold_max: int = 1_000_000_000,
    ) -> None:
        self._layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._demand = demand
        self._peds = peds
        self._frame = frame
        self.rest_in_red = rest_in_red
        self.hold_max = hold_max  # ticks a hold may keep a green after a conflicting call
        self.capped: set[int] = set()  # phases whose hold is ignored for the rest of the green
        self.req: Requests = NO_REQUESTS  # this tick's requests (overlap carry-over guess)

    def time_ring(self, ring: Ring, tick: int) -> None:
        """Pedestrian intervals of a green; yellow → red clearance → red (and the next phase
        of the group when one was chosen)."""
        p = ring.phase
        if p is None:
            return
        iv = ring.interval
        emit = self._status.emit
        times = self._timing.times
        if iv is Interval.GREEN:
            self._peds.time(ring, p, tick)
        elif iv is Interval.YELLOW and tick - ring.start >= times[p].yellow:
            emit(EventCode.PHASE_END_YELLOW, p)
            ring.interval = Interval.RED_CLEAR
            ring.start = tick
            self._rings.changed = True
            emit(EventCode.PHASE_BEGIN_RED_CLEAR, p)
            iv = Interval.RED_CLEAR
        if iv is Interval.RED_CLEAR and tick - ring.start >= times[p].red_clear:
            emit(EventCode.PHASE_END_RED_CLEAR, p)
            ring.interval = Interval.RED
            ring.start = tick
            ring.phase = None
            self._rings.changed = True
            nxt = ring.next_phase
            ring.next_phase = None
            if (
                nxt is not None
                and self._status.state is OperatingState.NORMAL
                and self._layout.group_of[nxt] == self._rings.group
                and nxt not in self._demand.omit
                and not self._frame.blocked(nxt)
            ):
                self.start_green(ring, nxt, tick)
            else:
                emit(EventCode.PHASE_INACTIVE, p)

    def time_green(self, ring: Ring, tick: int, req: Requests, barrier_demand: bool) -> None:
        """Should the green of ``ring`` end now, and to which phase?"""
        p = ring.phase
        assert p is not None
        t = self._timing.times[p]
        demand = self._demand
        if p in demand.detectors.extending:
            ring.last_ext = tick
        if not ring.min_done and tick >= ring.min_end and ring.ped is PedInterval.DONT_WALK:
            ring.min_done = True
            self._status.emit(EventCode.PHASE_MIN_COMPLETE, p)
        # where would this ring go next?
        nxt = (
            self._next_in_group(ring, p, req)
            if demand.calls or demand.ped_calls or req.next_phase
            else None
        )
        conflicting = nxt is not None or barrier_demand
        if ring.ready is not None:
            if nxt is not None:
                ring.ready = None  # a call appeared in the group: go there instead
            elif not barrier_demand:
                ring.ready = None  # the demand went away (omitted): rest in green
            else:
                return
        if not conflicting:
            ring.max_start = None
            if not (self.rest_in_red and ring.min_done):
                return
            if (
                p in demand.hold
                or ring.last_ext == tick
                or tick - ring.last_ext < t.passage
                or t.recall is Recall.MAX
            ):
                return
            if demand.calls or demand.ped_calls:
                return  # someone is waiting somewhere: do not rest in red yet
            self.begin_yellow(ring, tick, Termination.GAP_OUT, None)
            return
        if ring.max_start is None:
            ring.max_start = tick
        if not ring.min_done:
            return
        reason: Termination | None = None
        if p in req.force_off:
            reason = Termination.FORCE_OFF
        elif not self._held(p, ring, tick):
            max_ticks = t.max2 if req.max2 else t.max1
            if tick - ring.max_start >= max_ticks:
                reason = Termination.MAX_OUT
            elif (
                t.recall is not Recall.MAX
                and ring.last_ext != tick
                and tick - ring.last_ext >= t.passage
            ):
                reason = Termination.GAP_OUT
        if reason is None:
            return
        if nxt is not None:
            self.begin_yellow(ring, tick, reason, nxt)
        else:
            ring.ready = reason  # wait for the other rings at the barrier

    def _held(self, p: int, ring: Ring, tick: int) -> bool:
        """A hold on ``p`` counts while a conflicting call has waited less than ``hold_max``
        (since ``max_start``); then it is ignored until this green ends, so no run of holds
        can starve the phases that are called (event 207 says so)."""
        if p not in self._demand.hold or p in self.capped:
            return False
        if ring.max_start is not None and tick - ring.max_start >= self.hold_max:
            self.capped.add(p)
            self._status.emit(EventCode.HOLD_LIMIT_REACHED, p)
            return False
        return True

    def _next_in_group(self, ring: Ring, current: int, req: Requests) -> int | None:
        layout = self._layout
        group = self._rings.group
        want = req.next_phase.get(ring.id)
        if (
            want is not None
            and want != current
            and self._rings.ring_of.get(want) is ring
            and layout.group_of[want] == group
            and want not in self._demand.omit
        ):
            return want
        seq_idx = layout.seq_idx
        idx = seq_idx[current]
        for q in ring.group_phases[group]:
            if seq_idx[q] > idx and self._demand.serviceable(q, req):
                return q
        return None

    def start_green(self, ring: Ring, p: int, tick: int) -> None:
        t = self._timing.times[p]
        demand = self._demand
        ring.bound_for = None
        ring.phase = p
        ring.interval = Interval.GREEN
        ring.start = tick
        ring.ready = None
        ring.next_phase = None
        ring.max_start = None
        ring.min_done = False
        ring.last_ext = tick - t.passage  # no actuation yet: gap-out at min if none comes
        ring.served_idx = self._layout.seq_idx[p]
        minimum = t.min_green
        if t.added_initial > 0 and t.max_initial > 0:
            added = math.ceil(t.added_initial * demand.var_counts[p] * TICKS_PER_S - 1e-6)
            minimum = max(minimum, min(added, t.max_initial))
        ring.min_end = tick + minimum
        demand.served(p)
        conflict = self._layout.phases_conflict
        if any(
            conflict(p, q) and demand.serviceable(q, NO_REQUESTS)
            for q in demand.calls | demand.ped_calls
        ):
            ring.max_start = tick  # a conflicting call already waits: max runs from green start
        demand.calls_out = frozenset(demand.calls)
        self._rings.changed = True
        self._rings.refresh_green()
        self._status.emit(EventCode.PHASE_BEGIN_GREEN, p)
        self._peds.on_green(ring, p, tick)

    def begin_yellow(
        self, ring: Ring, tick: int, reason: Termination | None, nxt: int | None
    ) -> None:
        p = ring.phase
        assert p is not None
        self.capped.discard(p)  # the next green may be held again
        emit = self._status.emit
        if reason is Termination.GAP_OUT:
            emit(EventCode.PHASE_GAP_OUT, p)
        elif reason is Termination.MAX_OUT:
            emit(EventCode.PHASE_MAX_OUT, p)
        elif reason is Termination.FORCE_OFF:
            emit(EventCode.PHASE_FORCE_OFF, p)
        emit(EventCode.PHASE_GREEN_TERMINATION, p)
        self._peds.end(ring, p)
        ring.interval = Interval.YELLOW
        ring.start = tick
        self._rings.refresh_green()
        ring.ready = None
        ring.next_phase = nxt
        ring.bound_for = nxt if nxt is not None else self._expected_after(ring)
        self._rings.changed = True
        emit(EventCode.PHASE_BEGIN_YELLOW, p)

    def _expected_after(self, ring: Ring) -> int | None:
        """The phase ``ring`` will time once the barrier is crossed, when that is already
        settled: the strategy asks every ring into one group beyond the barrier and this ring
        for a phase there (the barrier crossing then starts exactly that phase, called or
        not). Otherwise None: the phase is chosen only when the rings cross, from the calls
        then, and an overlap carried green on a guess would make a conflicting phase wait for
        its clearance (the property tests caught that stretching a wait past their bound).
        Only overlaps use it, to stay green through a change between two of their parents."""
        req = self.req
        group_of = self._layout.group_of
        wanted = {group_of[p] for p in req.next_phase.values() if p in group_of}
        if len(wanted) != 1:
            return None
        target = next(iter(wanted))
        if target == self._rings.group:
            return None
        want = req.next_phase.get(ring.id)
        if want in ring.group_phases[target] and want not in self._demand.omit:
            return want
        return None
