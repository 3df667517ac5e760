"""Barriers: rings that reach a barrier wait for each other and cross it together.

A ring whose phase is *ready to terminate* stays green until every ring of the group is ready
(simultaneous gap-out); then all rings clear together and cross the barrier into the next
group (cyclically) with a call, where each ring starts its first called phase, or its
dual-entry phase, or rests red. A plan change waiting for a safe point applies at the
crossing.
"""

from __future__ import annotations

from edgectl.control.engine._core import Core
from edgectl.control.engine._demand import Demand
from edgectl.control.engine._frame import ChannelFrame
from edgectl.control.engine._phases import PhaseTimer
from edgectl.control.engine._rings import Ring
from edgectl.control.types import EventCode, Interval, Requests

__all__ = ["Barrier"]


class Barrier:
    """Idle rings, the barrier demand, and the crossing into the next group."""

    __slots__ = ("_demand", "_frame", "_layout", "_phases", "_rings", "_status", "_timing")

    def __init__(
        self,
        *,
        core: Core,
        demand: Demand,
        frame: ChannelFrame,
        phases: PhaseTimer,
    ) -> None:
        self._layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self._demand = demand
        self._frame = frame
        self._phases = phases

    def demand_beyond(self, req: Requests) -> bool:
        """A call that cannot be served in this pass of the group."""
        demand = self._demand
        if not (demand.calls or demand.ped_calls):
            return False
        # (a pedestrian call on a phase that is green now, pressed after its walk, is
        # served at its next green: it needs the barrier crossed like any other call)
        reachable = self._rings.reachable
        return any(
            demand.serviceable(p, req) and not reachable(p) for p in demand.calls | demand.ped_calls
        )

    def leave_together(self, tick: int) -> None:
        """Rings ready at the barrier end their greens once no other ring is still timing."""
        rings = self._rings.rings
        ready = [r for r in rings if r.ready is not None]
        if ready and all(
            r.ready is not None
            or r.interval is Interval.RED
            or (r.interval is not Interval.GREEN and r.next_phase is None)
            for r in rings
        ):
            for ring in ready:
                self._phases.begin_yellow(ring, tick, ring.ready, None)

    def idle_rings(self, tick: int, req: Requests) -> None:
        """Idle rings start a reachable called phase, or all cross the barrier."""
        rings = self._rings.rings
        if not any(r.interval is Interval.RED for r in rings) or any(
            r.ready is not None for r in rings
        ):
            return
        all_idle = True
        for ring in rings:
            if ring.interval is not Interval.RED:
                all_idle = False
                continue
            if not self._idle_ring(ring, tick, req):
                all_idle = False
        if not all_idle:
            return
        demand = self._demand
        if not any(demand.serviceable(p, req) for p in demand.calls | demand.ped_calls):
            return
        self._cross(tick, req)

    def _idle_ring(self, ring: Ring, tick: int, req: Requests) -> bool:
        """Start a reachable called phase on an idle ``ring``; is the ring still idle?"""
        layout = self._layout
        group = self._rings.group
        seq_idx = layout.seq_idx
        serviceable = self._demand.serviceable
        blocked = self._frame.blocked
        want = req.next_phase.get(ring.id)
        cand: int | None = None
        if (
            want is not None
            and self._rings.ring_of.get(want) is ring
            and layout.group_of[want] == group
            and serviceable(want, req)
            and not blocked(want)
        ):
            cand = want
        else:
            cand = next(
                (
                    q
                    for q in ring.group_phases[group]
                    if seq_idx[q] > ring.served_idx and serviceable(q, req) and not blocked(q)
                ),
                None,
            )
        if cand is not None:
            self._phases.start_green(ring, cand, tick)
            return False
        # a called phase of this group waits only for an overlap to finish clearing:
        # crossing the barrier now would skip it, and every pass again (starvation)
        return not any(
            seq_idx[q] > ring.served_idx and serviceable(q, req) and blocked(q)
            for q in ring.group_phases[group]
        )

    def _cross(self, tick: int, req: Requests) -> None:
        layout = self._layout
        groups = layout.groups
        serviceable = self._demand.serviceable
        n = len(groups)
        target: int | None = None
        wanted = {layout.group_of[p] for p in req.next_phase.values() if p in layout.group_of}
        if len(wanted) == 1:
            g = next(iter(wanted))
            if any(serviceable(p, req) or p in req.next_phase.values() for p in groups[g]):
                target = g
        if target is None:
            ring_of = self._rings.ring_of
            for k in range(1, n + 1):
                g = (self._rings.group + k) % n
                if any(serviceable(p, req) for p in groups[g] if p in ring_of):
                    target = g
                    break
        if target is None:
            return
        self._timing.apply_pending()
        self._rings.group = target
        self._status.emit(EventCode.BARRIER_TERMINATION, target + 1)
        omit = self._demand.omit
        blocked = self._frame.blocked
        started: list[Ring] = []
        for ring in self._rings.rings:
            ring.served_idx = -1
            want = req.next_phase.get(ring.id)
            phases = ring.group_phases[target]
            cand: int | None = None
            if want in phases and want is not None and want not in omit:
                cand = want
            else:
                cand = next((q for q in phases if serviceable(q, req)), None)
            if cand is not None and not blocked(cand):
                self._phases.start_green(ring, cand, tick)
                started.append(ring)
        if not started:
            return
        phase_cfg = layout.phase_cfg
        for ring in self._rings.rings:
            if ring.interval is Interval.RED:
                de = next(
                    (
                        q
                        for q in ring.group_phases[target]
                        if phase_cfg[q].dual_entry and q not in omit
                    ),
                    None,
                )
                if de is not None and not blocked(de):
                    self._phases.start_green(ring, de, tick)
