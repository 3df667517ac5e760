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

The controllers live in :mod:`edgectl.sumo.controls`, the measurements and the result JSON in
:mod:`edgectl.sumo.result`, the neighbour projections in :mod:`edgectl.sumo.neighbours`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from edgectl.sumo._env import binary, load_libsumo
from edgectl.sumo.controls import (
    CONTROLLERS,
    EDGECTL_CONTROLLERS,
    JunctionControl,
    build_controllers,
)
from edgectl.sumo.model import JunctionModel
from edgectl.sumo.neighbours import NeighbourBus
from edgectl.sumo.network import attach_loops, derive_network, on_steps
from edgectl.sumo.priority import TSP_PLAN, FeedParams, PriorityFeed
from edgectl.sumo.result import (
    BenchError,
    BenchResult,
    SumoTotals,
    TrafficMetrics,
    bench_result,
    class_figures,
    read_xml,
)
from edgectl.sumo.zones import ZoneDegrade, ZoneFeed, zones_of

__all__ = [
    "CONTROLLERS",
    "MAX_SIM_S",
    "BenchError",
    "BenchResult",
    "run_bench",
    "scenario_net",
    "sumo_command",
]

# SUMO's programs timed by Webster unless ``peer_timing="default"`` (the network's splits)
WEBSTER_PEERS = ("sumo:static", "sumo:actuated", "sumo:delay_based")
MAX_SIM_S = 86400.0  # a scenario that never empties stops after a simulated day


def scenario_net(cfg: Path, sumo_args: Sequence[str]) -> Path:
    """The net file SUMO will load: ``-n/--net-file`` after ``--`` wins over the sumocfg."""
    for i, a in enumerate(sumo_args):
        if a in ("-n", "--net-file") and i + 1 < len(sumo_args):
            return Path(sumo_args[i + 1])
        if a.startswith("--net-file="):
            return Path(a.split("=", 1)[1])
    root = read_xml(cfg, "configuration")
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


