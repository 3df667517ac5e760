"""Coordinated actuated control (NTCIP 1202 coordination).

The cycle clock runs from the plan's offset: cycle time 0 is the start of the coordinated
phases' green. It is the junction's own cycle, counted on the shared wall clock from the sync
reference and walked into step by a bounded transition (:mod:`edgectl.control.coordination`).
Each phase has a split window (see :func:`split_windows`).

- Coordinated phases have a constant call and are held green inside their window, up to
  their force-off point; after it they yield to waiting calls. A coordinated phase that
  comes back early (the phase before it in its ring had nothing to serve) is held from then
  into its window ("early return"), so it still yields at its force-off point.
- Non-coordinated phases are actuated (detector calls, gap-out) but forced off at their
  force-off point. ``force_off = fixed``: the point is fixed in the cycle, so time a phase
  does not use goes to the next phase. ``floating``: a phase may also not run longer than its
  own split green from when it began, so unused time returns to the coordinated phase.
- Permissive period: a non-coordinated phase may only *start* between the end of its ring's
  coordinated window and its force-off point minus its min green (otherwise it is omitted for
  now, its call stays locked and is served in the next cycle), so a late call does not push
  the coordinated phase out of step.
- Transition (start-up, plan or offset change, clock step): the cycle clock itself walks
  into step (shortway: running up to 20 % fast outside the coordinated green; dwell: stopped
  inside it). Here the permissive period is measured in real time (the min green at the
  clock's current rate). A phase green outside its window is forced off once its minimum is
  done and the coordinated phase is held only inside its window, so the phases follow the
  cycle clock; clearances and minimums are never shortened (the engine enforces them).
"""

from __future__ import annotations

from collections.abc import Mapping

from edgectl.config.model import Config, ForceOffMode, Plan
from edgectl.control.strategies.base import SplitWindow, View, in_window
from edgectl.control.types import Requests


class Coordinated:
    name = "coordinated"

    def __init__(self, config: Config, plan: Plan) -> None:
        self.config = config
        self._early_for: Mapping[int, SplitWindow] | None = None
        self._early: dict[int, float] = {}

    def requests(self, view: View) -> Requests:
        plan = view.plan
        coord = plan.coordination
        c = view.cycle_time()
        if coord is None or c is None:
            return Requests()
        cycle = coord.cycle
        windows = view.windows()
        coord_phases = frozenset(p for p in coord.coord_phases if p in windows)
        coord_fo: dict[int, float] = {}
        for p in coord_phases:
            coord_fo[view.phase_ring(p)] = windows[p].force_off
        if windows is not self._early_for:  # once per plan
            self._early = _early_return(view, windows, coord_phases)
            self._early_for = windows
        early = self._early
        hold: set[int] = set()
        force: set[int] = set()
        omit: set[int] = set()
        green = view.green_phases
        rate = view.cycle_rate()  # local cycle seconds per second (shortway: > 1)
        for p, w in windows.items():
            if w.split <= 0:
                omit.add(p)
                continue
            if p in coord_phases:
                if p in green:
                    if in_window(c, w.start, w.force_off, cycle) or in_window(
                        c, early.get(p, w.start), w.start, cycle
                    ):
                        hold.add(p)
                    else:
                        force.add(p)
                continue
            timing = plan.timing.get(p)
            min_green = timing.min_green if timing is not None else 0.0
            if p in green:
                over = not in_window(c, w.start, w.force_off, cycle)
                ring_fo = coord_fo.get(view.phase_ring(p))
                if ring_fo is not None:
                    # early start (unused time of earlier phases) counts as inside the window
                    over = not in_window(c, ring_fo, w.force_off, cycle)
                if not over and coord.force_off is ForceOffMode.FLOATING:
                    status = view.ring(view.phase_ring(p))
                    split_green = w.force_off - w.start
                    if status is not None and status.phase == p and status.elapsed >= split_green:
                        over = True
                if over:
                    force.add(p)
            else:
                ring_fo = coord_fo.get(view.phase_ring(p))
                if ring_fo is not None and not in_window(
                    c, ring_fo, w.force_off - min_green * rate, cycle
                ):
                    omit.add(p)
        return Requests(
            calls=coord_phases,
            hold=frozenset(hold),
            force_off=frozenset(force),
            omit=frozenset(omit),
        )


def _early_return(
    view: View, windows: Mapping[int, SplitWindow], coord: frozenset[int]
) -> dict[int, float]:
    """Coordinated phase → where its early return may begin: the start of the last window
    before it in its ring (that phase's unused time goes to the coordinated phase)."""
    out: dict[int, float] = {}
    for p in coord:
        ring = view.phase_ring(p)
        starts = [
            w.start
            for q, w in windows.items()
            if q != p and w.split > 0 and view.phase_ring(q) == ring
        ]
        if starts:
            out[p] = max(starts)
    return out
