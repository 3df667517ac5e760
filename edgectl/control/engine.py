"""The NEMA dual-ring timing engine: a pure, deterministic, tick-driven state machine.

``Engine(config).step(now, inputs, requests) -> Outputs``. Time is counted in integer ticks of
0.1 s; every timer is a timestamp (the tick an interval began), so a repeated tick changes
nothing and a skipped tick only makes intervals longer — a safety minimum is never skipped.
Configured seconds are converted with ``ceil`` (never rounding a minimum down) and yellow is
never below 3.0 s.

Operating states: start-up flash → all-red → NORMAL (each ring's start-up phase green).
NORMAL is the dual-ring, barrier-synchronised actuated controller of NEMA TS2 / NTCIP 1202:

- a ring's next phase is the next called, non-omitted phase after the current one in its
  sequence within the current barrier group; when there is none but a call waits beyond the
  barrier, the phase becomes *ready to terminate* and stays green until every ring of the group
  is ready (simultaneous gap-out); then all rings clear together and cross the barrier into the
  next group (cyclically) with a call, where each ring starts its first called phase, or its
  dual-entry phase, or rests red;
- green: minimum (min green, variable initial, walk + ped clear) → gap-out (passage timer) /
  max-out (max 1 or 2, started by a conflicting call) / force-off; only when a conflicting
  call is waiting (or rest in red is configured); hold suspends gap- and max-out;
- yellow and red clearance run exactly as configured (never less; a red clearance of 0 s
  still shows one red frame, so no Y→G), no G→R and no Y→G;
- pedestrians: a ped call at green start times walk then ped clear (min green stretched to
  cover them); a push during its own walk is served by that walk, a push after it is served
  at the phase's next green (it counts as demand beyond the barrier).

PREEMPT clears every non-dwell phase (green truncated to ``control.preempt_min_green`` at
most, walk truncated to its ped clearance which runs in full, full yellow and red clearance)
and then dwells in the preempt phases. Commanded flash clears the same way (without
truncating min green) and then flashes (while it clears, ``Outputs.state`` is PREEMPT with no
preempt input active and ``alarms``/events unchanged; a non-flash ``SetMode`` or ``ExitFlash``
cancels it); fault flash is immediate. ``ExitFlash`` from a fault flash is latched and taken
once ``control.min_recovery_flash`` has passed.

Kernel guards beyond the timing rules: a ``next_phase`` request is ignored while any call has
waited longer than one cycle at max green (no strategy can starve a phase); an overlap channel
turns green only when none of the phases it conflicts with is timing, and those phases do not
start while it is still clearing; plan changes apply at the next barrier crossing (or at once
in flash / all-red).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import ChannelSource, Config, FlashMode, Mode, Plan, Recall
from edgectl.control.detectors import TICKS_PER_S, DetectorBank, to_ticks
from edgectl.control.types import (
    NO_REQUESTS,
    DetectorStatus,
    EnterFlash,
    Event,
    EventCode,
    ExitFlash,
    FlashReason,
    Inputs,
    Interval,
    OperatingState,
    Outputs,
    PedInterval,
    Preempt,
    Requests,
    RingStatus,
    SetMode,
    SetPlan,
    Termination,
)

__all__ = ["Engine", "PhaseTimes", "mode_code"]

_MIN_YELLOW = 30  # ticks: SPEC §4, never below 3.0 s

_OVERLAP_STATES = (ChannelState.R, ChannelState.R, ChannelState.Y, ChannelState.G)
_CARRY_IDLE_TICKS = 10  # an overlap waits this long for its next parent after a clearance

_MODE_CODES = {m: i for i, m in enumerate(Mode, start=1)}


def mode_code(mode: Mode) -> int:
    """The parameter of event 200 (mode change): 1-based position in :class:`Mode`."""
    return _MODE_CODES[mode]


class PhaseTimes:
    """One phase's plan timing in ticks (minimums rounded up)."""

    __slots__ = (
        "added_initial",
        "max1",
        "max2",
        "max_initial",
        "min_green",
        "omit",
        "passage",
        "ped_clear",
        "recall",
        "red_clear",
        "walk",
        "yellow",
    )

    def __init__(self, plan: Plan, phase: int) -> None:
        t = plan.timing.get(phase)
        if t is None:  # not timed by this plan: never served (validation rejects this)
            self.min_green = to_ticks(5.0)
            self.passage = 0
            self.max1 = self.max2 = self.min_green
            self.yellow = 40
            self.red_clear = 20
            self.walk = self.ped_clear = 0
            self.added_initial = 0.0
            self.max_initial = 0
            self.recall = Recall.NONE
            self.omit = True
            return
        self.min_green = to_ticks(t.min_green)
        self.passage = to_ticks(t.passage)
        self.max1 = max(to_ticks(t.max1), self.min_green)
        self.max2 = max(to_ticks(t.max1 if t.max2 is None else t.max2), self.min_green)
        self.yellow = max(to_ticks(t.yellow), _MIN_YELLOW)
        self.red_clear = max(to_ticks(t.red_clear), 1)  # at least one red frame: no Y→G
        self.walk = to_ticks(t.walk)
        self.ped_clear = to_ticks(t.ped_clear)
        self.added_initial = t.added_initial
        self.max_initial = to_ticks(t.max_initial)
        self.recall = t.recall
        self.omit = t.omit


class _PlanSets:
    """Per-plan phase sets used every tick."""

    __slots__ = ("omit", "ped_recalled", "recalled", "soft", "starve_after")

    def __init__(
        self,
        times: dict[int, PhaseTimes],
        ped_phases: frozenset[int],
        rings: Iterable[tuple[int, ...]] = (),
    ) -> None:
        # a call older than one whole cycle at max green is overdue: requests that would
        # skip past it (next phase) are no longer honoured until it is served
        self.starve_after = max(
            (
                sum(
                    max(
                        times[p].max1,
                        times[p].max2,
                        times[p].min_green + times[p].walk + times[p].ped_clear,
                    )
                    + times[p].yellow
                    + times[p].red_clear
                    for p in seq
                    if p in times
                )
                for seq in rings
            ),
            default=0,
        )
        self.recalled = frozenset(
            p for p, t in times.items() if t.recall in (Recall.MIN, Recall.MAX)
        )
        self.ped_recalled = frozenset(
            p for p, t in times.items() if t.recall is Recall.PED and p in ped_phases
        )
        self.soft = frozenset(p for p, t in times.items() if t.recall is Recall.SOFT)
        self.omit = frozenset(p for p, t in times.items() if t.omit)


