"""Issue 19, the sensing matrix: edgectl on loops alone, with zones, with degraded zones.

    python -m bench.adaptive_zones [--seeds 1 2 3] [--scenarios …] [--jobs N] [--json OUT]
                                   [--plot PNG] [--controllers …] [--modes …] [--no-peers]
    python -m bench.adaptive_zones --from-json OUT [--plot PNG]
    python -m bench.adaptive_zones --decision-time [--scenarios saturated grid2x2]

Builds every scenario with E2 zones (:func:`bench.scenarios.build.build` with ``zones=True``;
SUMO at 1 s steps) under a private directory (``--root``, default a temporary one: the shared
``bench/scenarios/*/generated`` are left alone), then runs, per scenario and seed: SUMO's own
programs (``sumo:static`` / ``sumo:actuated`` / ``sumo:delay_based``, all timed by Webster
for the scenario's peak demand), and every edgectl controller of ``--controllers`` (default
``edgectl:adaptive`` and ``edgectl:actuated``) in each sensing mode of ``--modes``: loops
alone (``zones=False``), zones + loops, and zones degraded (``--degrade``, default range
80 m, 10 % of vehicles missed, one zone dead per junction, seeded with the run's seed).
``--jobs N`` runs N at a time in a process pool (one SUMO per process; default 1).

Prints (:mod:`bench.sensing_report`) mean time loss over the seeds, the ratios to SUMO
actuated and to the best SUMO program with their geometric means, the worst approach, stops
per vehicle and whether every run was valid, and draws the same as grouped bars into
``--plot`` (default ``docs/img/sumo-sensing.png``). ``--json`` keeps every run;
``--from-json`` redoes the tables and the plot from such a file without running anything.

``--decision-time`` runs adaptive with zones instead and times every planner decision (one
``requests`` per 0.1 s tick and junction: zone demand, queue estimate and the decision) in
thread CPU time: worst, p99 and mean per scenario.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.sensing_report import CONTROLLERS, EDGECTL, MODES, PEERS, report, write_plot

SCENARIOS = ("saturated", "turning", "grid2x2", "isolated", "tee", "arterial")
DEGRADE = "range=80,miss=0.1,dead=1"
PLOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "sumo-sensing.png"


@dataclass(frozen=True, slots=True)
class Job:
    """One run of the matrix (picklable: what a worker process gets)."""

    scenario: str
    cfg: Path
    controller: str
    sensing: str | None  # None: one of SUMO's programs
    seed: int
    degrade: str


def jobs(
    cfgs: dict[str, Path],
    seeds: Sequence[int],
    *,
    controllers: Sequence[str] = EDGECTL,
    modes: Sequence[str] = MODES,
    peers: bool = True,
    degrade: str = DEGRADE,
) -> list[Job]:
    """Every run, scenario by scenario and seed by seed: SUMO's programs first."""
    out = []
    for name, cfg in cfgs.items():
        for seed in seeds:
            if peers:
                out += [Job(name, cfg, c, None, seed, degrade) for c in PEERS]
            out += [Job(name, cfg, c, m, seed, degrade) for c in controllers for m in modes]
    return out


def run_one(job: Job) -> dict[str, Any]:
    """Run ``job``; its row (see :mod:`bench.sensing_report`)."""
    from edgectl.sumo import run_bench
    from edgectl.sumo.zones import ZoneDegrade

    degrade = None
    if job.sensing == "degraded":
        degrade = ZoneDegrade.parse(f"{job.degrade},seed={job.seed}")
    r = run_bench(
        job.cfg,
        job.controller,
        seed=job.seed,
        zones=job.sensing != "loops",
        zone_degrade=degrade,
    )
    return {
        "scenario": job.scenario,
        "controller": job.controller,
        "sensing": job.sensing,
        "seed": job.seed,
        "time_loss_s": r.time_loss_s,
        "worst_approach": r.worst_approach,
        "worst_approach_delay_s": r.worst_approach_delay_s,
        "stops": r.stops,  # mean per arrived vehicle
        "ok": r.valid and r.all_arrived and r.teleports == 0,
        "teleports": r.teleports,
        "zone_faults": sum(int(j.get("zone_faults", 0)) for j in r.junctions.values()),
        "wall_s": r.wall_s,
    }


