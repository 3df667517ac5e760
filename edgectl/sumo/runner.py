"""Run one controller against a SUMO scenario through libsumo and measure the traffic.

The loop, per SUMO step (the scenario's own step length, 1 s in ours):

1. ``simulationStep()``;
2. every E1 loop's vehicle data of that step (entry and leave times) becomes detector
   presence at each 0.1 s sub-step, and every junction's controller is stepped through the
   sub-steps: the same engine, safety kernel and strategies the daemon runs;
3. the channel frame at the end of the step is written to the tls as its state string, so the
   next SUMO step shows what the cabinet would.

SUMO's own controllers (``sumo:static|actuated|delay_based``) instead get a tls program built
from the same derived stages and clearances, and SUMO runs it.

Measured from SUMO itself (the tripinfo device, on for every vehicle): mean time loss,
waiting time, trip duration and insertion delay of arrived vehicles; from subscriptions: stops
and the mean delay per approach (time lost on each signalised incoming edge).
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from edgectl.config.model import Mode
from edgectl.sumo._env import binary, load_libsumo
from edgectl.sumo.network import JunctionModel, attach_loops, derive_network, on_steps

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
MAX_SIM_S = 86400.0  # a scenario that never empties stops after a simulated day


class BenchError(Exception):
    """The scenario cannot be benched (no net, no signalised junction, bad controller...)."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    scenario: str
    controller: str
    seed: int | None
    valid: bool  # no teleport, no collision
    invalid_reason: str | None
    sim_end_s: float
    wall_s: float
    loaded: int
    arrived: int
    all_arrived: bool
    teleports: int
    collisions: int
    time_loss_s: float  # means over arrived vehicles
    waiting_s: float
    duration_s: float
    depart_delay_s: float
    stops: float  # mean number of stops (speed < 0.1 m/s) per arrived vehicle
    worst_approach: str | None
    worst_approach_delay_s: float
    approach_delay_s: dict[str, float] = field(default_factory=dict)
    junctions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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

    def __init__(self, model: JunctionModel, mode: Mode, *, dual_ring: bool = False) -> None:
        from edgectl.control.controller import Controller
        from edgectl.control.strategies import adaptive, maxpressure  # register themselves

        del adaptive, maxpressure
        self.model = model
        self.config = model.to_config(mode, dual_ring=dual_ring)
        self.permissive = (dual_ring is False or model.dual_ring is None) and any(
            st.permissive for st in model.stages
        )
        # flashing yellow arrows: FY on these channels outside flash is a permissive left (g)
        self.arrows = {c.id: c.permissive for c in self.config.channels if c.permissive}
        self.controller = Controller(self.config)
        self.state = "r" * model.n_links
        self.ticks = 0
        self.now = 0.0  # controller time of the last tick

    @property
    def strategy(self) -> object:
        """The controller's current strategy object (for neighbour messages)."""
        return self.controller.strategy

    def start(self, ls: ModuleType) -> None:
        self._tick(ls, 0.0, frozenset())
        ls.trafficlight.setRedYellowGreenState(self.model.tls_id, self.state)

    def _tick(self, ls: ModuleType, now: float, presence: frozenset[int]) -> None:
        from edgectl.cabinet.channels import ChannelState
        from edgectl.control.types import Inputs

        out = self.controller.step(now, Inputs(presence=presence))
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
        }


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


# ------------------------------------------------------------------ scenario and options


def scenario_net(cfg: Path, sumo_args: Sequence[str]) -> Path:
    """The net file SUMO will load: ``-n/--net-file`` after ``--`` wins over the sumocfg."""
    for i, a in enumerate(sumo_args):
        if a in ("-n", "--net-file") and i + 1 < len(sumo_args):
            return Path(sumo_args[i + 1])
        if a.startswith("--net-file="):
            return Path(a.split("=", 1)[1])
    root = ET.parse(cfg).getroot()  # noqa: S314 - the user's own local scenario file
    for el in root.iter():
        if el.tag in ("net-file", "n") and el.get("value"):
            return (cfg.parent / str(el.get("value")).split(",")[0]).resolve()
    raise BenchError(f"{cfg}: no net-file in the configuration")


def _gives(sumo_args: Sequence[str], *names: str) -> bool:
    return any(a.lstrip("-").split("=")[0] in names for a in sumo_args if a.startswith("-"))


