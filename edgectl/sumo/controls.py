"""The controllers a bench run can put on a junction: edgectl's own, or SUMO's.

``edgectl:*`` runs the daemon's :class:`~edgectl.control.controller.Controller` (the same
engine, safety kernel and strategies), stepped through the 0.1 s ticks of each SUMO step, its
channel frame written to the tls as a state string. ``sumo:static|actuated|delay_based``
instead hand SUMO a tls program built from the same derived stages and clearances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol

from edgectl.config.model import Mode, Zone
from edgectl.control.types import ZoneReading
from edgectl.sumo.model import JunctionModel
from edgectl.sumo.result import BenchError

__all__ = [
    "CONTROLLERS",
    "EDGECTL_CONTROLLERS",
    "PROGRAM_ID",
    "SUMO_CONTROLLERS",
    "TICK_S",
    "EdgectlJunction",
    "JunctionControl",
    "PresenceFn",
    "SumoProgram",
    "build_controllers",
]

TICK_S = 0.1
EDGECTL_CONTROLLERS: dict[str, Mode] = {
    "edgectl:fixed": Mode.FIXED,
    "edgectl:actuated": Mode.ACTUATED,
    "edgectl:maxpressure": Mode.MAXPRESSURE,
    "edgectl:adaptive": Mode.ADAPTIVE,
}
SUMO_CONTROLLERS = ("sumo:static", "sumo:actuated", "sumo:delay_based")
CONTROLLERS = (*EDGECTL_CONTROLLERS, *SUMO_CONTROLLERS)
PROGRAM_ID = "edgectl-bench"


class JunctionControl(Protocol):
    """One junction's controller inside the bench."""

    def start(self, ls: ModuleType) -> None: ...
    def advance(self, ls: ModuleType, t0: float, t1: float, presence: PresenceFn) -> None: ...
    def summary(self) -> dict[str, Any]: ...


PresenceFn = Callable[[str, float], bool]  # (SUMO loop id, time) -> occupied


# ------------------------------------------------------------------ SUMO's own controllers


class SumoProgram:
    """A SUMO tls program of type static / actuated / delay_based from the derived stages."""

    def __init__(self, model: JunctionModel, kind: str) -> None:
        self.model = model
        self.kind = kind

    def start(self, ls: ModuleType) -> None:
        c = ls.constants
        tl_type = {
            "static": c.TRAFFICLIGHT_TYPE_STATIC,
            "actuated": c.TRAFFICLIGHT_TYPE_ACTUATED,
            "delay_based": c.TRAFFICLIGHT_TYPE_DELAYBASED,
        }[self.kind]
        m = self.model
        phases = []
        n = len(m.stages)
        for k, st in enumerate(m.stages):
            nxt = m.stages[(k + 1) % n]
            keep = st.groups & nxt.groups
            ending = st.groups - keep
            green = m.state_for(st.groups, permissive=st.permissive)
            if self.kind == "static":
                phases.append(ls.trafficlight.Phase(st.green_s, green))
            else:
                phases.append(ls.trafficlight.Phase(st.green_s, green, st.min_green, st.max_green))
            if ending:  # transitions: fixed duration (min = max = duration) in every type
                y, rc = st.yellow, st.red_clear
                held = st.permissive & keep
                phases.append(ls.trafficlight.Phase(y, m.state_for(keep, ending, held), y, y))
                if rc > 0:
                    phases.append(ls.trafficlight.Phase(rc, m.state_for(keep, (), held), rc, rc))
        logic = ls.trafficlight.Logic(PROGRAM_ID, tl_type, 0, phases)
        ls.trafficlight.setProgramLogic(m.tls_id, logic)
        ls.trafficlight.setProgram(m.tls_id, PROGRAM_ID)

    def advance(self, ls: ModuleType, t0: float, t1: float, presence: PresenceFn) -> None:
        return None

    def summary(self) -> dict[str, Any]:
        return {"controller": f"sumo:{self.kind}", "stages": len(self.model.stages)}


# ------------------------------------------------------------------ the edgectl controller


