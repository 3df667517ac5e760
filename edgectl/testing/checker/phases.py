"""Phase behaviour from the controller's outputs: min green, max green, starvation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from edgectl.config.model import Config, Mode, Plan
from edgectl.control.types import Interval, OperatingState, Outputs, Requests
from edgectl.testing.checker.findings import Finding
from edgectl.testing.checker.layout import derive_phase_conflicts

__all__ = ["PhaseChecker"]


@dataclass(slots=True)
class _Green:
    phase: int
    ring_index: int
    start: float
    min_need: float  # smallest min green of the plans seen during this green
    preempted: bool = False
    max_exempt: bool = False
    max_from: float | None = None
    max_limit: float = 0.0  # largest max green of the plans seen
    floor: float = 0.0  # the minimum a green may always run (min, initial, ped)
    reported_max: bool = False


@dataclass(slots=True)
class _Wait:
    since: float
    reported: bool = False


@dataclass(slots=True)
class _Layout:
    group: dict[int, int] = field(default_factory=dict)
    ring: dict[int, int] = field(default_factory=dict)
    conflicts: dict[int, frozenset[int]] = field(default_factory=dict)
    later: dict[int, frozenset[int]] = field(default_factory=dict)  # same ring+group, after it


class PhaseChecker:
    """Checks phase behaviour from the controller's :class:`Outputs`, one call per tick.

    ``feed(outputs, requests)`` takes the operator requests given to that tick (holds exempt a
    phase from the max-green check and suspend the starvation check; omits make a call
    unserviceable).
    """

    def __init__(
        self,
        config: Config,
        *,
        max_modes: Iterable[Mode] = (Mode.ACTUATED,),
        starvation_bound_s: float | None = None,
        tolerance: float = 0.25,
    ) -> None:
        self._config = config
        self._plans = {p.id: p for p in config.plans}
        self._max_modes = frozenset(max_modes)
        self._tol = tolerance
        self._layout = _Layout()
        for index, barrier in enumerate(config.barriers):
            for p in barrier.phases:
                self._layout.group.setdefault(p, index)
        for ring in config.rings:
            for i, p in enumerate(ring.sequence):
                self._layout.ring[p] = ring.id
                group = self._layout.group.get(p)
                self._layout.later[p] = frozenset(
                    q for q in ring.sequence[i + 1 :] if self._layout.group.get(q) == group
                )
        conflicts = derive_phase_conflicts(config)
        for p in self._layout.ring:
            self._layout.conflicts[p] = frozenset(
                q for q in self._layout.ring if frozenset((p, q)) in conflicts
            )
        self._pedestrian = {p.id for p in config.phases if p.pedestrian}
        self._bound = (
            starvation_bound_s if starvation_bound_s is not None else self._default_bound()
        )
        self._greens: dict[int, _Green] = {}  # ring index → current green
        self._waits: dict[int, _Wait] = {}
        self._last_mode: Mode | None = None
        self._last_plan: int | None = None

    @property
    def starvation_bound_s(self) -> float:
        return self._bound

    def _default_bound(self) -> float:
        """Two full rounds of every phase at its longest, plus a coordinated transition."""
        worst = 0.0
        for plan in self._config.plans:
            total = 0.0
            for t in plan.timing.values():
                green = max(t.min_green, t.max1, t.max2 or 0.0, t.walk + t.ped_clear, t.max_initial)
                total += green + t.yellow + t.red_clear
            cycle = plan.coordination.cycle if plan.coordination else 0.0
            worst = max(worst, 2.0 * total + 3.0 * cycle)
        control = self._config.control
        return worst + control.startup_all_red + 10.0

    def _plan(self, out: Outputs) -> Plan | None:
        return self._plans.get(out.plan)

    def feed(
        self,
        out: Outputs,
        requests: Requests | None = None,
        *,
        operator: Requests | None = None,
    ) -> list[Finding]:
        """Check one tick.

        ``requests`` are all the requests the engine was given that tick (strategy and
        operator): a hold exempts that green from the max-green check, an omit makes calls
        unserviceable. ``operator`` are the operator's alone (default: ``requests``): their
        holds suspend the starvation check (a strategy's holds do not: a strategy must not
        starve a phase).
        """
        req = requests or Requests()
        op = req if operator is None else operator
        findings: list[Finding] = []
        plan = self._plan(out)
        changed = out.mode != self._last_mode or out.plan != self._last_plan
        self._last_mode, self._last_plan = out.mode, out.plan
        omitted = set(req.omit) | set(op.omit)
        if plan is not None:
            omitted |= {p for p, t in plan.timing.items() if t.omit}
        findings += self._greens_tick(out, req, plan, omitted)
        findings += self._starvation_tick(out, op, omitted, reset=changed)
        return findings

    # -- greens: min green and max green

    def _greens_tick(
        self, out: Outputs, req: Requests, plan: Plan | None, omitted: set[int]
    ) -> list[Finding]:
        findings: list[Finding] = []
        normal = out.state == OperatingState.NORMAL
        flashing = out.state in (OperatingState.FLASH, OperatingState.STARTUP_FLASH)
        green_now: dict[int, int] = {}
        for index, ring in enumerate(out.rings):
            if ring.phase is not None and ring.interval == Interval.GREEN:
                green_now[index] = ring.phase
        # greens that ended
        for index, ended in list(self._greens.items()):
            if green_now.get(index) == ended.phase:
                continue
            del self._greens[index]
            if flashing:
                continue  # cut by flash: allowed
            need = ended.min_need
            if ended.preempted:
                need = min(need, self._config.control.preempt_min_green)
            lasted = out.t - ended.start
            if lasted < need - self._tol:
                findings.append(
                    Finding(
                        out.t,
                        "min_green_truncated",
                        phases=(ended.phase,),
                        detail=f"green lasted {lasted:.2f} s, minimum {need:.2f} s"
                        + (" (preempted)" if ended.preempted else ""),
                    )
                )
        # greens that run: update their timers, then judge them together (barrier waits
        # depend on what the other rings are doing)
        over: dict[int, bool] = {}
        demands: dict[int, frozenset[int]] = {}
        for index, phase in green_now.items():
            green = self._greens.get(index)
            timing = plan.timing.get(phase) if plan is not None else None
            if green is None:
                green = _Green(phase, index, out.t, timing.min_green if timing else 0.0)
                self._greens[index] = green
            if timing is not None:
                green.min_need = min(green.min_need, timing.min_green)
                max_green = timing.max2 if req.max2 and timing.max2 is not None else timing.max1
                green.max_limit = max(green.max_limit, max_green)
                floor = timing.min_green
                if timing.added_initial > 0:
                    floor = max(floor, timing.max_initial)
                if phase in self._pedestrian:
                    floor = max(floor, timing.walk + timing.ped_clear)
                green.floor = max(green.floor, floor)
            if out.state == OperatingState.PREEMPT:
                green.preempted = True
            if (
                not normal
                or out.mode not in self._max_modes
                or phase in req.hold
                or green.preempted
            ):
                green.max_exempt = True
            if green.max_exempt:
                over[index] = False
                continue
            demand = self._demand(out, req, omitted) & self._layout.conflicts.get(
                phase, frozenset()
            )
            demands[index] = demand
            if not demand:
                green.max_from = None
                over[index] = False
                continue
            if green.max_from is None:
                green.max_from = out.t
            over_max = out.t - green.max_from > green.max_limit + self._tol
            over_floor = out.t - green.start > green.floor + self._tol
            over[index] = over_max and over_floor
        for index, is_over in over.items():
            green = self._greens[index]
            if not is_over or green.reported_max or green.max_from is None:
                continue
            demand = demands[index]
            if self._barrier_wait(out, index, green.phase, demand, over=over, req=req):
                continue
            green.reported_max = True
            findings.append(
                Finding(
                    out.t,
                    "max_green_exceeded",
                    phases=(green.phase,),
                    detail=f"green for {out.t - green.start:.2f} s, conflicting demand "
                    f"{sorted(demand)} for {out.t - green.max_from:.2f} s, max green "
                    f"{green.max_limit:.2f} s",
                )
            )
        return findings

    def _demand(self, out: Outputs, req: Requests, omitted: set[int]) -> frozenset[int]:
        ped = {p for p in out.ped_calls if p not in req.ped_omit}
        return frozenset((set(out.calls) | ped) - omitted)

    def _barrier_wait(
        self,
        out: Outputs,
        index: int,
        phase: int,
        demand: frozenset[int],
        *,
        over: Mapping[int, bool],
        req: Requests,
    ) -> bool:
        """Is ``phase`` legitimately waiting at the barrier for another ring?

        Only when none of its waiting demand can be served in its ring before the barrier
        (phases after it in the ring sequence, same group, or a requested next phase there)
        and another ring still times
        a phase of the same group that is itself within its limits (or already clearing).
        """
        group = self._layout.group.get(phase)
        ring = self._layout.ring.get(phase)
        later = self._layout.later.get(phase, frozenset())
        within = {q for q in demand if q in later}
        if ring is not None and ring in req.next_phase:
            wanted = req.next_phase[ring]
            if wanted in demand and self._layout.group.get(wanted) == group:
                within.add(wanted)
        if within:
            return False
        for other_index, status in enumerate(out.rings):
            if other_index == index or status.phase is None:
                continue
            if self._layout.group.get(status.phase) != group:
                continue
            if status.interval in (Interval.YELLOW, Interval.RED_CLEAR):
                return True
            if status.interval == Interval.GREEN and not over.get(other_index, False):
                return True
        return False

    # -- starvation

    def _starvation_tick(
        self, out: Outputs, req: Requests, omitted: set[int], *, reset: bool
    ) -> list[Finding]:
        suspended = (
            reset
            or out.state != OperatingState.NORMAL
            or out.mode in (Mode.MANUAL, Mode.FLASH)
            or bool(req.hold)
        )
        if suspended:
            self._waits.clear()
            return []
        findings: list[Finding] = []
        serving = {
            r.phase for r in out.rings if r.phase is not None and r.interval == Interval.GREEN
        }
        called = self._demand(out, req, omitted) & frozenset(self._layout.ring)
        for phase in list(self._waits):
            if phase not in called or phase in serving:
                del self._waits[phase]
        for phase in called - serving:
            wait = self._waits.setdefault(phase, _Wait(out.t))
            if not wait.reported and out.t - wait.since > self._bound:
                wait.reported = True
                findings.append(
                    Finding(
                        out.t,
                        "phase_starved",
                        phases=(phase,),
                        detail=f"called for {out.t - wait.since:.1f} s without service "
                        f"(bound {self._bound:.1f} s)",
                    )
                )
        return findings
