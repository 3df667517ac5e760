"""Derive each signalised junction's control model from a SUMO network.

For every traffic-light system (tls) of the network:

- **signal groups** are the tls link indices (one per controlled connection); each becomes a
  load-switch channel;
- **conflicts** come from SUMO's own junction logic: two groups conflict when their
  connections are foes in the junction's ``<request>`` table;
- **stages** (the phases of the generated configuration) are taken from the tls's default
  program — every green state minus its permissive movements (a ``g`` that is a foe of a
  ``G``) — or, when the network has no program, by clustering compatible groups; a group
  green in several stages becomes an overlap channel;
- **detectors**: every E1 loop on an incoming lane is assigned to the stages that serve that
  lane; a loop within 15 m of the stop line is a stop-bar presence loop, one further upstream
  an advance loop;
- **clearances** by the ITE formulas from the approach lane speeds and the crossing distance,
  clamped to the kernel bounds (yellow 3–6 s, red clearance 0–6 s); the bench then rounds
  them up to whole simulation steps (:func:`on_steps`), as SUMO shows a state for whole steps.

The result (:class:`JunctionModel`, :mod:`edgectl.sumo.model`) turns into an
:class:`edgectl.config.model.Config` with one ring of stages and a barrier after each stage,
so the daemon's own engine and safety kernel run it unchanged. Stages, clearances and the
NEMA layout are derived in :mod:`edgectl.sumo.stages`. Nothing here imports libsumo;
``sumolib`` reads the net file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgectl.sumo.model import JunctionModel, Loop, SignalGroup
from edgectl.sumo.result import BenchError, read_xml
from edgectl.sumo.stages import (
    cluster_compatible,
    derive_dual_ring,
    derive_stages_from_states,
    on_steps,
    timed_stages,
)

# on_steps is imported from here by the bench scripts and the docs
__all__ = [
    "MAX_CHANNELS",
    "MAX_DETECTORS",
    "MAX_STAGES",
    "JunctionModel",
    "attach_loops",
    "derive_network",
    "on_steps",
]

MAX_STAGES = 16
MAX_CHANNELS = 32
MAX_DETECTORS = 64


def derive_network(net_path: str, *, permissive_lefts: bool = False) -> dict[str, JunctionModel]:
    """Read a net file (and its loops later, see :func:`attach_loops`) into junction models.

    ``permissive_lefts``: keep the permissive (``g``) turns of lefts the program also protects
    (see :func:`derive_stages_from_states`); by default they are protected only."""
    import sumolib

    try:
        net = sumolib.net.readNet(net_path, withPrograms=True, withFoes=True)
    except Exception as exc:  # noqa: BLE001 - sumolib fails with whatever a bad file trips
        read_xml(Path(net_path), "net file")  # unreadable, not XML: says so
        raise BenchError(
            f"{net_path}: not a SUMO net ({type(exc).__name__}: {exc}); netconvert writes one"
        ) from None
    models: dict[str, JunctionModel] = {}
    for tls in net.getTrafficLights():
        models[tls.getID()] = _derive_tls(net, tls, permissive_lefts=permissive_lefts)
    _link_neighbours(net, models)
    return models


def _derive_tls(net: Any, tls: Any, *, permissive_lefts: bool = False) -> JunctionModel:
    tls_id = tls.getID()
    by_index: dict[int, Any] = {}
    for in_lane, out_lane, index in tls.getConnections():
        by_index.setdefault(index, (in_lane, out_lane))
    n_links = max(by_index) + 1 if by_index else 0
    if n_links > MAX_CHANNELS:
        raise ValueError(f"tls {tls_id}: {n_links} signal groups, at most {MAX_CHANNELS}")
    # connection objects per tls index, for foes and direction
    conns: dict[int, list[Any]] = {i: [] for i in range(n_links)}
    for edge in tls.getEdges():
        for lane in edge.getLanes():
            for conn in lane.getOutgoing():
                if conn.getTLSID() == tls_id and conn.getTLLinkIndex() >= 0:
                    conns[conn.getTLLinkIndex()].append(conn)
    conflicts = _foes(conns)
    groups = _signal_groups(tls_id, by_index, conns)
    states, greens = _program_greens(tls)
    stage_sets = (
        derive_stages_from_states(states, n_links, conflicts, permissive_lefts=permissive_lefts)
        if states
        else [(g, frozenset[int]()) for g in cluster_compatible(range(n_links), conflicts)]
    )
    if len(stage_sets) > MAX_STAGES:
        raise ValueError(f"tls {tls_id}: {len(stage_sets)} stages, at most {MAX_STAGES}")
    stages = timed_stages(stage_sets, groups, states, greens)
    headings: dict[str, float] = {}
    for in_lane, _out, _i in tls.getConnections():
        shape = in_lane.getShape()
        (x0, y0), (x1, y1) = shape[-2][:2], shape[-1][:2]
        headings[in_lane.getEdge().getID()] = math.atan2(y1 - y0, x1 - x0)
    edge_of = {g.index: net.getLane(g.in_lane).getEdge().getID() for g in groups}
    return JunctionModel(
        tls_id=tls_id,
        groups=tuple(groups),
        conflicts=conflicts,
        stages=tuple(stages),
        loops=(),
        dual_ring=derive_dual_ring(groups, conflicts, stages, edge_of, headings),
    )


def _foes(conns: dict[int, list[Any]]) -> frozenset[tuple[int, int]]:
    """Signal group pairs (both orders) whose connections are foes in the junction logic."""
    n_links = len(conns)
    conflicts: set[tuple[int, int]] = set()
    for a in range(n_links):
        for b in range(n_links):
            if a == b:
                continue
            for ca in conns[a]:
                for cb in conns[b]:
                    if ca.getFrom().getToNode() is not cb.getFrom().getToNode():
                        continue
                    node = ca.getFrom().getToNode()
                    ia, ib = node.getLinkIndex(ca), node.getLinkIndex(cb)
                    if ia < 0 or ib < 0:
                        continue
                    if node.areFoes(ia, ib) or node.areFoes(ib, ia):
                        conflicts.add((a, b))
                        conflicts.add((b, a))
    return frozenset(conflicts)


def _signal_groups(
    tls_id: str, by_index: dict[int, Any], conns: dict[int, list[Any]]
) -> list[SignalGroup]:
    groups = []
    for i in range(len(conns)):
        in_lane, out_lane = by_index.get(i, (None, None))
        if in_lane is None:
            raise ValueError(f"tls {tls_id}: link index {i} controls no connection")
        direction = conns[i][0].getDirection() if conns[i] else "s"
        stop = in_lane.getShape()[-1]
        far = out_lane.getShape()[0]
        groups.append(
            SignalGroup(
                index=i,
                in_lane=in_lane.getID(),
                out_lane=out_lane.getID(),
                direction=direction,
                speed_kmh=in_lane.getSpeed() * 3.6,
                crossing_m=math.dist(stop[:2], far[:2]),
            )
        )
    return groups


def _program_greens(tls: Any) -> tuple[list[str], list[float]]:
    """The green states of the tls's default program and their durations."""
    programs = tls.getPrograms()
    states: list[str] = []
    greens: list[float] = []
    if programs:
        program = programs[sorted(programs)[0]]
        for ph in program.getPhases():
            if "G" in ph.state or "g" in ph.state:
                states.append(ph.state)
                greens.append(float(ph.duration))
    return states, greens