class EdgectlJunction:
    """The daemon's own :class:`~edgectl.control.controller.Controller` on one junction."""

    def __init__(
        self,
        model: JunctionModel,
        mode: Mode,
        *,
        dual_ring: bool = False,
        control: Mapping[str, object] | None = None,
        plan: Mapping[str, object] | None = None,
        zones: Sequence[Zone] = (),
    ) -> None:
        from edgectl.control.controller import Controller
        from edgectl.control.strategies import adaptive, maxpressure  # register themselves

        del adaptive, maxpressure
        self.model = model
        self.config = model.to_config(mode, dual_ring=dual_ring)
        if control:  # e.g. the priority settings a bench run tunes ([control] keys)
            settings = self.config.control.model_validate(
                {**self.config.control.model_dump(), **control}
            )
            self.config = self.config.model_copy(update={"control": settings})
        if plan:  # e.g. transit signal priority (tsp_* keys of every plan)
            plans = tuple(p.model_validate({**p.model_dump(), **plan}) for p in self.config.plans)
            self.config = self.config.model_copy(update={"plans": plans})
        self.permissive = (dual_ring is False or model.dual_ring is None) and any(
            st.permissive for st in model.stages
        )
        # flashing yellow arrows: FY on these channels outside flash is a permissive left (g)
        self.arrows = {c.id: c.permissive for c in self.config.channels if c.permissive}
        if zones:  # zone sensors of the lanes (E2 detectors), the lanes' loops as fallback
            self.config = self.config.model_copy(update={"zones": tuple(zones)})
        self.controller = Controller(self.config)
        self.state = "r" * model.n_links
        self.ticks = 0
        self.now = 0.0  # controller time of the last tick
        # zone sensors (E2 detectors, edgectl.sumo.zones): the latest readings, set by the feed
        self.zones: tuple[ZoneReading, ...] = ()
        self.zone_faults = 0  # ZONE_FAULT events (a zone failed: no data, stuck, implausible)

    @property
    def strategy(self) -> object:
        """The controller's current strategy object (for neighbour messages)."""
        return self.controller.strategy

    def start(self, ls: ModuleType) -> None:
        self._tick(ls, 0.0, frozenset())
        ls.trafficlight.setRedYellowGreenState(self.model.tls_id, self.state)

    def _tick(self, ls: ModuleType, now: float, presence: frozenset[int]) -> None:
        from edgectl.cabinet.channels import ChannelState
        from edgectl.control.types import EventCode, Inputs

        # simulation time is the shared clock of coordination (as the wall clock in the field)
        out = self.controller.step(now, Inputs(presence=presence, sync_s=now, zones=self.zones))
        if self.zones or out.zones:
            self.zone_faults += sum(1 for e in out.events if e.code == EventCode.ZONE_FAULT)
        chars = ["r"] * self.model.n_links
        green = self.controller.engine.green_phases()
        for ch, st in out.channels:
            i = ch - 1
            if 0 <= i < len(chars):
                if st is ChannelState.G:
                    chars[i] = "G"
                elif st is ChannelState.FY and self.arrows.get(ch) in green:
                    chars[i] = "g"  # protected / permissive left: yields to the opposing through
                elif st in (ChannelState.Y, ChannelState.FY):
                    chars[i] = "y"
        if self.permissive:
            for i in self.model.yielding(self.controller.engine.green_phases(), dual_ring=False):
                if chars[i] == "G":
                    chars[i] = "g"  # green, but yields (a permissive left on a shared lane)
        self.state = "".join(chars)
        self.ticks += 1

    def advance(self, ls: ModuleType, t0: float, t1: float, presence: PresenceFn) -> None:
        # the engine's 0.1 s ticks that fall in (t0, t1]: 10 per step at SUMO's 1 s, one
        # every other step at 0.05 s: controller time stays simulation time at any step length
        while self.now + TICK_S <= t1 + 1e-9:
            self.now = round(self.now + TICK_S, 6)
            occupied = frozenset(
                loop.detector_id for loop in self.model.loops if presence(loop.id, self.now)
            )
            self._tick(ls, self.now, occupied)
        ls.trafficlight.setRedYellowGreenState(self.model.tls_id, self.state)

    def summary(self) -> dict[str, Any]:
        return {
            "controller": f"edgectl:{self.config.control.mode.value}",
            "stages": len(self.model.stages),
            "ticks": self.ticks,
            **(
                {
                    "zones": len(self.config.zones),
                    "zones_failed": sorted(self.controller.zones.failed),
                    "zone_faults": self.zone_faults,
                }
                if self.config.zones
                else {}
            ),
        }


def build_controllers(
    models: dict[str, JunctionModel],
    controller: str,
    *,
    dual_ring: bool = False,
    control: Mapping[str, object] | None = None,
    plan: Mapping[str, object] | None = None,
    zones: Mapping[str, Sequence[Zone]] | None = None,
) -> dict[str, JunctionControl]:
    """One control per junction; ``control`` / ``plan``: ``[control]`` settings and plan
    fields for ``edgectl:*`` over the derived configuration's; ``zones``: tls id → the zone
    sensors of its lanes (E2 detectors, :mod:`edgectl.sumo.zones`) for ``edgectl:*``."""
    out: dict[str, JunctionControl] = {}
    for tls_id, model in models.items():
        if controller in EDGECTL_CONTROLLERS:
            out[tls_id] = EdgectlJunction(
                model,
                EDGECTL_CONTROLLERS[controller],
                dual_ring=dual_ring,
                control=control,
                plan=plan,
                zones=(zones or {}).get(tls_id, ()),
            )
        elif controller in SUMO_CONTROLLERS:
            out[tls_id] = SumoProgram(model, controller.split(":", 1)[1])
        else:
            raise BenchError(f"unknown controller {controller!r}; one of {', '.join(CONTROLLERS)}")
    return out
