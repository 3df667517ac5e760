"""What a bench run measures and returns.

From SUMO itself (the tripinfo device, on for every vehicle): mean time loss, waiting time,
trip duration and insertion delay of arrived vehicles; from subscriptions
(:class:`TrafficMetrics`): stops and the mean delay per approach (time lost on each signalised
incoming edge). A run with a teleport or a collision is not valid.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "OTHER",
    "BenchError",
    "BenchResult",
    "SumoTotals",
    "TrafficMetrics",
    "bench_result",
    "class_figures",
    "read_xml",
]


class BenchError(Exception):
    """The scenario cannot be benched (no net, no signalised junction, bad controller...)."""


def read_xml(path: Path, what: str) -> ET.Element:
    """The root element of one of the scenario's own XML files (``what``: "configuration",
    "route file"); a file that cannot be read or is not well-formed XML is a
    :class:`BenchError` naming it, not a traceback."""
    try:
        return ET.parse(path).getroot()  # noqa: S314 - the user's own local scenario file
    except ET.ParseError as exc:
        raise BenchError(f"{path}: the {what} is not well-formed XML ({exc})") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


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
    # tripinfo means per vehicle class: "emergency", "bus" and "other" (every other vehicle)
    time_loss_by_class_s: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    priority: dict[str, Any] = field(default_factory=dict)  # the GPS feed (edgectl.sumo.priority)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TrafficMetrics:
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


OTHER = "other"


def class_figures(path: Path, vclass: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Per vehicle class, from a tripinfo file: arrived vehicles and their mean time loss,
    waiting time and trip duration. ``vclass``: vehicle id → class for the classes reported
    apart (``emergency``, ``bus``); every other vehicle is ``other``."""
    import xml.etree.ElementTree as ET

    sums: dict[str, dict[str, float]] = {}
    for _event, el in ET.iterparse(path):  # noqa: S314 - SUMO's own output of this run
        if el.tag != "tripinfo":
            continue
        cls = vclass.get(el.get("id", ""), OTHER)
        acc = sums.setdefault(cls, {"n": 0.0, "time_loss_s": 0.0, "waiting_s": 0.0})
        acc["n"] += 1
        acc["time_loss_s"] += float(el.get("timeLoss", "0"))
        acc["waiting_s"] += float(el.get("waitingTime", "0"))
        acc.setdefault("duration_s", 0.0)
        acc["duration_s"] += float(el.get("duration", "0"))
        el.clear()
    out: dict[str, dict[str, float]] = {}
    for cls, acc in sorted(sums.items()):
        n = acc.pop("n")
        out[cls] = {"arrived": int(n), **{k: round(v / n, 2) for k, v in acc.items()}}
    return out


def _tripinfo(ls: ModuleType, name: str) -> float:
    try:
        return float(ls.simulation.getParameter("", f"device.tripinfo.{name}"))
    except ls.TraCIException:  # older SUMO or no trip completed
        return math.nan


@dataclass(frozen=True, slots=True)
class SumoTotals:
    """SUMO's own figures at the end of a run (tripinfo means over arrived vehicles)."""

    arrived: int
    time_loss_s: float
    waiting_s: float
    duration_s: float
    depart_delay_s: float
    pending: int  # vehicles still waiting to be inserted
    running: int  # vehicles still in the network
    sim_end_s: float

    @classmethod
    def read(cls, ls: ModuleType) -> SumoTotals:
        count = _tripinfo(ls, "count")
        return cls(
            arrived=int(count) if not math.isnan(count) else 0,
            time_loss_s=_tripinfo(ls, "timeLoss"),
            waiting_s=_tripinfo(ls, "waitingTime"),
            duration_s=_tripinfo(ls, "duration"),
            depart_delay_s=_tripinfo(ls, "departDelay"),
            pending=len(ls.simulation.getPendingVehicles()),
            running=ls.vehicle.getIDCount(),
            sim_end_s=ls.simulation.getTime(),
        )


def bench_result(
    *,
    scenario: str,
    controller: str,
    seed: int | None,
    wall_s: float,
    metrics: TrafficMetrics,
    totals: SumoTotals,
    junctions: dict[str, dict[str, Any]],
    classes: dict[str, dict[str, float]] | None = None,
    priority: dict[str, Any] | None = None,
) -> BenchResult:
    """The result of a finished run."""
    delays = metrics.approach_delays()
    worst = max(delays, key=lambda k: delays[k]) if delays else None
    reasons = []
    if metrics.teleports:
        reasons.append(f"{metrics.teleports} teleport(s)")
    if metrics.collisions:
        reasons.append(f"{metrics.collisions} collision(s)")
    stops = metrics.stops_done
    return BenchResult(
        scenario=scenario,
        controller=controller,
        seed=seed,
        valid=not reasons,
        invalid_reason="; ".join(reasons) or None,
        sim_end_s=totals.sim_end_s,
        wall_s=round(wall_s, 3),
        loaded=metrics.departed + totals.pending,  # explicit routes load before step 1
        arrived=max(totals.arrived, metrics.arrived),
        all_arrived=totals.pending == 0
        and totals.running == 0
        and metrics.arrived == metrics.departed,
        teleports=metrics.teleports,
        collisions=metrics.collisions,
        time_loss_s=round(totals.time_loss_s, 2),
        waiting_s=round(totals.waiting_s, 2),
        duration_s=round(totals.duration_s, 2),
        depart_delay_s=round(totals.depart_delay_s, 2),
        stops=round(sum(stops) / len(stops), 3) if stops else 0.0,
        worst_approach=worst,
        worst_approach_delay_s=delays[worst] if worst else 0.0,
        approach_delay_s=delays,
        junctions=junctions,
        time_loss_by_class_s={k: v["time_loss_s"] for k, v in (classes or {}).items()},
        classes=classes or {},
        priority=priority or {},
    )
