"""Held-out SUMO scenarios: networks the adaptive strategy was never tuned on (issue 19).

    python -m bench.scenarios.heldout KIND VARIANT [--root DIR]

The outside judges measure ``edgectl:adaptive`` on scenarios "built the same way" as ours but
unseen. This module draws such scenarios: for each kind of :mod:`bench.scenarios.build`'s
issue-19 set (``isolated``, ``tee``, ``saturated``, ``arterial``, ``grid2x2``) and an integer
``variant``, ``random.Random(variant)`` draws the geometry (arm lengths 200–500 m, 2–3 lanes
in with a protected left lane, 1–2 on a T's stem, junction spacing 200–450 m) and the demand
(three periods of 5–8 min with tides, unbalanced side streets, 10–40 % lefts). The demand
level is set on Webster's critical flow ratio ``Y`` (:mod:`edgectl.sumo.webster`, the same
computation that times the bench's SUMO peers): the drawn flows are scaled until the busiest
junction's peak ``Y`` equals a drawn target (0.5–0.9 by kind), never above :data:`Y_MAX`, so
no variant is oversaturated by construction.

Single-lane approaches only on a T's stem (which has no opposing traffic): on a four-arm
junction netconvert runs the left of a shared single lane as a permissive ``g`` in the
through stage and protected in the opposing left's stage; the bench derives protected-only
stages by default (:func:`edgectl.sumo.network.derive_network`), so a left-turner at the head
of the lane blocks it for the whole through stage and every controller, SUMO's included,
queues for minutes at 200 veh/h (seen on the first draw of ``arterial`` 101 / 102, with a
teleport): a scenario of the bench's stage derivation rather than of the controller.

The files are written by :mod:`bench.scenarios.build`'s own writers (plain files +
netconvert, E1 loops 3 m and 40 m before the stop line, E2 zones stop line to 150 m, SUMO at
1 s): :func:`build_heldout`. Same ``(kind, variant)`` → the same files (netconvert's header
comment aside).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scenarios.build import (
    Flow,
    Layout,
    netconvert,
    write_cfg,
    write_loops,
    write_plain,
    write_routes,
    write_zones,
)

__all__ = [
    "KINDS",
    "STEP_S",
    "Y_MAX",
    "Y_TARGETS",
    "build_heldout",
    "heldout",
    "peak_y",
    "scenario_name",
]

STEP_S = 1.0  # the judges' step length (issue 19)
Y_MAX = 0.92  # never above this: every vehicle must be able to arrive
# the busiest junction's peak Webster Y is drawn in these ranges
Y_TARGETS: dict[str, tuple[float, float]] = {
    "isolated": (0.55, 0.85),
    "tee": (0.5, 0.8),
    "saturated": (0.82, 0.9),
    "arterial": (0.55, 0.8),
    "grid2x2": (0.5, 0.75),
}
PERIODS = 3
Profile = tuple[float, ...]  # per period, a multiple of the approach's base rate


def scenario_name(kind: str, variant: int) -> str:
    return f"{kind}_h{variant}"


# ---------------------------------------------------------------- drawing


def _profile(rng: random.Random, peak: int | None = None) -> Profile:
    """A tide: 1.0 in the peak period, 0.45–0.85 in the others."""
    top = rng.randrange(PERIODS) if peak is None else peak
    return tuple(1.0 if k == top else round(rng.uniform(0.45, 0.85), 2) for k in range(PERIODS))


def _tides(rng: random.Random) -> tuple[Profile, Profile]:
    """Profiles of the two directions of a main road: they peak in different periods."""
    first = rng.randrange(PERIODS)
    second = rng.choice([k for k in range(PERIODS) if k != first])
    return _profile(rng, first), _profile(rng, second)


def _turns(rng: random.Random, left: tuple[float, float] = (0.10, 0.40)) -> tuple[float, float]:
    """Left and right shares of an approach."""
    return round(rng.uniform(*left), 2), round(rng.uniform(0.05, 0.20), 2)


@dataclass(frozen=True)
class _Demand:
    """One origin → destination stream before the demand level is set."""

    origin: str
    dest: str
    rate: float  # relative
    profile: Profile


def _flows(demand: Sequence[_Demand], scale: float, period_s: float) -> list[Flow]:
    flows = []
    for d in demand:
        periods = [
            (k * period_s, (k + 1) * period_s, float(round(d.rate * scale * m)))
            for k, m in enumerate(d.profile)
        ]
        flows.append(Flow(d.origin, d.dest, periods))
    return flows


# ---------------------------------------------------------------- single junctions

_LEFT_OF = {"N": "E", "E": "S", "S": "W", "W": "N"}  # heading away from arm X, the left exit
_RIGHT_OF = {v: k for k, v in _LEFT_OF.items()}
_OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
_AT = {"N": (0.0, 1.0), "S": (0.0, -1.0), "E": (1.0, 0.0), "W": (-1.0, 0.0)}


def _junction(
    rng: random.Random,
    arms: dict[str, int],
    weights: dict[str, float],
    profiles: dict[str, Profile],
    left: tuple[float, float],
) -> tuple[Layout, list[_Demand]]:
    """A signalised junction C with the given arms (arm → lanes in), each 200–500 m long.

    Lanes out of C on an arm: at least the through lanes of the approach heading into it.
    Every approach turns left and right where the arm exists, through where the opposite
    one does; an approach with no through movement (a T's stem) splits left / right."""
    nodes: dict[str, tuple[float, float, bool]] = {"C": (0.0, 0.0, True)}
    roads: list[tuple[str, str, int, int]] = []
    for arm, lanes_in in arms.items():
        length = float(round(rng.uniform(200.0, 500.0)))
        dx, dy = _AT[arm]
        nodes[arm] = (dx * length, dy * length, False)
        feeding = arms.get(_OPPOSITE[arm], 1)
        lanes_out = max(1, feeding - 1, min(2, lanes_in))
        roads.append((arm, "C", lanes_in, lanes_out))
    demand: list[_Demand] = []
    for arm in arms:
        lt, rt = _turns(rng, left)
        moves = {
            _LEFT_OF[arm]: lt,
            _RIGHT_OF[arm]: rt,
            _OPPOSITE[arm]: 1.0 - lt - rt,
        }
        moves = {d: s for d, s in moves.items() if d in arms}
        total = sum(moves.values())
        for dest, share in moves.items():
            rate = weights[arm] * share / total
            demand.append(_Demand(f"{arm}_C", f"C_{dest}", rate, profiles[arm]))
    return Layout(nodes=nodes, roads=roads), demand


def _isolated(rng: random.Random, *, saturated: bool) -> tuple[Layout, list[_Demand]]:
    main = rng.choice([("W", "E"), ("N", "S")])
    side = tuple(a for a in "NSEW" if a not in main)
    if saturated:  # two major roads, protected lefts everywhere, heavy lefts
        arms = {a: rng.choice([2, 3, 3]) for a in "NSEW"}
        weights = {a: arms[a] * rng.uniform(0.7, 1.0) for a in "NSEW"}
        left = (0.25, 0.40)
    else:  # a main street and unbalanced side streets, 2–3 lanes in
        arms = {a: rng.choice([2, 3]) if a in main else rng.choice([2, 2, 3]) for a in "NSEW"}
        weights = {a: arms[a] * rng.uniform(0.8, 1.2) for a in main}
        weights |= {a: arms[a] * rng.uniform(0.2, 0.7) for a in side}
        left = (0.10, 0.40)
    a, b = _tides(rng)
    profiles = {main[0]: a, main[1]: b, side[0]: _profile(rng), side[1]: _profile(rng)}
    order = "NSEW"
    return _junction(rng, {k: arms[k] for k in order}, weights, profiles, left)


def _tee(rng: random.Random) -> tuple[Layout, list[_Demand]]:
    stem = rng.choice("NSEW")
    main = tuple(a for a in "NSEW" if a in (_LEFT_OF[stem], _RIGHT_OF[stem]))
    arms = {a: rng.choice([2, 2, 3]) for a in main}
    arms[stem] = rng.choice([1, 2, 2])
    weights = {a: max(1, arms[a] - 1) * rng.uniform(0.8, 1.2) for a in main}
    weights[stem] = arms[stem] * rng.uniform(0.3, 0.8)
    a, b = _tides(rng)
    profiles = {main[0]: a, main[1]: b, stem: _profile(rng)}
    return _junction(rng, {k: arms[k] for k in "NSEW" if k in arms}, weights, profiles, (0.1, 0.4))


# ---------------------------------------------------------------- networks


def _arterial(rng: random.Random) -> tuple[Layout, list[_Demand]]:
    """Three junctions 200–450 m apart on an east-west arterial, side streets at each."""
    xs = [0.0]
    for _ in range(2):
        xs.append(xs[-1] + float(round(rng.uniform(200.0, 450.0))))
    main_in = rng.choice([2, 3, 3])
    nodes: dict[str, tuple[float, float, bool]] = {
        "W": (-float(round(rng.uniform(250.0, 450.0))), 0.0, False),
        "E": (xs[-1] + float(round(rng.uniform(250.0, 450.0))), 0.0, False),
    }
    roads: list[tuple[str, str, int, int]] = []
    side_in: dict[str, int] = {}
    for i, x in enumerate(xs, start=1):
        nodes[f"J{i}"] = (x, 0.0, True)
        nodes[f"N{i}"] = (x, float(round(rng.uniform(200.0, 400.0))), False)
        nodes[f"S{i}"] = (x, -float(round(rng.uniform(200.0, 400.0))), False)
        n_in, s_in = rng.choice([2, 2, 3]), rng.choice([2, 2, 3])
        side_in[f"N{i}"], side_in[f"S{i}"] = n_in, s_in
        roads.append((f"N{i}", f"J{i}", n_in, max(1, s_in - 1)))
        roads.append((f"J{i}", f"S{i}", max(1, n_in - 1), s_in))
    main = ["W", "J1", "J2", "J3", "E"]
    roads += [(a, b, main_in, main_in) for a, b in itertools.pairwise(main)]
    east, west = _tides(rng)
    demand: list[_Demand] = []
    for origin, exit_, prof, order, left_side in (
        ("W_J1", "J3_E", east, (1, 2, 3), "N"),
        ("E_J3", "J1_W", west, (3, 2, 1), "S"),
    ):
        remaining = (main_in - 1) * rng.uniform(0.8, 1.2)
        right_side = "S" if left_side == "N" else "N"
        for i in order:
            lt, rt = _turns(rng, (0.08, 0.25))
            demand.append(_Demand(origin, f"J{i}_{left_side}{i}", remaining * lt, prof))
            demand.append(_Demand(origin, f"J{i}_{right_side}{i}", remaining * rt, prof))
            remaining *= 1.0 - lt - rt
        demand.append(_Demand(origin, exit_, remaining, prof))
    for i in (1, 2, 3):
        for side, through, left_exit, right_exit in (
            ("N", f"J{i}_S{i}", "J3_E", "J1_W"),
            ("S", f"J{i}_N{i}", "J1_W", "J3_E"),
        ):
            origin = f"{side}{i}_J{i}"
            weight = side_in[f"{side}{i}"] * rng.uniform(0.15, 0.6)
            lt, rt = _turns(rng)
            prof = _profile(rng)
            demand.append(_Demand(origin, through, weight * (1 - lt - rt), prof))
            demand.append(_Demand(origin, left_exit, weight * lt, prof))
            demand.append(_Demand(origin, right_exit, weight * rt, prof))
    return Layout(nodes=nodes, roads=roads), demand


def _grid(rng: random.Random) -> tuple[Layout, list[_Demand]]:
    """A 2 × 2 grid, columns 200–450 m apart and rows 200–450 m apart; streets (rows) and
    avenues (columns) 2–3 lanes in. Trips: through, or a turn towards the near edge of the
    grid at either junction, or towards the far edge at the first (every route unique)."""
    sx = float(round(rng.uniform(200.0, 450.0)))
    sy = float(round(rng.uniform(200.0, 450.0)))
    row_in = {k: rng.choice([2, 3]) for k in (1, 2)}
    col_in = {k: rng.choice([2, 2, 3]) for k in (1, 2)}
    nodes: dict[str, tuple[float, float, bool]] = {}
    roads: list[tuple[str, str, int, int]] = []
    for r in (1, 2):
        for c in (1, 2):
            nodes[f"J{r}{c}"] = ((c - 1) * sx, -(r - 1) * sy, True)
    for k in (1, 2):
        nodes[f"N{k}"] = ((k - 1) * sx, float(round(rng.uniform(200.0, 400.0))), False)
        nodes[f"S{k}"] = ((k - 1) * sx, -sy - float(round(rng.uniform(200.0, 400.0))), False)
        nodes[f"W{k}"] = (-float(round(rng.uniform(200.0, 400.0))), -(k - 1) * sy, False)
        nodes[f"E{k}"] = (sx + float(round(rng.uniform(200.0, 400.0))), -(k - 1) * sy, False)
        row = [f"W{k}", f"J{k}1", f"J{k}2", f"E{k}"]
        col = [f"N{k}", f"J1{k}", f"J2{k}", f"S{k}"]
        roads += [(a, b, row_in[k], row_in[k]) for a, b in itertools.pairwise(row)]
        roads += [(a, b, col_in[k], col_in[k]) for a, b in itertools.pairwise(col)]
    demand: list[_Demand] = []

    def stream(
        origin: str, through: str, *, near: list[str], far: str, weight: float, prof: Profile
    ) -> None:
        lt, rt = _turns(rng)
        turning = lt + rt
        demand.append(_Demand(origin, through, weight * (1 - turning), prof))
        first, second = near
        split = rng.uniform(0.3, 0.7)
        # the turns towards the near edge (at either junction) and the far edge (the first)
        near_share = turning * rng.uniform(0.5, 0.8)
        demand.append(_Demand(origin, first, weight * near_share * split, prof))
        demand.append(_Demand(origin, second, weight * near_share * (1 - split), prof))
        demand.append(_Demand(origin, far, weight * (turning - near_share), prof))

    for k in (1, 2):
        j = 3 - k
        east, west = _tides(rng)
        south, north = _tides(rng)
        rw = (row_in[k] - 1) * rng.uniform(0.7, 1.2)
        cw = (col_in[k] - 1) * rng.uniform(0.5, 1.0)
        edge_row = "N" if k == 1 else "S"  # the grid edge next to row k
        edge_col = "W" if k == 1 else "E"  # the grid edge next to column k
        # eastbound on row k, then westbound
        stream(
            f"W{k}_J{k}1",
            f"J{k}2_E{k}",
            near=[f"J{k}1_{edge_row}1", f"J{k}2_{edge_row}2"],
            far=f"J{j}1_{'S' if k == 1 else 'N'}1",
            weight=rw,
            prof=east,
        )
        stream(
            f"E{k}_J{k}2",
            f"J{k}1_W{k}",
            near=[f"J{k}2_{edge_row}2", f"J{k}1_{edge_row}1"],
            far=f"J{j}2_{'S' if k == 1 else 'N'}2",
            weight=rw * rng.uniform(0.7, 1.1),
            prof=west,
        )
        # southbound on column k, then northbound
        stream(
            f"N{k}_J1{k}",
            f"J2{k}_S{k}",
            near=[f"J1{k}_{edge_col}1", f"J2{k}_{edge_col}2"],
            far=f"J1{j}_{'E' if k == 1 else 'W'}1",
            weight=cw,
            prof=south,
        )
        stream(
            f"S{k}_J2{k}",
            f"J1{k}_N{k}",
            near=[f"J2{k}_{edge_col}2", f"J1{k}_{edge_col}1"],
            far=f"J2{j}_{'E' if k == 1 else 'W'}2",
            weight=cw * rng.uniform(0.5, 1.1),
            prof=north,
        )
    return Layout(nodes=nodes, roads=roads), demand


_DRAW: dict[str, Callable[[random.Random], tuple[Layout, list[_Demand]]]] = {
    "isolated": lambda rng: _isolated(rng, saturated=False),
    "tee": _tee,
    "saturated": lambda rng: _isolated(rng, saturated=True),
    "arterial": _arterial,
    "grid2x2": _grid,
}
KINDS = tuple(_DRAW)


# ---------------------------------------------------------------- the demand level


def peak_y(cfg: Path, models: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Webster's ``Y`` at the peak interval of every signalised junction of a scenario, as
    the bench's Webster-timed SUMO peers see it (:func:`edgectl.sumo.webster.timed_models`);
    ``models``: the net's junction models when already derived."""
    from edgectl.sumo.network import derive_network
    from edgectl.sumo.runner import scenario_net
    from edgectl.sumo.webster import timed_models

    net = scenario_net(cfg, [])
    if models is None:
        models = derive_network(str(net))
    _models, timings = timed_models(cfg, net, models)
    return {tls: t.y_total for tls, t in sorted(timings.items())}


class _Probe:
    """The layout's net, built once, to measure ``Y`` of candidate flows on."""

    name = "probe"

    def __init__(self, layout: Layout, tmp: Path) -> None:
        from edgectl.sumo.network import derive_network

        self.tmp = tmp
        write_plain(tmp, self.name, layout)
        self.models = derive_network(str(netconvert(tmp, self.name)))
        write_cfg(tmp, self.name, step_s=STEP_S)

    def y(self, flows: list[Flow]) -> float:
        write_routes(self.tmp, self.name, flows)
        return max(peak_y(self.tmp / f"{self.name}.sumocfg", self.models).values())


def heldout(kind: str, variant: int) -> tuple[Layout, list[Flow]]:
    """The held-out scenario ``variant`` of ``kind``: its layout and its flows (veh/h per
    period), the busiest junction's peak Webster ``Y`` at the drawn target (≤ ``Y_MAX``)."""
    if kind not in _DRAW:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    rng = random.Random(variant)
    layout, demand = _DRAW[kind](rng)
    period_s = float(rng.choice([300, 360, 420, 480]))
    target = round(rng.uniform(*Y_TARGETS[kind]), 3)
    scale = 1000.0
    with tempfile.TemporaryDirectory(prefix="edgectl-heldout-") as tmp:
        probe = _Probe(layout, Path(tmp))
        # Y is homogeneous in the flows: scale, measure, correct (rounding to whole veh/h
        # and the lane split make it not exactly linear, hence a few rounds)
        for _ in range(4):
            y = probe.y(_flows(demand, scale, period_s))
            if y <= 0:
                raise RuntimeError(f"{kind} {variant}: no demand through a signal")
            if abs(y - target) < 0.005 and y <= Y_MAX:
                break
            scale *= target / y
        flows = _flows(demand, scale, period_s)
        y = probe.y(flows)
    if y > Y_MAX or not math.isfinite(y):
        raise RuntimeError(f"{kind} {variant}: peak Y {y:.3f} above {Y_MAX}")
    return layout, flows


def build_heldout(kind: str, variant: int, root: Path) -> Path:
    """Write held-out scenario ``variant`` of ``kind`` under ``root/<kind>_h<variant>/``
    with :mod:`bench.scenarios.build`'s writers: E1 loops (3 m, 40 m), E2 zones (150 m),
    SUMO at 1 s. Returns the ``.sumocfg``."""
    name = scenario_name(kind, variant)
    layout, flows = heldout(kind, variant)
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    write_plain(out, name, layout)
    net = netconvert(out, name)
    write_routes(out, name, flows)
    write_loops(out, name, net)
    write_zones(out, name, net)
    write_cfg(out, name, zones=True, step_s=STEP_S)
    return out / f"{name}.sumocfg"


def describe(kind: str, variant: int, cfg: Path) -> str:
    """One line: the peak Webster ``Y`` of every junction and the number of vehicles."""
    from edgectl.sumo.webster import read_flows, scenario_route_files

    ys = peak_y(cfg)
    vehicles = sum(
        f.vph * (f.end - f.begin) / 3600.0 for f in read_flows(scenario_route_files(cfg))
    )
    y_text = ", ".join(f"{k} {v:.2f}" for k, v in ys.items())
    return f"{scenario_name(kind, variant)}: Y {y_text}; ~{vehicles:.0f} vehicles"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("variants", type=int, nargs="+")
    parser.add_argument("--root", type=Path, default=Path("heldout"))
    args = parser.parse_args(argv)
    for variant in args.variants:
        cfg = build_heldout(args.kind, variant, args.root)
        print(cfg)
        print("  " + describe(args.kind, variant, cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