def _link_neighbours(net: Any, models: dict[str, JunctionModel]) -> None:
    """Record, per junction, which incoming lanes come straight from an upstream tls."""
    for tls_id, model in list(models.items()):
        up: dict[str, list[str]] = {}
        for lane_id in sorted({g.in_lane for g in model.groups}):
            edge = net.getLane(lane_id).getEdge()
            src = edge.getFromNode()
            src_tls = src.getID() if src.getID() in models else None
            if src_tls is None:
                for other in models:
                    if src.getType() == "traffic_light" and other == src.getID():
                        src_tls = other
            if src_tls is not None and src_tls != tls_id:
                up.setdefault(src_tls, []).append(lane_id)
        object.__setattr__(model, "neighbours_up", {k: tuple(v) for k, v in up.items()})


def attach_loops(
    model: JunctionModel, loops: Iterable[tuple[str, str, float, float]]
) -> JunctionModel:
    """Assign E1 loops ``(id, lane, position, lane length)`` on the junction's incoming lanes."""
    in_lanes = {g.in_lane for g in model.groups}
    chosen = sorted(
        ((lid, lane, length - pos) for lid, lane, pos, length in loops if lane in in_lanes),
        key=lambda t: (t[1], t[2], t[0]),
    )
    result: list[Loop] = []
    for lid, lane, dist in chosen:
        stages = model.lane_stages(lane)
        if not stages or len(result) >= MAX_DETECTORS:
            continue
        result.append(
            Loop(id=lid, lane=lane, distance_m=dist, detector_id=len(result) + 1, stages=stages)
        )
    return dataclasses.replace(model, loops=tuple(result))