class _Ring:
    __slots__ = (
        "bound_for",
        "group_phases",
        "id",
        "interval",
        "last_ext",
        "max_start",
        "min_done",
        "min_end",
        "next_phase",
        "ped",
        "ped_end",
        "ped_start",
        "phase",
        "ready",
        "seq",
        "served_idx",
        "start",
        "walk_end",
    )

    def __init__(self, ring_id: int, seq: tuple[int, ...]) -> None:
        self.id = ring_id
        self.seq = seq
        self.group_phases: tuple[tuple[int, ...], ...] = ()  # per group, in sequence order
        self.phase: int | None = None
        self.interval = Interval.RED
        self.start = 0  # tick the current interval began
        self.min_end = 0  # green: first tick the phase may terminate
        self.min_done = False
        self.last_ext = 0  # green: last tick an extension was active
        self.max_start: int | None = None
        self.ped = PedInterval.DONT_WALK
        self.ped_start = 0
        self.walk_end = 0
        self.ped_end = 0
        self.ready: Termination | None = None  # green, ready to terminate at the barrier
        self.next_phase: int | None = None
        self.bound_for: int | None = None  # clearing: the phase expected next (overlaps)
        self.served_idx = -1  # index in seq of the last phase timed in this group pass


class Engine:
    """The timing engine of one intersection. See the module docstring."""

    def __init__(self, config: Config, *, plan_id: int | None = None) -> None:
        self.config = config
        ctl = config.control
        self._phase_ids = tuple(sorted(p.id for p in config.phases))
        self._phase_cfg = {p.id: p for p in config.phases}
        self._groups: tuple[frozenset[int], ...] = tuple(
            frozenset(b.phases) for b in config.barriers
        )
        self._group_of: dict[int, int] = {}
        for gi, g in enumerate(self._groups):
            for p in g:
                self._group_of.setdefault(p, gi)
        self._rings = [_Ring(r.id, tuple(r.sequence)) for r in config.rings]
        self._ring_of: dict[int, _Ring] = {}
        for ring in self._rings:
            for p in ring.seq:
                self._ring_of.setdefault(p, ring)
                self._group_of.setdefault(p, 0)
            ring.group_phases = tuple(
                tuple(p for p in ring.seq if self._group_of[p] == gi)
                for gi in range(len(self._groups))
            )
        self._ring_phases = frozenset(self._ring_of)
        self._seq_idx = {p: ring.seq.index(p) for p, ring in self._ring_of.items()}
        self._overrides = frozenset(
            frozenset(pair) for pair in config.conflict_overrides if pair[0] != pair[1]
        )
        self._ring_seqs = tuple(r.seq for r in self._rings)
        self._ped_phases = frozenset(
            p.id for p in config.phases if p.pedestrian and p.id in self._ring_of
        )
        self._plan = config.plan(ctl.plan if plan_id is None else plan_id)
        self._times = self._compile(self._plan)
        self._plan_sets = _PlanSets(self._times, self._ped_phases, self._ring_seqs)
        self._pending_plan: Plan | None = None
        self._mode = ctl.mode
        self._startup_flash = to_ticks(ctl.startup_flash)
        self._startup_all_red = max(to_ticks(ctl.startup_all_red), 20)
        self._min_recovery = to_ticks(ctl.min_recovery_flash)
        self._preempt_min = max(to_ticks(ctl.preempt_min_green), 40)
        self._rest_in_red = ctl.rest_in_red
        self._req: Requests = NO_REQUESTS  # this tick's requests (overlap carry-over guess)
        self._yellow_main = ctl.flash_mode is FlashMode.YELLOW_MAIN
        self._channels = tuple(sorted(config.channels, key=lambda c: c.id))
        self._overlaps: dict[int, list[int]] = {  # overlap channel → [state, since, Y, RC]
            c.id: [0, 0, 0, 0] for c in self._channels if c.source is ChannelSource.OVERLAP
        }
        self._overlap_conflicts: dict[int, frozenset[int]] = {
            c.id: frozenset(
                q
                for q in self._ring_phases
                if q not in c.overlap_parents
                and any(self.phases_conflict(q, parent) for parent in c.overlap_parents)
            )
            for c in self._channels
            if c.source is ChannelSource.OVERLAP
        }
        # flashing yellow arrows showing (FY, or the steady yellow that ends them)
        self._arrows: dict[int, bool] = {
            c.id: False
            for c in self._channels
            if c.permissive is not None and c.source is ChannelSource.VEHICLE
        }
        self._flash_frame = tuple(
            (c.id, self._flash_state(c.source, c.phase)) for c in self._channels
        )
        self._all_red_frame = tuple(
            (c.id, ChannelState.DW if c.source is ChannelSource.PEDESTRIAN else ChannelState.R)
            for c in self._channels
        )
        self.detectors = DetectorBank(config)
        self._green: frozenset[int] = frozenset()
        self._green_since: dict[int, int] = {}  # green phase → tick its green began

        self._tick: int | None = None
        self._state = OperatingState.STARTUP_FLASH
        self._state_start = 0
        self._flash_reason: FlashReason | None = FlashReason.STARTUP
        self._flash_detail = ""
        self._exit_pending = False
        self._clearing_to_flash: EnterFlash | None = None
        self._alarms: frozenset[str] = frozenset()
        self._group = 0
        self._calls: set[int] = set()
        self._call_since: dict[int, int] = {}  # phase → tick its (vehicle or ped) call began
        self._ped_calls: set[int] = set()
        self._var_counts: dict[int, int] = dict.fromkeys(self._phase_ids, 0)
        self._preempts: dict[int, tuple[int, ...]] = {}
        self._dwell: tuple[int, ...] = ()
        self._dwell_group = 0
        self._dwell_reported = False
        self._preempt_entry = -1
        self._omit: frozenset[int] = frozenset()
        self._hold: frozenset[int] = frozenset()
        self._frame: tuple[tuple[int, ChannelState], ...] = self._flash_frame
        self._frame_dirty = True
        self._calls_out: frozenset[int] = frozenset()
        self._ped_calls_out: frozenset[int] = frozenset()
        self._events: list[Event] = []
        self._t = 0.0
        self.last: Outputs | None = None

    # --- public read side --------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def state(self) -> OperatingState:
        return self._state

    @property
    def tick(self) -> int:
        return self._tick or 0

    @property
    def times(self) -> dict[int, PhaseTimes]:
        return self._times

    def phase_group(self, phase: int) -> int:
        return self._group_of[phase]

    def phase_ring(self, phase: int) -> int:
        return self._ring_of[phase].id

    @property
    def groups(self) -> tuple[frozenset[int], ...]:
        return self._groups

    def phases_conflict(self, a: int, b: int) -> bool:
        """Conflict from rings/barriers (+ overrides): same ring or different group."""
        if a == b:
            return False
        if frozenset((a, b)) in self._overrides:
            return True
        ra, rb = self._ring_of.get(a), self._ring_of.get(b)
        if ra is None or rb is None:
            return True
        return ra is rb or self._group_of[a] != self._group_of[b]

    def green_phases(self) -> frozenset[int]:
        return self._green

    def _refresh_green(self) -> None:
        self._green_since = {
            r.phase: r.start
            for r in self._rings
            if r.phase is not None and r.interval is Interval.GREEN
        }
        self._green = frozenset(self._green_since)

    # --- helpers -----------------------------------------------------------------------------

    def _compile(self, plan: Plan) -> dict[int, PhaseTimes]:
        return {p: PhaseTimes(plan, p) for p in self._phase_ids}

    def _flash_state(self, source: ChannelSource, phase: int) -> ChannelState:
        if source is ChannelSource.PEDESTRIAN:
            return ChannelState.OFF
        if source is ChannelSource.VEHICLE and self._yellow_main:
            cfg = self._phase_cfg.get(phase)
            if cfg is not None and cfg.main_street:
                return ChannelState.FY
        return ChannelState.FR

    def _emit(self, code: int, param: int) -> None:
        self._events.append(Event(self._t, int(code), param))

    def _set_alarm(self, prefix: str, text: str | None) -> None:
        alarms = {a for a in self._alarms if not a.startswith(prefix)}
        if text is not None:
            alarms.add(text)
        self._alarms = frozenset(alarms)

    # --- the tick ----------------------------------------------------------------------------

    def step(self, now: float, inputs: Inputs, requests: Requests | None = None) -> Outputs:
        """Advance to ``now`` (seconds) with this tick's inputs and merged requests."""
        tick = round(now * TICKS_PER_S)
        if self._tick is None:
            self._tick = tick
            self._state_start = tick
            self.detectors = DetectorBank(self.config, tick)
            self._t = tick / TICKS_PER_S
            self._emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
            for ring in self._rings:
                ring.start = tick
        elif tick < self._tick:
            tick = self._tick  # time never runs backwards inside the engine
        self._tick = tick
        self._t = tick / TICKS_PER_S
        req = inputs.requests if requests is None else requests
        for directive in inputs.directives:
            self._directive(directive, tick)

        state = self._state
        if state is OperatingState.STARTUP_FLASH:
            self._update_detectors(tick, inputs)
            if tick - self._state_start >= self._startup_flash:
                self._enter_all_red(tick)
        elif state is OperatingState.FLASH:
            self._update_detectors(tick, inputs)
            if self._exit_pending and (
                self._flash_reason is FlashReason.COMMAND
                or tick - self._state_start >= self._min_recovery
            ):
                self._enter_all_red(tick)
        elif state is OperatingState.ALL_RED:
            self._update_detectors(tick, inputs)
            self._register_calls(inputs, req)
            if tick - self._state_start >= self._startup_all_red:
                self._start_normal(tick)
        else:
            self._run(tick, inputs, req)
        return self._output(tick)

    # --- directives --------------------------------------------------------------------------

    def _directive(
        self, d: SetMode | SetPlan | EnterFlash | ExitFlash | Preempt, tick: int
    ) -> None:
        if isinstance(d, EnterFlash):
            if d.reason is FlashReason.COMMAND:
                self._command_flash(d, tick)
            else:
                self.fault_flash(d.reason, d.detail)
        elif isinstance(d, ExitFlash):
            self._exit_flash()
        elif isinstance(d, SetMode):
            if d.mode is Mode.FLASH:
                self._command_flash(EnterFlash(FlashReason.COMMAND, "set_mode"), tick)
                return
            changed = d.mode is not self._mode
            self._mode = d.mode
            if self._flash_reason is FlashReason.COMMAND or self._clearing_to_flash:
                self._exit_flash()
            if changed:
                self._emit(EventCode.MODE_CHANGE, mode_code(d.mode))
        elif isinstance(d, SetPlan):
            if self._state in (OperatingState.NORMAL, OperatingState.PREEMPT):
                self._pending_plan = d.plan
            else:
                self._apply_plan(d.plan)
        else:
            self._preempt(d)

    def _apply_plan(self, plan: Plan) -> None:
        self._pending_plan = None
        if plan != self._plan:
            self._plan = plan
            self._times = self._compile(plan)
            self._plan_sets = _PlanSets(self._times, self._ped_phases, self._ring_seqs)
            self._emit(EventCode.COORD_PATTERN_CHANGE, plan.id)

    def _preempt(self, d: Preempt) -> None:
        if d.active and d.input not in self._preempts:
            self._preempts[d.input] = tuple(p for p in d.phases if p in self._ring_phases)
            self._emit(EventCode.PREEMPT_CALL_ON, d.input)
        elif not d.active and d.input in self._preempts:
            del self._preempts[d.input]
            self._emit(EventCode.PREEMPT_CALL_OFF, d.input)
        if self._state in (OperatingState.NORMAL, OperatingState.PREEMPT):
            self._select_preempt()

    def _select_preempt(self) -> None:
        """(Re)compute the dwell set from the highest-priority (lowest) active preempt input."""
        if not self._preempts:
            if self._state is OperatingState.PREEMPT and self._clearing_to_flash is None:
                self._state = OperatingState.NORMAL
                self._emit(EventCode.PREEMPT_EXIT, 0)
                for ring in self._rings:
                    if ring.interval is Interval.GREEN:
                        ring.max_start = None
                        ring.ready = None
            self._dwell = ()
            return
        top = min(self._preempts)
        wanted = self._preempts[top]
        green = self.green_phases()
        target = next((p for p in wanted if p in green), wanted[0] if wanted else None)
        group = self._group if target is None else self._group_of[target]
        dwell: list[int] = []
        used: set[int] = set()
        for p in wanted:
            ring = self._ring_of[p]
            if self._group_of[p] == group and ring.id not in used and p not in dwell:
                dwell.append(p)
                used.add(ring.id)
        if self._state is not OperatingState.PREEMPT or tuple(dwell) != self._dwell:
            self._emit(EventCode.PREEMPT_ENTRY_STARTED, top)
            self._dwell_reported = False
            self._preempt_entry = self.tick  # greens show one PREEMPT tick before ending
        self._dwell = tuple(dwell)
        self._dwell_group = group
        self._state = OperatingState.PREEMPT
        for ring in self._rings:
            if ring.interval is Interval.GREEN and ring.phase not in self._dwell:
                self._truncate_walk(ring)

    def _truncate_walk(self, ring: _Ring) -> None:
        if ring.ped is PedInterval.WALK and ring.phase is not None:
            ring.ped = PedInterval.PED_CLEAR
            ring.ped_start = self.tick
            ring.walk_end = self.tick
            ring.ped_end = self.tick + self._times[ring.phase].ped_clear
            self._frame_dirty = True
            self._emit(EventCode.PED_BEGIN_CLEAR, ring.phase)

    def fault_flash(self, reason: FlashReason, detail: str = "") -> None:
        """Immediate flash (fault, output lost, MMU, monitor): no clearance is possible."""
        if self._state is OperatingState.FLASH and self._flash_reason is reason:
            return
        was_flash = self._state in (OperatingState.FLASH, OperatingState.STARTUP_FLASH)
        self._state = OperatingState.FLASH
        self._state_start = self.tick
        self._flash_reason = reason
        self._flash_detail = detail
        self._exit_pending = False
        self._clearing_to_flash = None
        self._reset_rings()
        self._set_alarm("flash:", f"flash:{reason.value}" + (f":{detail}" if detail else ""))
        if not was_flash:
            self._emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
            self._emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))

    def _command_flash(self, d: EnterFlash, tick: int) -> None:
        if self._state is OperatingState.FLASH:
            self._exit_pending = False
            return
        if self._state is OperatingState.STARTUP_FLASH:  # already flashing: stay
            self._state = OperatingState.FLASH
            self._flash_reason = FlashReason.COMMAND
            self._exit_pending = False
            self._emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))
            return
        if self._state is OperatingState.ALL_RED:
            self._enter_flash(d, tick)
            return
        self._clearing_to_flash = d
        self._state = OperatingState.PREEMPT
        self._dwell = ()
        for ring in self._rings:
            if ring.interval is Interval.GREEN:
                self._truncate_walk(ring)

    def _enter_flash(self, d: EnterFlash, tick: int) -> None:
        self._state = OperatingState.FLASH
        self._state_start = tick
        self._flash_reason = d.reason
        self._flash_detail = d.detail
        self._clearing_to_flash = None
        self._exit_pending = False
        self._reset_rings()
        self._set_alarm("flash:", f"flash:{d.reason.value}")
        self._emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 1)
        self._emit(EventCode.MODE_CHANGE, mode_code(Mode.FLASH))

    def _exit_flash(self) -> None:
        if self._clearing_to_flash is not None:
            self._clearing_to_flash = None  # back to service from where the clearance got
            if self._preempts:
                self._select_preempt()
            else:
                self._state = OperatingState.NORMAL
        elif self._state is OperatingState.FLASH:
            self._exit_pending = True

    def _reset_rings(self) -> None:
        for ring in self._rings:
            ring.phase = None
            ring.interval = Interval.RED
            ring.ped = PedInterval.DONT_WALK
            ring.start = self.tick
            ring.ready = None
            ring.next_phase = None
            ring.bound_for = None
            ring.served_idx = -1
        for ov in self._overlaps.values():
            ov[0] = 0
        self._arrows = dict.fromkeys(self._arrows, False)
        self._refresh_green()
        self._frame_dirty = True

    def _enter_all_red(self, tick: int) -> None:
        self._state = OperatingState.ALL_RED
        self._state_start = tick
        self._exit_pending = False
        self._flash_reason = None
        self._set_alarm("flash:", None)
        self._emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 0)
        self._emit(EventCode.MODE_CHANGE, mode_code(self._mode))
        if self._pending_plan is not None:
            self._apply_plan(self._pending_plan)
        self._reset_rings()

    def _start_normal(self, tick: int) -> None:
        self._state = OperatingState.NORMAL
        starts = [p for p in self._phase_ids if self._phase_cfg[p].startup and p in self._ring_of]
        group = self._group_of[starts[0]] if starts else 0
        self._group = group
        for ring in self._rings:
            ring.start = tick
            ring.served_idx = -1
        for ring in self._rings:
            p = next((q for q in ring.group_phases[group] if q in starts), None)
            if p is not None:
                self._start_green(ring, p, tick)
        if self._preempts:
            self._select_preempt()

    # --- detectors and calls -----------------------------------------------------------------

    def _update_detectors(self, tick: int, inputs: Inputs) -> None:
        green_since = self._green_since
        raw: list[tuple[int, int]] = []
        self.detectors.update(tick, inputs.presence, inputs.failed_detectors, green_since, raw)
        if raw:
            for code, param in raw:
                self._emit(code, param)
            failed = self.detectors.failed
            self._set_alarm(
                "detector:",
                f"detector:failed:{','.join(map(str, sorted(failed)))}" if failed else None,
            )
        if self.detectors.rising:
            green = green_since
            for det_id in self.detectors.rising:
                for p in self.detectors.detector(det_id).call_phases:
                    if p not in green and p in self._var_counts:
                        self._var_counts[p] += 1

    def _register_calls(self, inputs: Inputs, req: Requests) -> None:
        green = self.green_phases()
        calls = self._calls
        plan = self._plan_sets
        cand = self.detectors.calling | plan.recalled
        if req.calls:
            cand = cand | req.calls
        if req.next_phase:
            cand = cand | frozenset(req.next_phase.values())
        new = (cand & self._ring_phases) - green - calls
        ped_cand = inputs.ped_buttons | req.ped_calls | (plan.ped_recalled - green)
        ped_new = (ped_cand & self._ped_phases) - self._ped_calls if ped_cand else frozenset()
        if ped_new:  # a push during the walk of its own phase is served by that walk
            ped_new = ped_new - self._walking()
        # soft recall: only while nothing conflicting is called
        if plan.soft:
            waiting = calls | new | self._ped_calls
            soft = {
                p
                for p in plan.soft - green - calls
                if not any(self.phases_conflict(p, q) for q in waiting)
            }
            new = new | soft
        if new or ped_new:
            for p in new | ped_new:
                self._call_since.setdefault(p, self.tick)
        if new:
            for p in sorted(new):
                calls.add(p)
                self._emit(EventCode.PHASE_CALL_REGISTERED, p)
            self._calls_out = frozenset(calls)
        if ped_new:
            for p in sorted(ped_new):
                self._ped_calls.add(p)
                self._emit(EventCode.PED_CALL_REGISTERED, p)
            self._ped_calls_out = frozenset(self._ped_calls)

    def _update_omit_hold(self, req: Requests) -> None:
        omit = self._plan_sets.omit | req.omit if req.omit else self._plan_sets.omit
        if omit is not self._omit and omit != self._omit:
            for p in sorted(omit - self._omit):
                self._emit(EventCode.PHASE_OMIT_ON, p)
            for p in sorted(self._omit - omit):
                self._emit(EventCode.PHASE_OMIT_OFF, p)
            self._omit = omit
        hold = req.hold
        if hold is not self._hold and hold != self._hold:
            for p in sorted(hold - self._hold):
                self._emit(EventCode.PHASE_HOLD_ACTIVE, p)
            for p in sorted(self._hold - hold):
                self._emit(EventCode.PHASE_HOLD_RELEASED, p)
            self._hold = hold

    def _walking(self) -> frozenset[int]:
        return frozenset(
            r.phase for r in self._rings if r.phase is not None and r.ped is PedInterval.WALK
        )

    def _demand(self, p: int, req: Requests) -> bool:
        """A serviceable call on ``p``: vehicle or pedestrian call, not omitted."""
        if p in self._omit:
            return False
        if p in self._calls:
            return True
        return p in self._ped_calls and p not in req.ped_omit

    def _overdue(self, tick: int, req: Requests) -> bool:
        limit = self._plan_sets.starve_after
        return any(
            tick - since > limit and self._demand(p, req) for p, since in self._call_since.items()
        )

    def _resting(self, req: Requests) -> bool:
        """No ring in a change, clearance or pedestrian interval, and no demand for a phase
        that is not green: nothing will happen until a new call arrives."""
        greens: set[int] = set()
        for ring in self._rings:
            if ring.interval not in (Interval.GREEN, Interval.RED):
                return False
            if ring.ped is not PedInterval.DONT_WALK:
                return False
            if ring.interval is Interval.GREEN and ring.phase is not None:
                greens.add(ring.phase)
        return not any(
            self._demand(p, req) for p in self._calls | self._ped_calls if p not in greens
        )

    def _reachable(self, p: int) -> bool:
        """Can ``p`` still be served in this pass of the current group (no barrier)?"""
        ring = self._ring_of[p]
        return self._group_of[p] == self._group and self._seq_idx[p] > ring.served_idx

    # --- NORMAL / PREEMPT ----------------------------------------------------------------------

    def _run(self, tick: int, inputs: Inputs, req: Requests) -> None:
        self._req = req
        self._update_detectors(tick, inputs)
        self._register_calls(inputs, req)
        self._update_omit_hold(req)
        if req.next_phase and self._overdue(tick, req):
            req = replace(req, next_phase={})  # no skipping past a starving call
        preempt = self._state is OperatingState.PREEMPT
        # 1. clearance intervals and pedestrian intervals
        for ring in self._rings:
            self._time_ring(ring, tick)
        if self._pending_plan is not None and not preempt and self._resting(req):
            # a junction resting with no demand may never cross a barrier: rest is a safe point
            # too (no change or clearance interval runs, so no running interval is re-timed)
            self._apply_plan(self._pending_plan)
        if preempt:
            self._run_preempt(tick)
            return
        # 2. barrier demand: a call that cannot be served in this pass of the group
        barrier_demand = False
        if self._calls or self._ped_calls:
            # (a pedestrian call on a phase that is green now, pressed after its walk, is
            # served at its next green: it needs the barrier crossed like any other call)
            barrier_demand = any(
                self._demand(p, req) and not self._reachable(p)
                for p in self._calls | self._ped_calls
            )
        # 3. green rings: terminate?
        for ring in self._rings:
            if ring.interval is Interval.GREEN:
                self._time_green(ring, tick, req, barrier_demand)
        # 4. rings ready at the barrier leave together
        ready = [r for r in self._rings if r.ready is not None]
        if ready and all(
            r.ready is not None
            or r.interval is Interval.RED
            or (r.interval is not Interval.GREEN and r.next_phase is None)
            for r in self._rings
        ):
            for ring in ready:
                self._begin_yellow(ring, tick, ring.ready, None)
        # 5. idle rings start a reachable called phase, or all cross the barrier
        self._idle_rings(tick, req)

    def _time_ring(self, ring: _Ring, tick: int) -> None:
        p = ring.phase
        if p is None:
            return
        iv = ring.interval
        if iv is Interval.GREEN:
            if ring.ped is PedInterval.WALK and tick >= ring.walk_end:
                ring.ped = PedInterval.PED_CLEAR
                ring.ped_start = tick
                self._frame_dirty = True
                self._emit(EventCode.PED_BEGIN_CLEAR, p)
            if ring.ped is PedInterval.PED_CLEAR and tick >= ring.ped_end:
                ring.ped = PedInterval.DONT_WALK
                ring.ped_start = tick
                self._frame_dirty = True
                self._emit(EventCode.PED_BEGIN_DONT_WALK, p)
        elif iv is Interval.YELLOW and tick - ring.start >= self._times[p].yellow:
            self._emit(EventCode.PHASE_END_YELLOW, p)
            ring.interval = Interval.RED_CLEAR
            ring.start = tick
            self._frame_dirty = True
            self._emit(EventCode.PHASE_BEGIN_RED_CLEAR, p)
            iv = Interval.RED_CLEAR
        if iv is Interval.RED_CLEAR and tick - ring.start >= self._times[p].red_clear:
            self._emit(EventCode.PHASE_END_RED_CLEAR, p)
            ring.interval = Interval.RED
            ring.start = tick
            ring.phase = None
            self._frame_dirty = True
            nxt = ring.next_phase
            ring.next_phase = None
            if (
                nxt is not None
                and self._state is OperatingState.NORMAL
                and self._group_of[nxt] == self._group
                and nxt not in self._omit
                and not self._blocked(nxt)
            ):
                self._start_green(ring, nxt, tick)
            else:
                self._emit(EventCode.PHASE_INACTIVE, p)

    def _time_green(self, ring: _Ring, tick: int, req: Requests, barrier_demand: bool) -> None:
        p = ring.phase
        assert p is not None
        t = self._times[p]
        if p in self.detectors.extending:
            ring.last_ext = tick
        if not ring.min_done and tick >= ring.min_end and ring.ped is PedInterval.DONT_WALK:
            ring.min_done = True
            self._emit(EventCode.PHASE_MIN_COMPLETE, p)
        # where would this ring go next?
        nxt = (
            self._next_in_group(ring, p, req)
            if self._calls or self._ped_calls or req.next_phase
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
            if not (self._rest_in_red and ring.min_done):
                return
            if (
                p in self._hold
                or ring.last_ext == tick
                or tick - ring.last_ext < t.passage
                or t.recall is Recall.MAX
            ):
                return
            if self._calls or self._ped_calls:
                return  # someone is waiting somewhere: do not rest in red yet
            self._begin_yellow(ring, tick, Termination.GAP_OUT, None)
            return
        if ring.max_start is None:
            ring.max_start = tick
        if not ring.min_done:
            return
        reason: Termination | None = None
        if p in req.force_off:
            reason = Termination.FORCE_OFF
        elif p not in self._hold:
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
            self._begin_yellow(ring, tick, reason, nxt)
        else:
            ring.ready = reason  # wait for the other rings at the barrier

    def _next_in_group(self, ring: _Ring, current: int, req: Requests) -> int | None:
        want = req.next_phase.get(ring.id)
        if (
            want is not None
            and want != current
            and self._ring_of.get(want) is ring
            and self._group_of[want] == self._group
            and want not in self._omit
        ):
            return want
        idx = self._seq_idx[current]
        for q in ring.group_phases[self._group]:
            if self._seq_idx[q] > idx and self._demand(q, req):
                return q
        return None

    def _start_green(self, ring: _Ring, p: int, tick: int) -> None:
        t = self._times[p]
        ring.bound_for = None
        ring.phase = p
        ring.interval = Interval.GREEN
        ring.start = tick
        ring.ready = None
        ring.next_phase = None
        ring.max_start = None
        ring.min_done = False
        ring.last_ext = tick - t.passage  # no actuation yet: gap-out at min if none comes
        ring.served_idx = self._seq_idx[p]
        minimum = t.min_green
        if t.added_initial > 0 and t.max_initial > 0:
            added = math.ceil(t.added_initial * self._var_counts[p] * TICKS_PER_S - 1e-6)
            minimum = max(minimum, min(added, t.max_initial))
        self._var_counts[p] = 0
        ring.min_end = tick + minimum
        self._calls.discard(p)
        self._call_since.pop(p, None)
        if any(
            self.phases_conflict(p, q) and self._demand(q, NO_REQUESTS)
            for q in self._calls | self._ped_calls
        ):
            ring.max_start = tick  # a conflicting call already waits: max runs from green start
        self._calls_out = frozenset(self._calls)
        self._frame_dirty = True
        self._refresh_green()
        self._emit(EventCode.PHASE_BEGIN_GREEN, p)
        ring.ped = PedInterval.DONT_WALK
        if p in self._ped_calls and self._phase_cfg[p].pedestrian and t.walk + t.ped_clear > 0:
            self._start_walk(ring, p, tick)

    def _start_walk(self, ring: _Ring, p: int, tick: int) -> None:
        t = self._times[p]
        ring.ped = PedInterval.WALK
        ring.ped_start = tick
        ring.walk_end = tick + t.walk
        ring.ped_end = ring.walk_end + t.ped_clear
        ring.min_end = max(ring.min_end, ring.ped_end)
        ring.min_done = False
        self._ped_calls.discard(p)
        if p not in self._calls:
            self._call_since.pop(p, None)
        self._ped_calls_out = frozenset(self._ped_calls)
        self._frame_dirty = True
        self._emit(EventCode.PED_BEGIN_WALK, p)

    def _begin_yellow(
        self, ring: _Ring, tick: int, reason: Termination | None, nxt: int | None
    ) -> None:
        p = ring.phase
        assert p is not None
        if reason is Termination.GAP_OUT:
            self._emit(EventCode.PHASE_GAP_OUT, p)
        elif reason is Termination.MAX_OUT:
            self._emit(EventCode.PHASE_MAX_OUT, p)
        elif reason is Termination.FORCE_OFF:
            self._emit(EventCode.PHASE_FORCE_OFF, p)
        self._emit(EventCode.PHASE_GREEN_TERMINATION, p)
        if ring.ped is not PedInterval.DONT_WALK:  # never happens in normal service
            ring.ped = PedInterval.DONT_WALK
            self._emit(EventCode.PED_BEGIN_DONT_WALK, p)
        ring.interval = Interval.YELLOW
        ring.start = tick
        self._refresh_green()
        ring.ready = None
        ring.next_phase = nxt
        ring.bound_for = nxt if nxt is not None else self._expected_after(ring)
        self._frame_dirty = True
        self._emit(EventCode.PHASE_BEGIN_YELLOW, p)

    def _expected_after(self, ring: _Ring) -> int | None:
        """The phase ``ring`` will time once the barrier is crossed, when that is already
        settled: the strategy asks every ring into one group beyond the barrier and this ring
        for a phase there (:meth:`_cross_barrier` then starts exactly that phase, called or
        not). Otherwise None: the phase is chosen only when the rings cross, from the calls
        then, and an overlap carried green on a guess would make a conflicting phase wait for
        its clearance (the property tests caught that stretching a wait past their bound).
        Only overlaps use it, to stay green through a change between two of their parents."""
        req = self._req
        wanted = {self._group_of[p] for p in req.next_phase.values() if p in self._group_of}
        if len(wanted) != 1:
            return None
        target = next(iter(wanted))
        if target == self._group:
            return None
        want = req.next_phase.get(ring.id)
        if want in ring.group_phases[target] and want not in self._omit:
            return want
        return None

    def _idle_rings(self, tick: int, req: Requests) -> None:
        rings = self._rings
        if not any(r.interval is Interval.RED for r in rings) or any(
            r.ready is not None for r in rings
        ):
            return
        all_idle = True
        for ring in rings:
            if ring.interval is not Interval.RED:
                all_idle = False
                continue
            want = req.next_phase.get(ring.id)
            cand: int | None = None
            if (
                want is not None
                and self._ring_of.get(want) is ring
                and self._group_of[want] == self._group
                and self._demand(want, req)
                and not self._blocked(want)
            ):
                cand = want
            else:
                cand = next(
                    (
                        q
                        for q in ring.group_phases[self._group]
                        if self._seq_idx[q] > ring.served_idx
                        and self._demand(q, req)
                        and not self._blocked(q)
                    ),
                    None,
                )
            if cand is not None:
                self._start_green(ring, cand, tick)
                all_idle = False
            elif any(
                self._seq_idx[q] > ring.served_idx and self._demand(q, req) and self._blocked(q)
                for q in ring.group_phases[self._group]
            ):
                # a called phase of this group waits only for an overlap to finish clearing:
                # crossing the barrier now would skip it, and every pass again (starvation)
                all_idle = False
        if not all_idle:
            return
        if not any(self._demand(p, req) for p in self._calls | self._ped_calls):
            return
        self._cross_barrier(tick, req)

    def _cross_barrier(self, tick: int, req: Requests) -> None:
        n = len(self._groups)
        target: int | None = None
        wanted = {self._group_of[p] for p in req.next_phase.values() if p in self._group_of}
        if len(wanted) == 1:
            g = next(iter(wanted))
            if any(self._demand(p, req) or p in req.next_phase.values() for p in self._groups[g]):
                target = g
        if target is None:
            for k in range(1, n + 1):
                g = (self._group + k) % n
                if any(self._demand(p, req) for p in self._groups[g] if p in self._ring_of):
                    target = g
                    break
        if target is None:
            return
        if self._pending_plan is not None:
            self._apply_plan(self._pending_plan)
        self._group = target
        self._emit(EventCode.BARRIER_TERMINATION, target + 1)
        started: list[_Ring] = []
        for ring in self._rings:
            ring.served_idx = -1
            want = req.next_phase.get(ring.id)
            phases = ring.group_phases[target]
            cand: int | None = None
            if want in phases and want is not None and want not in self._omit:
                cand = want
            else:
                cand = next((q for q in phases if self._demand(q, req)), None)
            if cand is not None and not self._blocked(cand):
                self._start_green(ring, cand, tick)
                started.append(ring)
        if started:
            for ring in self._rings:
                if ring.interval is Interval.RED:
                    de = next(
                        (
                            q
                            for q in ring.group_phases[target]
                            if self._phase_cfg[q].dual_entry and q not in self._omit
                        ),
                        None,
                    )
                    if de is not None and not self._blocked(de):
                        self._start_green(ring, de, tick)

    # --- preemption and commanded-flash clearance ----------------------------------------------

    def _run_preempt(self, tick: int) -> None:
        dwell = self._dwell
        to_flash = self._clearing_to_flash is not None
        for ring in self._rings:
            p = ring.phase
            if ring.interval is not Interval.GREEN or p is None:
                continue
            if not to_flash and (p in dwell or tick == self._preempt_entry):
                continue
            if ring.ped is PedInterval.WALK:
                self._truncate_walk(ring)
            if ring.ped is not PedInterval.DONT_WALK:
                continue
            elapsed = tick - ring.start
            minimum = (
                self._times[p].min_green
                if to_flash
                else min(self._preempt_min, self._times[p].min_green)
            )
            if elapsed >= minimum:
                self._begin_yellow(ring, tick, None, None)
        if to_flash:
            if all(r.interval is Interval.RED for r in self._rings):
                d = self._clearing_to_flash
                assert d is not None
                self._enter_flash(d, tick)
            return
        # start dwell phases once nothing conflicting is timing
        busy = [r for r in self._rings if r.interval is not Interval.RED]
        if any(r.phase not in dwell or r.interval is not Interval.GREEN for r in busy):
            return
        if self._group != self._dwell_group:
            self._group = self._dwell_group
            for ring in self._rings:
                ring.served_idx = -1
        for p in dwell:
            ring = self._ring_of[p]
            if ring.interval is Interval.RED and not self._blocked(p):
                self._start_green(ring, p, tick)
        if not self._dwell_reported:
            self._dwell_reported = True
            self._emit(EventCode.PREEMPT_BEGIN_DWELL, min(self._preempts, default=0))

    # --- outputs -----------------------------------------------------------------------------

    def _phase_state(self, p: int) -> tuple[ChannelState, ChannelState]:
        ring = self._ring_of.get(p)
        if ring is None or ring.phase != p:
            return ChannelState.R, ChannelState.DW
        iv = ring.interval
        if iv is Interval.GREEN:
            ped = ring.ped
            if ped is PedInterval.WALK:
                return ChannelState.G, ChannelState.W
            if ped is PedInterval.PED_CLEAR:
                return ChannelState.G, ChannelState.FDW
            return ChannelState.G, ChannelState.DW
        if iv is Interval.YELLOW:
            return ChannelState.Y, ChannelState.DW
        return ChannelState.R, ChannelState.DW

    def _overlap_state(self, ch_id: int, parents: Iterable[int], tick: int) -> ChannelState:
        """Overlap channel: G with a green parent, then the clearance of the parent that ends.

        It turns green only when none of the phases it conflicts with is green, yellow or in
        red clearance; and while it is not idle red, those phases may not start
        (:meth:`_blocked`). Its yellow and red clearance are those of the terminating parent.
        """
        ov = self._overlaps[ch_id]
        parents = tuple(parents)
        parent_states = [(p, self._phase_state(p)[0]) for p in parents]
        any_green = any(st is ChannelState.G for _, st in parent_states)
        if ov[0] == 3 and not any_green and self._carried(parents, tick):
            return ChannelState.G  # one parent clears, another parent comes next: stay green
        if ov[0] == 3 and not any_green:  # green → yellow, timed by the terminating parent
            ending = [p for p, st in parent_states if st is ChannelState.Y] or list(parents)
            y = max((self._times[p].yellow for p in ending), default=_MIN_YELLOW)
            rc = max((self._times[p].red_clear for p in ending), default=20)
            ov[0], ov[1], ov[2], ov[3] = 2, tick, y, rc
        if ov[0] == 2 and tick - ov[1] >= ov[2]:
            ov[0], ov[1] = 1, tick
        if ov[0] == 1 and tick - ov[1] >= ov[3]:
            ov[0] = 0
        if ov[0] == 0 and any_green and not self._overlap_conflict_active(ch_id):
            ov[0], ov[1] = 3, tick
        return _OVERLAP_STATES[ov[0]]

    def _arrow_state(self, ch_id: int, phase: int, opposing: int | None) -> ChannelState:
        """A protected / permissive left: its own phase's G and Y; otherwise a flashing yellow
        arrow (FY, yield) while the opposing phase is green, ended by a steady yellow for the
        opposing phase's yellow. Validation keeps the opposing yellow and red clearance at
        least the arrow phase's, and keeps every phase that may time with the opposing one
        compatible with the arrow's."""
        own = self._phase_state(phase)[0]
        if own is not ChannelState.R or opposing is None:
            self._arrows[ch_id] = False
            return own
        opp = self._phase_state(opposing)[0]
        if opp is ChannelState.G:
            self._arrows[ch_id] = True
            return ChannelState.FY
        if opp is ChannelState.Y and self._arrows[ch_id]:
            return ChannelState.Y
        self._arrows[ch_id] = False
        return ChannelState.R

    def _carried(self, parents: tuple[int, ...], tick: int) -> bool:
        """A parent is in its yellow or red clearance (or its ring has just finished it) and
        that ring goes to another parent next: NEMA keeps an overlap green through a change
        between its parents."""
        if self._state is not OperatingState.NORMAL:
            return False
        for p in parents:
            ring = self._ring_of.get(p)
            if ring is None:
                continue
            if ring.phase == p and ring.interval in (Interval.YELLOW, Interval.RED_CLEAR):
                if ring.next_phase in parents or ring.bound_for in parents:
                    return True
            elif (
                ring.phase is None
                and ring.interval is Interval.RED
                and ring.bound_for in parents
                and tick - ring.start < _CARRY_IDLE_TICKS
            ):
                return True  # the barrier is being crossed into the next parent
        return False

    def _overlap_conflict_active(self, ch_id: int) -> bool:
        for q in self._overlap_conflicts[ch_id]:
            ring = self._ring_of.get(q)
            if ring is not None and ring.phase == q and ring.interval is not Interval.RED:
                return True
        return False

    def _blocked(self, p: int) -> bool:
        """May ``p`` not start because a conflicting overlap is not yet clear?"""
        if not self._overlaps:
            return False
        return any(
            ov[0] != 0 and p in self._overlap_conflicts[ch] for ch, ov in self._overlaps.items()
        )

    def _build_frame(self, tick: int) -> tuple[tuple[int, ChannelState], ...]:
        state = self._state
        if state is OperatingState.FLASH or state is OperatingState.STARTUP_FLASH:
            return self._flash_frame
        if state is OperatingState.ALL_RED:
            return self._all_red_frame
        out: list[tuple[int, ChannelState]] = []
        for c in self._channels:
            if c.source is ChannelSource.VEHICLE:
                if c.id in self._arrows:
                    out.append((c.id, self._arrow_state(c.id, c.phase, c.permissive)))
                else:
                    out.append((c.id, self._phase_state(c.phase)[0]))
            elif c.source is ChannelSource.PEDESTRIAN:
                out.append((c.id, self._phase_state(c.phase)[1]))
            else:
                out.append((c.id, self._overlap_state(c.id, c.overlap_parents, tick)))
        return tuple(out)

    def set_alarm(self, prefix: str, text: str | None) -> None:
        """Replace the alarms starting with ``prefix`` by ``text`` (None clears them)."""
        self._set_alarm(prefix, text)

    def refresh(self, events: tuple[Event, ...] = ()) -> Outputs:
        """Rebuild this tick's output (after :meth:`fault_flash`), keeping ``events``."""
        self._events[:0] = list(events)
        self._frame_dirty = True
        return self._output(self.tick)

    def _output(self, tick: int) -> Outputs:
        # overlaps time their own clearances: rebuilt every tick; an arrow follows phase
        # intervals only, and every interval change marks the frame dirty
        if self._frame_dirty or self._overlaps:
            self._frame = self._build_frame(tick)
            self._frame_dirty = False
        in_flash = self._state in (OperatingState.FLASH, OperatingState.STARTUP_FLASH)
        rings = tuple(
            RingStatus(
                ring=r.id,
                phase=r.phase,
                interval=r.interval,
                ped=r.ped,
                elapsed=(tick - (r.start if not in_flash else self._state_start)) / TICKS_PER_S,
                next_phase=r.next_phase,
            )
            for r in self._rings
        )
        events = tuple(self._events)
        self._events = []
        detectors: tuple[DetectorStatus, ...] = self.detectors.statuses
        out = Outputs(
            t=self._t,
            channels=self._frame,
            rings=rings,
            state=self._state,
            mode=Mode.FLASH if self._state is OperatingState.FLASH else self._mode,
            plan=self._plan.id,
            flash_reason=self._flash_reason if in_flash else None,
            alarms=self._alarms,
            calls=self._calls_out,
            ped_calls=self._ped_calls_out,
            detectors=detectors,
            events=events,
        )
        self.last = out
        return out
