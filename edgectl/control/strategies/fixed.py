"""Pretimed (fixed-time) control: the plan's cycle, offset and splits, no actuation effect.

Every phase with a split has a constant call (and pedestrian phases a pedestrian call, so the
walk is served every cycle). A green phase is held while the cycle clock is inside its split
window and forced off at its force-off point (split start + split − yellow − red clearance);
with every phase called, greens therefore begin at the split points. A phase that is green
outside its window (after start-up or a plan change) is forced off as soon as its minimum is
done, so the controller falls into step within one cycle. Without coordination data the plan
runs actuated with constant calls (max recall behaviour comes from the engine's max timer).
"""

from __future__ import annotations

from edgectl.config.model import Config, Plan
from edgectl.control.strategies.base import View, in_window
from edgectl.control.types import NO_REQUESTS, Requests


class Fixed:
    name = "fixed"

    def __init__(self, config: Config, plan: Plan) -> None:
        self.config = config
        self._cache_for: Plan | None = None
        self._base = NO_REQUESTS

    def _base_requests(self, view: View) -> Requests:
        plan = view.plan
        if self._cache_for is not plan:
            windows = view.windows()
            served = frozenset(p for p, w in windows.items() if w.split > 0)
            if not windows:
                served = frozenset(plan.timing)
            peds = frozenset(p for p in served if view.config.phase(p).pedestrian)
            omit = frozenset(p for p in windows if p not in served)
            self._base = Requests(calls=served, ped_calls=peds, omit=omit)
            self._cache_for = plan
        return self._base

    def requests(self, view: View) -> Requests:
        base = self._base_requests(view)
        c = view.cycle_time()
        coord = view.plan.coordination
        if c is None or coord is None:
            return base
        windows = view.windows()
        hold: set[int] = set()
        force: set[int] = set()
        for p in view.green_phases:
            w = windows.get(p)
            if w is not None and in_window(c, w.start, w.force_off, coord.cycle):
                hold.add(p)
            else:
                force.add(p)
        return Requests(
            calls=base.calls,
            ped_calls=base.ped_calls,
            omit=base.omit,
            hold=frozenset(hold),
            force_off=frozenset(force),
        )
