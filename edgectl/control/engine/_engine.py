"""The engine facade: composes the parts and steps them once per tick."""

from __future__ import annotations

from dataclasses import replace

from edgectl.config.junction import ConflictMatrix
from edgectl.config.model import Config, Mode, Plan
from edgectl.control.detectors import TICKS_PER_S, DetectorBank, to_ticks
from edgectl.control.engine._barrier import Barrier
from edgectl.control.engine._core import Core
from edgectl.control.engine._demand import Demand
from edgectl.control.engine._frame import ChannelFrame
from edgectl.control.engine._layout import Layout
from edgectl.control.engine._pedestrian import Pedestrians
from edgectl.control.engine._phases import PhaseTimer
from edgectl.control.engine._preempt import Preemption
from edgectl.control.engine._rings import RingSet
from edgectl.control.engine._states import OperatingStates
from edgectl.control.engine._status import Status
from edgectl.control.engine._timing import PhaseTimes, PlanTiming
from edgectl.control.types import (
    EnterFlash,
    Event,
    EventCode,
    ExitFlash,
    FlashReason,
    Inputs,
    Interval,
    OperatingState,
    Outputs,
    Preempt,
    Requests,
    RingStatus,
    SetMode,
    SetPlan,
)

__all__ = ["Engine"]


