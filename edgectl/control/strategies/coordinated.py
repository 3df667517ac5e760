"""Coordinated actuated control (NTCIP 1202 coordination).

The cycle clock runs from the plan's offset: cycle time 0 is the start of the coordinated
phases' green. Each phase has a split window (see :func:`split_windows`).

- Coordinated phases have a constant call and are held green inside their window, up to
  their force-off point; after it they yield to waiting calls.
- Non-coordinated phases are actuated (detector calls, gap-out) but forced off at their
  force-off point. ``force_off = fixed``: the point is fixed in the cycle, so time a phase
  does not use goes to the next phase. ``floating``: a phase may also not run longer than its
  own split green from when it began, so unused time returns to the coordinated phase.
- Permissive period: a non-coordinated phase may only *start* between the end of its ring's
  coordinated window and its force-off point minus its min green (otherwise it is omitted for
  now, its call stays locked and is served in the next cycle), so a late call does not push
  the coordinated phase out of step.
- Transition (start-up, plan or offset change): nothing special is needed. A phase green
  outside its window is forced off once its minimum is done, and the coordinated phase is
  held only inside its window, so the controller falls into step within about one cycle
  (the "immediate / short-way" transition; clearances and minimums are never shortened).
"""

from __future__ import annotations

from edgectl.config.model import Config, ForceOffMode, Plan
from edgectl.control.strategies.base import View, in_window
from edgectl.control.types import Requests


class Coordinated:
    name = "coordinated"

    def __init__(self, config: Config, plan: Plan) -> None:
        self.config = config

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
        hold: set[int] = set()
        force: set[int] = set()
        omit: set[int] = set()
        green = view.green_phases
        for p, w in windows.items():
            if w.split <= 0:
                omit.add(p)
                continue
            if p in coord_phases:
                if p in green:
                    if in_window(c, w.start, w.force_off, cycle):
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
                    c, ring_fo, w.force_off - min_green, cycle
                ):
                    omit.add(p)
        return Requests(
            calls=coord_phases,
            hold=frozenset(hold),
            force_off=frozenset(force),
            omit=frozenset(omit),
        )
