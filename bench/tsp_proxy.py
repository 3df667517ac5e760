"""A controller-level proxy for transit signal priority (no SUMO): how long a bus arriving at
its ETA waits for its phase's green, with TSP and without, on the same random traffic.

Each bus checks in ``--lead`` s before its ETA on phase 2 or 4 of ``eight_phase`` (plan 1 in
actuated mode, plan 2 in coordinated); its wait is the time from the ETA to the first green of
its phase at or after the ETA (0 when green at the ETA); it checks out 2 s into that green.
Traffic: every detector turns on with probability ``--arrival`` a tick and off with 0.3.
It says nothing about other traffic's delay (SUMO does: ``edgectl bench sumo``)::

    .venv/bin/python -m bench.tsp_proxy --buses 200 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tomllib
from pathlib import Path

from edgectl.config.loader import validate_document
from edgectl.config.model import DaemonConfig
from edgectl.control.controller import Controller
from edgectl.control.transit import TransitRequest
from edgectl.control.types import Inputs, Interval

EXAMPLE = Path(__file__).resolve().parents[1] / "edgectl" / "examples" / "eight_phase.toml"


def _config(mode: str, plan: int, tsp: bool, bounds: dict[str, float]) -> DaemonConfig:
    doc = tomllib.loads(EXAMPLE.read_text())
    doc["control"].update(mode=mode, plan=plan)
    for p in doc["plans"]:
        p.update(tsp_enabled=tsp, **bounds)
    config, problems = validate_document(doc)
    assert config is not None, problems
    return config


def run(
    mode: str,
    plan: int,
    *,
    tsp: bool,
    buses: int,
    seed: int,
    lead: float,
    arrival: float,
    headway: float,
    bounds: dict[str, float],
) -> list[float]:
    config = _config(mode, plan, tsp, bounds)
    controller = Controller(config)
    rng = random.Random(seed)
    bus_rng = random.Random(seed + 1)
    schedule = []
    t_eta = 120.0
    for n in range(buses):
        t_eta += bus_rng.uniform(0.5, 1.5) * headway
        schedule.append((t_eta, bus_rng.choice([2, 4]), f"bus{n}"))
    detectors = [d.id for d in config.detectors]
    presence: set[int] = set()
    waits: list[float] = []
    waiting: dict[str, tuple[float, int]] = {}
    pending = list(schedule)
    end = schedule[-1][0] + 200.0
    for k in range(round(end * 10)):
        t = k / 10
        while pending and t >= pending[0][0] - lead:
            eta, phase, rid = pending.pop(0)
            controller.transit_checkin(TransitRequest(rid, (phase,), eta=eta))
            waiting[rid] = (eta, phase)
        for d in detectors:
            if d in presence:
                if rng.random() < 0.3:
                    presence.discard(d)
            elif rng.random() < arrival:
                presence.add(d)
        out = controller.step(t, Inputs(presence=frozenset(presence)))
        greens = {r.phase for r in out.rings if r.interval is Interval.GREEN}
        for rid, (eta, phase) in list(waiting.items()):
            if t >= eta and phase in greens:
                waits.append(0.0 if t - eta < 0.15 else t - eta)  # the first tick ≥ ETA
                del waiting[rid]
                controller.transit_checkout(rid)
    return waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buses", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lead", type=float, default=20.0, help="check-in before the ETA (s)")
    parser.add_argument("--arrival", type=float, default=0.03)
    parser.add_argument("--headway", type=float, default=150.0, help="mean s between buses")
    parser.add_argument("--max-early", type=float, default=10.0, help="plan tsp_max_early_s")
    parser.add_argument("--max-extend", type=float, default=10.0, help="plan tsp_max_extend_s")
    args = parser.parse_args()
    bounds = {"tsp_max_early_s": args.max_early, "tsp_max_extend_s": args.max_extend}
    report: dict[str, dict[str, float]] = {}
    for mode, plan in (("actuated", 1), ("coordinated", 2)):
        for tsp in (False, True):
            w = run(
                mode,
                plan,
                tsp=tsp,
                buses=args.buses,
                seed=args.seed,
                lead=args.lead,
                arrival=args.arrival,
                headway=args.headway,
                bounds=bounds,
            )
            report[f"{mode}/{'tsp' if tsp else 'none'}"] = {
                "buses": len(w),
                "mean_wait_s": round(statistics.fmean(w), 2),
                "green_at_eta": round(sum(x == 0.0 for x in w) / len(w), 3),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
