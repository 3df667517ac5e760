"""Manual control: every green is held; the operator advances with force-off / next phase.

Operator requests arrive for one tick (``view.operator``); this strategy latches them until
they take effect (the phase leaves green), because the engine honours a force-off only after
the minimum green (and walk / ped clearance) is done.
"""

from __future__ import annotations

from edgectl.config.model import Config, Plan
from edgectl.control.strategies.base import View
from edgectl.control.types import Requests


class Manual:
    name = "manual"

    def __init__(self, config: Config, plan: Plan) -> None:
        self.config = config
        self._advance: set[int] = set()  # green phases the operator asked to end
        self._next: dict[int, int] = {}

    def requests(self, view: View) -> Requests:
        green = view.green_phases
        op = view.operator
        self._advance |= op.force_off & green
        for ring_id, phase in op.next_phase.items():
            self._next[ring_id] = phase
            status = view.ring(ring_id)
            if status is not None and status.phase in green and status.phase != phase:
                self._advance.add(status.phase)
        self._advance &= green
        for ring_id, phase in list(self._next.items()):
            if phase in green:
                del self._next[ring_id]
        return Requests(
            calls=frozenset(self._next.values()),
            hold=green - self._advance,
            force_off=frozenset(self._advance),
            next_phase=dict(self._next),
        )