def _progress(row: dict[str, Any]) -> None:
    what = row["controller"] + (f" {row['sensing']}" if row["sensing"] else "")
    print(
        f"{row['scenario']} seed {row['seed']}: {what} {row['time_loss_s']:.1f} s"
        f" (worst approach {row['worst_approach_delay_s']:.1f} s)"
        + ("" if row["ok"] else " INVALID"),
        file=sys.stderr,
        flush=True,
    )


def run(todo: Sequence[Job], n_jobs: int = 1) -> list[dict[str, Any]]:
    """Run every job, ``n_jobs`` at a time (in this process when 1); rows in job order."""
    rows: list[dict[str, Any]] = []
    if n_jobs <= 1:
        for job in todo:
            rows.append(run_one(job))
            _progress(rows[-1])
        return rows
    # libsumo runs one simulation per process: each worker starts and closes its own
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        for row in pool.map(run_one, todo):
            _progress(row)
            rows.append(row)
    return rows


def decision_time(scenarios: tuple[str, ...], seed: int, root: Path) -> str:
    """Per-decision CPU time of the adaptive planner with zones (thread CPU time)."""
    from bench.scenarios.build import build
    from edgectl.control.strategies.adaptive import Adaptive
    from edgectl.sumo import run_bench

    samples: list[int] = []
    original = Adaptive.requests

    def timed(self: Adaptive, view: Any) -> Any:
        t0 = time.thread_time_ns()
        out = original(self, view)
        samples.append(time.thread_time_ns() - t0)
        return out

    lines = [
        "| scenario | decisions | zones | mean ms | p99 ms | worst ms |",
        "|---|---|---|---|---|---|",
    ]
    Adaptive.requests = timed  # type: ignore[method-assign]
    try:
        for name in scenarios:
            samples.clear()
            r = run_bench(build(name, root=root, zones=True), "edgectl:adaptive", seed=seed)
            zones = sum(int(j.get("zones", 0)) for j in r.junctions.values())
            ms = sorted(s / 1e6 for s in samples)
            p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
            lines.append(
                f"| {name} | {len(ms)} | {zones} | {statistics.fmean(ms):.3f} | {p99:.3f}"
                f" | {ms[-1]:.3f} |"
            )
    finally:
        Adaptive.requests = original  # type: ignore[method-assign]
    return "\n".join(lines)


def _finish(rows: list[dict[str, Any]], plot: Path | None) -> None:
    print(report(rows))
    if plot is not None:
        print(f"\nplot: {write_plot(rows, plot)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument(
        "--controllers", nargs="+", default=list(EDGECTL), choices=CONTROLLERS, metavar="CONTROLLER"
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (processes)")
    parser.add_argument("--root", type=Path, default=None, help="build the scenarios here")
    parser.add_argument("--degrade", default=DEGRADE, help="ZoneDegrade spec (seed = run seed)")
    parser.add_argument("--no-peers", action="store_true", help="edgectl runs only")
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument("--from-json", type=Path, default=None, help="report an earlier run")
    parser.add_argument("--plot", type=Path, default=PLOT, help=f"the PNG (default {PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="tables only")
    parser.add_argument("--decision-time", action="store_true", help="time the planner")
    args = parser.parse_args(argv)
    plot = None if args.no_plot else args.plot
    if args.from_json is not None:
        _finish(json.loads(args.from_json.read_text()), plot)
        return 0
    from bench.scenarios.build import build

    with tempfile.TemporaryDirectory(prefix="edgectl-zones-") as tmp:
        root = args.root or Path(tmp)
        if args.decision_time:
            print(decision_time(tuple(args.scenarios), args.seeds[0], root))
            return 0
        t0 = time.perf_counter()
        cfgs = {name: build(name, root=root, zones=True) for name in args.scenarios}
        todo = jobs(
            cfgs,
            args.seeds,
            controllers=args.controllers,
            modes=args.modes,
            peers=not args.no_peers,
            degrade=args.degrade,
        )
        rows = run(todo, args.jobs)
        wall = time.perf_counter() - t0
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    _finish(rows, plot)
    print(f"\n{len(rows)} runs in {wall:.0f} s wall, {args.jobs} at a time")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
