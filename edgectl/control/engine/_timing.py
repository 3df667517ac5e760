"""Plan timing in ticks, and plan changes at safe points.

Configured seconds are converted with ``ceil`` (never rounding a minimum down) and yellow is
never below 3.0 s. A plan change asked for in service waits for a safe point (the next
barrier crossing, or rest); in flash or all-red it applies at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from edgectl.config.model import Mode, Plan, Recall
from edgectl.control.detectors import to_ticks
from edgectl.control.engine._layout import Layout
from edgectl.control.engine._status import Status
from edgectl.control.types import EventCode

__all__ = ["MIN_YELLOW", "PhaseTimes", "PlanSets", "PlanTiming", "mode_code"]

MIN_YELLOW = 30  # ticks: SPEC §4, never below 3.0 s

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
        self.yellow = max(to_ticks(t.yellow), MIN_YELLOW)
        self.red_clear = max(to_ticks(t.red_clear), 1)  # at least one red frame: no Y→G
        self.walk = to_ticks(t.walk)
        self.ped_clear = to_ticks(t.ped_clear)
        self.added_initial = t.added_initial
        self.max_initial = to_ticks(t.max_initial)
        self.recall = t.recall
        self.omit = t.omit


class PlanSets:
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


class PlanTiming:
    """The running plan, its timing in ticks, and a plan change waiting for a safe point."""

    __slots__ = ("_layout", "_status", "pending", "plan", "sets", "times")

    def __init__(self, layout: Layout, status: Status, plan: Plan) -> None:
        self._layout = layout
        self._status = status
        self.plan = plan
        self.times = self._compile(plan)
        self.sets = self._sets(self.times)
        self.pending: Plan | None = None

    def _compile(self, plan: Plan) -> dict[int, PhaseTimes]:
        return {p: PhaseTimes(plan, p) for p in self._layout.phase_ids}

    def _sets(self, times: dict[int, PhaseTimes]) -> PlanSets:
        layout = self._layout
        return PlanSets(times, layout.ped_phases, (seq for _, seq in layout.ring_seqs))

    def apply(self, plan: Plan) -> None:
        """Run ``plan`` from now on (a safe point): event 131 when it is another plan."""
        self.pending = None
        if plan != self.plan:
            self.plan = plan
            self.times = self._compile(plan)
            self.sets = self._sets(self.times)
            self._status.emit(EventCode.COORD_PATTERN_CHANGE, plan.id)

    def apply_pending(self) -> None:
        if self.pending is not None:
            self.apply(self.pending)