class Engine:
    """The timing engine of one intersection. See the package docstring."""

    def __init__(
        self, config: Config, *, plan_id: int | None = None, matrix: ConflictMatrix | None = None
    ) -> None:
        self.config = config
        ctl = config.control
        self._layout = layout = Layout(config, matrix)
        self._status = status = Status()
        plan = config.plan(ctl.plan if plan_id is None else plan_id)
        self._timing = timing = PlanTiming(layout, status, plan)
        self._rings = rings = RingSet(layout)
        core = Core(layout, status, timing, rings)
        self._demand = demand = Demand(core=core, config=config)
        self._peds = peds = Pedestrians(core=core, demand=demand)
        self._frame = frame = ChannelFrame(core=core, config=config)
        self._phases = phases = PhaseTimer(
            core=core,
            demand=demand,
            peds=peds,
            frame=frame,
            rest_in_red=ctl.rest_in_red,
            hold_max=to_ticks(ctl.hold_max_s),
        )
        self._barrier = Barrier(core=core, demand=demand, frame=frame, phases=phases)
        self._preempt = preempt = Preemption(
            core=core,
            peds=peds,
            frame=frame,
            phases=phases,
            min_green=max(to_ticks(ctl.preempt_min_green), 40),
            max_presence=to_ticks(ctl.preempt_max_presence_s),
        )
        self._states = OperatingStates(
            core=core, control=ctl, frame=frame, phases=phases, preempt=preempt
        )
        self._started = False
        self.last: Outputs | None = None

    # --- public read side --------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self._timing.plan

    @property
    def mode(self) -> Mode:
        return self._states.mode

    @property
    def state(self) -> OperatingState:
        return self._status.state

    @property
    def tick(self) -> int:
        return self._status.tick

    @property
    def times(self) -> dict[int, PhaseTimes]:
        return self._timing.times

    @property
    def starve_after(self) -> int:
        """Ticks after which a waiting call is overdue (one cycle at max green)."""
        return self._timing.sets.starve_after

    @property
    def detectors(self) -> DetectorBank:
        return self._demand.detectors

    def phase_group(self, phase: int) -> int:
        return self._layout.group_of[phase]

    def phase_ring(self, phase: int) -> int:
        return self._rings.ring_of[phase].id

    @property
    def groups(self) -> tuple[frozenset[int], ...]:
        return self._layout.groups

    def phases_conflict(self, a: int, b: int) -> bool:
        """Conflict from rings/barriers (+ overrides): same ring or different group."""
        return self._layout.phases_conflict(a, b)

    def green_phases(self) -> frozenset[int]:
        return self._rings.green

    # --- the tick ----------------------------------------------------------------------------

    def step(self, now: float, inputs: Inputs, requests: Requests | None = None) -> Outputs:
        """Advance to ``now`` (seconds) with this tick's inputs and merged requests."""
        status = self._status
        tick = round(now * TICKS_PER_S)
        if not self._started:
            self._started = True
            status.tick = tick
            status.state_start = tick
            self._demand.detectors = DetectorBank(self.config, tick)
            status.t = tick / TICKS_PER_S
            status.emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
            for ring in self._rings.rings:
                ring.start = tick
        elif tick < status.tick:
            tick = status.tick  # time never runs backwards inside the engine
        status.tick = tick
        status.t = tick / TICKS_PER_S
        req = inputs.requests if requests is None else requests
        for directive in inputs.directives:
            self._directive(directive, tick)
        self._preempt.expire(tick)

        states = self._states
        state = status.state
        if state is OperatingState.STARTUP_FLASH:
            self._demand.update_detectors(tick, inputs)
            if tick - status.state_start >= states.startup_flash:
                states.enter_all_red(tick)
        elif state is OperatingState.FLASH:
            self._demand.update_detectors(tick, inputs)
            if states.may_leave_flash(tick):
                states.enter_all_red(tick)
        elif state is OperatingState.ALL_RED:
            self._demand.update_detectors(tick, inputs)
            self._demand.register(inputs, req)
            if tick - status.state_start >= states.startup_all_red:
                states.start_normal(tick)
        else:
            self._run(tick, inputs, req)
        return self._output(tick)

    def _directive(
        self, d: SetMode | SetPlan | EnterFlash | ExitFlash | Preempt, tick: int
    ) -> None:
        states = self._states
        if isinstance(d, EnterFlash):
            if d.reason is FlashReason.COMMAND:
                states.command_flash(d, tick)
            else:
                states.fault_flash(d.reason, d.detail)
        elif isinstance(d, ExitFlash):
            states.exit_flash()
        elif isinstance(d, SetMode):
            states.set_mode(d, tick)
        elif isinstance(d, SetPlan):
            if self._status.state in (OperatingState.NORMAL, OperatingState.PREEMPT):
                self._timing.pending = d.plan  # at the next safe point
            else:
                self._timing.apply(d.plan)
        else:
            self._preempt.directive(d)

    def _run(self, tick: int, inputs: Inputs, req: Requests) -> None:
        """One NORMAL or PREEMPT tick."""
        demand = self._demand
        rings = self._rings.rings
        phases = self._phases
        phases.req = req
        demand.update_detectors(tick, inputs)
        demand.register(inputs, req)
        demand.update_omit_hold(req)
        if req.next_phase and demand.overdue(tick, req):
            req = replace(req, next_phase={})  # no skipping past a starving call
        preempt = self._status.state is OperatingState.PREEMPT
        # 1. clearance intervals and pedestrian intervals
        for ring in rings:
            phases.time_ring(ring, tick)
        if self._timing.pending is not None and not preempt and demand.resting(req):
            # a junction resting with no demand may never cross a barrier: rest is a safe point
            # too (no change or clearance interval runs, so no running interval is re-timed)
            self._timing.apply_pending()
        if preempt:
            flash = self._preempt.run(tick)
            if flash is not None:
                self._states.enter_flash(flash, tick)
            return
        # 2. barrier demand: a call that cannot be served in this pass of the group
        barrier_demand = self._barrier.demand_beyond(req)
        # 3. green rings: terminate?
        for ring in rings:
            if ring.interval is Interval.GREEN:
                phases.time_green(ring, tick, req, barrier_demand)
        # 4. rings ready at the barrier leave together
        self._barrier.leave_together(tick)
        # 5. idle rings start a reachable called phase, or all cross the barrier
        self._barrier.idle_rings(tick, req)

    # --- outputs -----------------------------------------------------------------------------

    def set_alarm(self, prefix: str, text: str | None) -> None:
        """Replace the alarms starting with ``prefix`` by ``text`` (None clears them)."""
        self._status.set_alarm(prefix, text)

    def fault_flash(self, reason: FlashReason, detail: str = "") -> None:
        """Immediate flash (fault, output lost, MMU, monitor): no clearance is possible."""
        self._states.fault_flash(reason, detail)

    def refresh(self, events: tuple[Event, ...] = ()) -> Outputs:
        """Rebuild this tick's output (after :meth:`fault_flash`), keeping ``events``."""
        self._status.events[:0] = list(events)
        self._rings.changed = True
        return self._output(self.tick)

    def _output(self, tick: int) -> Outputs:
        status = self._status
        states = self._states
        frame = self._frame.current(tick)
        in_flash = states.in_flash()
        rings = tuple(
            RingStatus(
                ring=r.id,
                phase=r.phase,
                interval=r.interval,
                ped=r.ped,
                elapsed=(tick - (r.start if not in_flash else status.state_start)) / TICKS_PER_S,
                next_phase=r.next_phase,
            )
            for r in self._rings.rings
        )
        out = Outputs(
            t=status.t,
            channels=frame,
            rings=rings,
            state=status.state,
            mode=Mode.FLASH if status.state is OperatingState.FLASH else states.mode,
            plan=self._timing.plan.id,
            flash_reason=states.flash_reason if in_flash else None,
            alarms=status.alarms,
            calls=self._demand.calls_out,
            ped_calls=self._demand.ped_calls_out,
            detectors=self._demand.detectors.statuses,
            events=status.take_events(),
        )
        self.last = out
        return out
