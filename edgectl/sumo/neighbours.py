"""Projected arrivals passed between neighbouring junctions (``--coordinate``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edgectl.sumo.controls import EdgectlJunction, JunctionControl
from edgectl.sumo.model import JunctionModel

__all__ = ["NeighbourBus", "NeighbourLink"]


@dataclass(frozen=True, slots=True)
class NeighbourLink:
    """Upstream junction ``up`` discharges into downstream ``down``'s approach."""

    up: str
    down: str
    loops: tuple[str, ...]  # up's stop-bar loops on lanes with a movement towards ``down``
    phase: int  # the phase of ``down`` that serves most lanes of that approach
    travel_s: float  # stop bar of ``up`` → stop bar of ``down`` at the speed limit


class NeighbourBus:
    """Projected arrivals between neighbouring junctions, as direct calls.

    Each step, every vehicle leaving an upstream stop bar towards a downstream junction
    becomes a projected arrival (departure + link travel time) on the downstream phase; the
    downstream strategy gets them through ``expect(phase, times)`` when it has that method
    (``adaptive``). The daemon would carry the same projections as MQTT messages.
    """

    def __init__(self, links: Sequence[NeighbourLink], controls: dict[str, JunctionControl]):
        self.links = tuple(links)
        self.controls = controls
        self.pending: dict[tuple[str, int], list[float]] = {}

    @classmethod
    def build(
        cls,
        ls: ModuleType,
        models: dict[str, JunctionModel],
        controls: dict[str, JunctionControl],
        *,
        dual_ring: bool = True,
    ) -> NeighbourBus:
        links = []
        for down_id, down in models.items():
            for up_id, lanes in down.neighbours_up.items():
                up = models.get(up_id)
                if up is None or not lanes:
                    continue
                edge = ls.lane.getEdgeID(lanes[0])
                feeding = {g.in_lane for g in up.groups if ls.lane.getEdgeID(g.out_lane) == edge}
                loops = tuple(lp.id for lp in up.loops if not lp.advance and lp.lane in feeding)
                votes: dict[int, int] = {}
                for lane in lanes:
                    for st in down.lane_phases(lane, dual_ring=dual_ring):
                        votes[st] = votes.get(st, 0) + 1
                if not loops or not votes:
                    continue
                phase = max(sorted(votes), key=lambda k: votes[k])
                length = ls.lane.getLength(lanes[0])
                speed = max(1.0, ls.lane.getMaxSpeed(lanes[0]))
                travel = length / speed + 2.0  # plus crossing the upstream junction
                links.append(NeighbourLink(up_id, down_id, loops, phase, travel))
        return cls(links, controls)

    def after_step(self, now: float, data: dict[str, Any]) -> None:
        for link in self.links:
            times = self.pending.setdefault((link.down, link.phase), [])
            for loop in link.loops:
                for _vid, _len, _entry, leave, _type in data.get(loop, ()):
                    if leave >= 0:
                        times.append(leave + link.travel_s)
        for (down, phase), times in self.pending.items():
            times[:] = [a for a in times if a >= now]
            control = self.controls.get(down)
            strategy = control.strategy if isinstance(control, EdgectlJunction) else None
            expect = getattr(strategy, "expect", None)
            if expect is not None:
                expect(phase, tuple(times))