def sumo_command(cfg: Path, seed: int | None, sumo_args: Sequence[str]) -> list[str]:
    cmd = [binary("sumo"), "-c", str(cfg)]
    if seed is not None and not _gives(sumo_args, "seed", "random"):
        cmd += ["--seed", str(seed)]
    if not _gives(
        sumo_args, "device.tripinfo.probability", "tripinfo-output", "duration-log.statistics"
    ):
        cmd += ["--device.tripinfo.probability", "1"]
    return cmd + list(sumo_args)


def build_controllers(
    models: dict[str, JunctionModel], controller: str, *, dual_ring: bool = False
) -> dict[str, JunctionControl]:
    out: dict[str, JunctionControl] = {}
    for tls_id, model in models.items():
        if controller in EDGECTL_CONTROLLERS:
            out[tls_id] = EdgectlJunction(
                model, EDGECTL_CONTROLLERS[controller], dual_ring=dual_ring
            )
        elif controller in SUMO_CONTROLLERS:
            out[tls_id] = SumoProgram(model, controller.split(":", 1)[1])
        else:
            raise BenchError(f"unknown controller {controller!r}; one of {', '.join(CONTROLLERS)}")
    return out


# ------------------------------------------------------------------ the run


class _Metrics:
    """Per-vehicle stops and per-approach delay from subscriptions."""

    def __init__(self, ls: ModuleType, approaches: dict[str, str]) -> None:
        self.ls = ls
        self.approaches = approaches  # incoming edge id → tls id
        c = ls.constants
        self.vars = (c.VAR_ROAD_ID, c.VAR_TIMELOSS, c.VAR_SPEED)
        self.state: dict[str, tuple[str, float, float, bool, int]] = {}
        # vid → (road, time loss at entry of road, last time loss, stopped, stops)
        self.stops_done: list[int] = []
        self.approach_sum: dict[str, float] = {}
        self.approach_n: dict[str, int] = {}
        self.teleports = 0
        self.collisions = 0
        self.departed = 0
        self.arrived = 0

    def after_step(self) -> None:
        ls = self.ls
        c = ls.constants
        self.teleports += ls.simulation.getStartingTeleportNumber()
        self.collisions += ls.simulation.getCollidingVehiclesNumber()
        for vid in ls.simulation.getDepartedIDList():
            self.departed += 1
            ls.vehicle.subscribe(vid, self.vars)
        for vid in ls.simulation.getArrivedIDList():
            self.arrived += 1
            st = self.state.pop(vid, None)
            if st is not None:
                self._leave(st[0], st[2] - st[1])
                self.stops_done.append(st[4])
        for vid, res in ls.vehicle.getAllSubscriptionResults().items():
            road, loss, speed = res[c.VAR_ROAD_ID], res[c.VAR_TIMELOSS], res[c.VAR_SPEED]
            prev = self.state.get(vid)
            if prev is None:
                self.state[vid] = (road, loss, loss, speed < 0.1, int(speed < 0.1))
                continue
            p_road, p_entry, _, p_stopped, stops = prev
            stopped = speed < 0.1
            if stopped and not p_stopped:
                stops += 1
            if road != p_road and not road.startswith(":"):
                self._leave(p_road, loss - p_entry)
                self.state[vid] = (road, loss, loss, stopped, stops)
            else:
                self.state[vid] = (p_road, p_entry, loss, stopped, stops)

    def _leave(self, road: str, lost: float) -> None:
        tls = self.approaches.get(road)
        if tls is None:
            return
        key = f"{tls}/{road}"
        self.approach_sum[key] = self.approach_sum.get(key, 0.0) + lost
        self.approach_n[key] = self.approach_n.get(key, 0) + 1

    def approach_delays(self) -> dict[str, float]:
        return {
            k: round(self.approach_sum[k] / n, 2) for k, n in sorted(self.approach_n.items()) if n
        }


def _tripinfo(ls: ModuleType, name: str) -> float:
    try:
        return float(ls.simulation.getParameter("", f"device.tripinfo.{name}"))
    except ls.TraCIException:  # older SUMO or no trip completed
        return math.nan


