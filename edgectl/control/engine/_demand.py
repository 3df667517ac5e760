"""Detectors, calls and the phases omitted or held: the demand the rings serve.

A vehicle call comes from a calling detector, a recall of the plan or a request; a
pedestrian call from a push button, a request or a ped recall. A push during the walk of its
own phase is served by that walk. Soft recall calls a phase only while nothing conflicting
is called.
"""

from __future__ import annotations

from edgectl.config.model import Config
from edgectl.control.detectors import DetectorBank
from edgectl.control.engine._core import Core
from edgectl.control.types import EventCode, Inputs, Interval, PedInterval, Requests

__all__ = ["Demand"]


class Demand:
    """Registered vehicle and pedestrian calls, their age, and the omitted and held phases."""

    __slots__ = (
        "_layout",
        "_rings",
        "_status",
        "_timing",
        "call_since",
        "calls",
        "calls_out",
        "detectors",
        "hold",
        "omit",
        "ped_calls",
        "ped_calls_out",
        "var_counts",
    )

    def __init__(self, *, core: Core, config: Config) -> None:
        self._layout = layout = core.layout
        self._status = core.status
        self._timing = core.timing
        self._rings = core.rings
        self.detectors = DetectorBank(config)
        self.calls: set[int] = set()
        self.call_since: dict[int, int] = {}  # phase → tick its (vehicle or ped) call began
        self.ped_calls: set[int] = set()
        self.var_counts: dict[int, int] = dict.fromkeys(layout.phase_ids, 0)
        self.omit: frozenset[int] = frozenset()
        self.hold: frozenset[int] = frozenset()
        self.calls_out: frozenset[int] = frozenset()
        self.ped_calls_out: frozenset[int] = frozenset()

    def update_detectors(self, tick: int, inputs: Inputs) -> None:
        green_since = self._rings.green_since
        raw: list[tuple[int, int]] = []
        self.detectors.update(tick, inputs.presence, inputs.failed_detectors, green_since, raw)
        if raw:
            for code, param in raw:
                self._status.emit(code, param)
            failed = self.detectors.failed
            self._status.set_alarm(
                "detector:",
                f"detector:failed:{','.join(map(str, sorted(failed)))}" if failed else None,
            )
        if self.detectors.rising:
            green = green_since
            for det_id in self.detectors.rising:
                for p in self.detectors.detector(det_id).call_phases:
                    if p not in green and p in self.var_counts:
                        self.var_counts[p] += 1

    def register(self, inputs: Inputs, req: Requests) -> None:
        """Register this tick's new vehicle and pedestrian calls (events 43 and 45)."""
        layout = self._layout
        green = self._rings.green
        calls = self.calls
        plan = self._timing.sets
        cand = self.detectors.calling | plan.recalled
        if req.calls:
            cand = cand | req.calls
        if req.next_phase:
            cand = cand | frozenset(req.next_phase.values())
        new = (cand & layout.ring_phases) - green - calls
        ped_cand = inputs.ped_buttons | req.ped_calls | (plan.ped_recalled - green)
        ped_new = (ped_cand & layout.ped_phases) - self.ped_calls if ped_cand else frozenset()
        if ped_new:  # a push during the walk of its own phase is served by that walk
            ped_new = ped_new - self._rings.walking()
        # soft recall: only while nothing conflicting is called
        if plan.soft:
            waiting = calls | new | self.ped_calls
            soft = {
                p
                for p in plan.soft - green - calls
                if not any(layout.phases_conflict(p, q) for q in waiting)
            }
            new = new | soft
        if new or ped_new:
            for p in new | ped_new:
                self.call_since.setdefault(p, self._status.tick)
        if new:
            for p in sorted(new):
                calls.add(p)
                self._status.emit(EventCode.PHASE_CALL_REGISTERED, p)
            self.calls_out = frozenset(calls)
        if ped_new:
            for p in sorted(ped_new):
                self.ped_calls.add(p)
                self._status.emit(EventCode.PED_CALL_REGISTERED, p)
            self.ped_calls_out = frozenset(self.ped_calls)

    def update_omit_hold(self, req: Requests) -> None:
        plan_omit = self._timing.sets.omit
        omit = plan_omit | req.omit if req.omit else plan_omit
        emit = self._status.emit
        if omit is not self.omit and omit != self.omit:
            for p in sorted(omit - self.omit):
                emit(EventCode.PHASE_OMIT_ON, p)
            for p in sorted(self.omit - omit):
                emit(EventCode.PHASE_OMIT_OFF, p)
            self.omit = omit
        hold = req.hold
        if hold is not self.hold and hold != self.hold:
            for p in sorted(hold - self.hold):
                emit(EventCode.PHASE_HOLD_ACTIVE, p)
            for p in sorted(self.hold - hold):
                emit(EventCode.PHASE_HOLD_RELEASED, p)
            self.hold = hold

    def serviceable(self, p: int, req: Requests) -> bool:
        """A serviceable call on ``p``: vehicle or pedestrian call, not omitted."""
        if p in self.omit:
            return False
        if p in self.calls:
            return True
        return p in self.ped_calls and p not in req.ped_omit

    def overdue(self, tick: int, req: Requests) -> bool:
        """Has a serviceable call waited longer than one cycle at max green?"""
        limit = self._timing.sets.starve_after
        return any(
            tick - since > limit and self.serviceable(p, req)
            for p, since in self.call_since.items()
        )

    def resting(self, req: Requests) -> bool:
        """No ring in a change, clearance or pedestrian interval, and no demand for a phase
        that is not green: nothing will happen until a new call arrives."""
        greens: set[int] = set()
        for ring in self._rings.rings:
            if ring.interval not in (Interval.GREEN, Interval.RED):
                return False
            if ring.ped is not PedInterval.DONT_WALK:
                return False
            if ring.interval is Interval.GREEN and ring.phase is not None:
                greens.add(ring.phase)
        return not any(
            self.serviceable(p, req) for p in self.calls | self.ped_calls if p not in greens
        )

    def served(self, p: int) -> None:
        """``p`` turned green: its vehicle call is answered."""
        self.var_counts[p] = 0
        self.calls.discard(p)
        self.call_since.pop(p, None)