def run_bench(
    cfg: Path,
    controller: str,
    *,
    seed: int | None = None,
    sumo_args: Sequence[str] = (),
    coordinate: bool = False,
    dual_ring: bool = True,
    permissive_lefts: bool = False,
    priority: bool = True,
    feed: FeedParams | None = None,
    control: Mapping[str, object] | None = None,
    plan: Mapping[str, object] | None = None,
    peer_timing: str = "webster",
    peer_demand: Sequence[Path] | None = None,
    zones: bool = True,
    zone_degrade: ZoneDegrade | None = None,
) -> BenchResult:
    """Run ``controller`` on the scenario until the network is empty (or SUMO's end).

    ``coordinate``: pass projected arrivals between neighbouring junctions (``adaptive``).
    ``dual_ring``: run ``edgectl:*`` on the NEMA dual ring of four-arm junctions (see
    :class:`~edgectl.sumo.model.DualRing`), as a NEMA controller would; False: on the
    stages in one ring (what other junctions always get). SUMO's own controllers always run
    the stages. ``permissive_lefts``: lefts the network's program runs protected / permissive
    keep their permissive turns, for every controller (edgectl's dual ring: a flashing yellow
    arrow); by default they are protected only. ``priority``: feed the priority requests of
    emergency vehicles and buses (:mod:`edgectl.sumo.priority`, parameters ``feed``); False
    (``--no-priority``) tracks and measures the same vehicles and sends nothing.
    ``control`` / ``plan``: ``[control]`` settings and plan fields of every ``edgectl:*``
    junction (e.g. ``priority_flush_s``, ``tsp_max_early_s``) over the derived
    configuration's; with ``priority`` the plans have TSP enabled with the bench's bounds
    (:data:`~edgectl.sumo.priority.TSP_PLAN`) unless ``plan`` says otherwise.
    ``peer_timing``: ``"webster"`` times ``sumo:static`` / ``sumo:actuated`` /
    ``sumo:delay_based`` by Webster for the scenario's peak flows
    (:mod:`edgectl.sumo.webster`); ``"default"`` runs them on the network's own,
    demand-blind splits and the derived min / max greens (the bench before issue 19).
    ``peer_demand``: the route files Webster reads (flows, or single vehicles counted per
    15 minutes; by default the ones SUMO loads), e.g. a scenario's flows while SUMO runs
    the same demand written out as vehicles.
    ``zones``: every E2 detector on a signalised incoming lane is a zone sensor of
    ``edgectl:*`` junctions (:mod:`edgectl.sumo.zones`; a scenario without E2 runs on its
    loops alone), made worse by ``zone_degrade``; False: loops alone.
    """
    if controller not in CONTROLLERS:
        raise BenchError(f"unknown controller {controller!r}; one of {', '.join(CONTROLLERS)}")
    if peer_timing not in ("webster", "default"):
        raise BenchError(f"unknown peer timing {peer_timing!r}; webster or default")
    cfg = cfg.resolve()
    if not cfg.is_file():
        raise BenchError(f"{cfg}: no such file")
    net_path = scenario_net(cfg, sumo_args)
    models = derive_network(str(net_path), permissive_lefts=permissive_lefts)
    if not models:
        raise BenchError(f"{net_path}: no signalised junction")
    ls = load_libsumo()
    with tempfile.TemporaryDirectory(prefix="edgectl-bench-") as tmp:
        trips = _tripinfo_output(sumo_args)
        extra: list[str] = []
        if trips is None:  # per-class figures come from SUMO's tripinfo of every vehicle
            trips = Path(tmp) / "tripinfo.xml"
            extra = ["--tripinfo-output", str(trips)]
        wall0 = time.perf_counter()
        ls.start(sumo_command(cfg, seed, [*sumo_args, *extra]))
        try:
            models = _with_loops(ls, models)
            if peer_timing == "webster" and controller in WEBSTER_PEERS:
                # SUMO's own programs timed by Webster for the scenario's peak demand
                from edgectl.sumo.webster import timed_models

                models, _timings = timed_models(
                    cfg, net_path, models, sumo_args=sumo_args, route_files=peer_demand
                )
            plan_fields = {**(TSP_PLAN if priority else {"tsp_enabled": False}), **(plan or {})}
            sensors = (
                zones_of(ls, models, dual_ring=dual_ring, degrade=zone_degrade)
                if zones and controller in EDGECTL_CONTROLLERS
                else {}
            )
            controls = build_controllers(
                models,
                controller,
                dual_ring=dual_ring,
                control=control,
                plan=plan_fields,
                zones={k: [z.zone for z in v] for k, v in sensors.items()},
            )
            zone_feed = ZoneFeed(sensors, controls, zone_degrade) if sensors else None
            approaches = {
                ls.lane.getEdgeID(g.in_lane): tls for tls, m in models.items() for g in m.groups
            }
            metrics = TrafficMetrics(ls, approaches)
            bus = (
                NeighbourBus.build(ls, models, controls, dual_ring=dual_ring)
                if coordinate
                else None
            )
            gps = PriorityFeed(
                ls, models, controls, dual_ring=dual_ring, enabled=priority, params=feed
            )
            _simulate(ls, models, controls, metrics, bus, gps=gps, zones=zone_feed)
            totals = SumoTotals.read(ls)
        finally:
            ls.close()
        classes = class_figures(trips, gps.vclass) if trips.is_file() else {}
    return bench_result(
        scenario=cfg.stem,
        controller=controller,
        seed=seed,
        wall_s=time.perf_counter() - wall0,
        metrics=metrics,
        totals=totals,
        junctions={k: c.summary() for k, c in controls.items()},
        classes=classes,
        priority=gps.summary(),
    )


def _tripinfo_output(sumo_args: Sequence[str]) -> Path | None:
    """The tripinfo file the user asked SUMO for after ``--``, if any."""
    for i, a in enumerate(sumo_args):
        if a == "--tripinfo-output" and i + 1 < len(sumo_args):
            return Path(sumo_args[i + 1])
        if a.startswith("--tripinfo-output="):
            return Path(a.split("=", 1)[1])
    return None


def _with_loops(ls: ModuleType, models: Mapping[str, JunctionModel]) -> dict[str, JunctionModel]:
    """The models with the scenario's E1 loops and clearances on whole simulation steps."""
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
    return {k: on_steps(attach_loops(m, loops), step_s) for k, m in models.items()}


def _simulate(
    ls: ModuleType,
    models: Mapping[str, JunctionModel],
    controls: Mapping[str, JunctionControl],
    metrics: TrafficMetrics,
    bus: NeighbourBus | None,
    *,
    gps: PriorityFeed | None = None,
    zones: ZoneFeed | None = None,
) -> None:
    """Step SUMO until the network is empty (or SUMO's end), the controllers in the loop."""
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
        if zones is not None:  # this step's measurement reaches the next step's ticks
            zones.after_step(ls, t1)
        if bus is not None:
            bus.after_step(t1, data)
        if gps is not None:
            gps.after_step(t1)
        t = t1
    if gps is not None:
        gps.close(t)