def run_bench(
    cfg: Path,
    controller: str,
    *,
    seed: int | None = None,
    sumo_args: Sequence[str] = (),
    coordinate: bool = False,
    dual_ring: bool = True,
    permissive_lefts: bool = False,
) -> BenchResult:
    """Run ``controller`` on the scenario until the network is empty (or SUMO's end).

    ``coordinate``: pass projected arrivals between neighbouring junctions (``adaptive``).
    ``dual_ring``: run ``edgectl:*`` on the NEMA dual ring of four-arm junctions (see
    :class:`~edgectl.sumo.network.DualRing`), as a NEMA controller would; False: on the
    stages in one ring (what other junctions always get). SUMO's own controllers always run
    the stages. ``permissive_lefts``: lefts the network's program runs protected / permissive
    keep their permissive turns, for every controller (edgectl's dual ring: a flashing yellow
    arrow); by default they are protected only.
    """
    if controller not in CONTROLLERS:
        raise BenchError(f"unknown controller {controller!r}; one of {', '.join(CONTROLLERS)}")
    cfg = cfg.resolve()
    if not cfg.is_file():
        raise BenchError(f"{cfg}: no such file")
    net_path = scenario_net(cfg, sumo_args)
    models = derive_network(str(net_path), permissive_lefts=permissive_lefts)
    if not models:
        raise BenchError(f"{net_path}: no signalised junction")
    ls = load_libsumo()
    wall0 = time.perf_counter()
    ls.start(sumo_command(cfg, seed, sumo_args))
    try:
        loops = [
            (
                d,
                ls.inductionloop.getLaneID(d),
                ls.inductionloop.getPosition(d),
                ls.lane.getLength(ls.inductionloop.getLaneID(d)),
            )
            for d in ls.inductionloop.getIDList()
        ]
        step_s = float(ls.simulation.getDeltaT())
        models = {k: on_steps(attach_loops(m, loops), step_s) for k, m in models.items()}
        controls = build_controllers(models, controller, dual_ring=dual_ring)
        approaches = {
            ls.lane.getEdgeID(g.in_lane): tls for tls, m in models.items() for g in m.groups
        }
        metrics = _Metrics(ls, approaches)
        bus = NeighbourBus.build(ls, models, controls, dual_ring=dual_ring) if coordinate else None
        for c in controls.values():
            c.start(ls)
        end = ls.simulation.getEndTime()
        loop_ids = [loop.id for m in models.values() for loop in m.loops]
        t = ls.simulation.getTime()
        while ls.simulation.getMinExpectedNumber() > 0 and t < MAX_SIM_S:
            if end >= 0 and t >= end:
                break
            ls.simulationStep()
            t1 = ls.simulation.getTime()
            metrics.after_step()
            data = {d: ls.inductionloop.getVehicleData(d) for d in loop_ids}

            def presence(loop_id: str, now: float, data: dict[str, Any] = data) -> bool:
                for _vid, _len, entry, leave, _type in data[loop_id]:
                    if entry <= now and (leave < 0 or leave >= now - 1e-9):
                        return True
                return False

            for c in controls.values():
                c.advance(ls, t, t1, presence)
            if bus is not None:
                bus.after_step(t1, data)
            t = t1
        arrivals = int(_tripinfo(ls, "count")) if not math.isnan(_tripinfo(ls, "count")) else 0
        result_vals = {
            "time_loss_s": _tripinfo(ls, "timeLoss"),
            "waiting_s": _tripinfo(ls, "waitingTime"),
            "duration_s": _tripinfo(ls, "duration"),
            "depart_delay_s": _tripinfo(ls, "departDelay"),
        }
        pending = len(ls.simulation.getPendingVehicles())
        still = ls.vehicle.getIDCount()
        sim_end = ls.simulation.getTime()
    finally:
        ls.close()
    wall = time.perf_counter() - wall0
    delays = metrics.approach_delays()
    worst = max(delays, key=lambda k: delays[k]) if delays else None
    reasons = []
    if metrics.teleports:
        reasons.append(f"{metrics.teleports} teleport(s)")
    if metrics.collisions:
        reasons.append(f"{metrics.collisions} collision(s)")
    stops = metrics.stops_done
    return BenchResult(
        scenario=cfg.stem,
        controller=controller,
        seed=seed,
        valid=not reasons,
        invalid_reason="; ".join(reasons) or None,
        sim_end_s=sim_end,
        wall_s=round(wall, 3),
        loaded=metrics.departed + pending,  # vehicles of explicit routes load before step 1
        arrived=max(arrivals, metrics.arrived),
        all_arrived=pending == 0 and still == 0 and metrics.arrived == metrics.departed,
        teleports=metrics.teleports,
        collisions=metrics.collisions,
        time_loss_s=round(result_vals["time_loss_s"], 2),
        waiting_s=round(result_vals["waiting_s"], 2),
        duration_s=round(result_vals["duration_s"], 2),
        depart_delay_s=round(result_vals["depart_delay_s"], 2),
        stops=round(sum(stops) / len(stops), 3) if stops else 0.0,
        worst_approach=worst,
        worst_approach_delay_s=delays[worst] if worst else 0.0,
        approach_delay_s=delays,
        junctions={k: c.summary() for k, c in controls.items()},
    )
