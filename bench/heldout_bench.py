"""Issue 19 on held-out networks: adaptive on scenarios it was never tuned on.

    python -m bench.heldout_bench --variants 101 102 --seeds 1 2 3 [--kinds …] [--jobs 1]
        [--degraded] [--controllers …] [--modes …] [--root DIR] [--json OUT]
    python -m bench.heldout_bench --from-json OUT

Draws held-out variants of the five issue-19 kinds (:mod:`bench.scenarios.heldout`: new
geometry and demand per variant, E1 loops 3 m / 40 m, E2 zones 150 m, SUMO at 1 s), then
runs per scenario and seed, through :mod:`bench.adaptive_zones`'s jobs (one SUMO process at
a time unless ``--jobs``): ``sumo:static``, ``sumo:actuated`` and ``sumo:delay_based`` (timed
by Webster, as :func:`edgectl.sumo.run_bench` does by default), ``edgectl:adaptive`` on loops
alone (``zones=False``) and with zones, and with ``--degraded`` with degraded zones. Prints
:func:`bench.sensing_report.report` (mean time loss, ratios to SUMO actuated and to the best
SUMO program with their geometric means, worst approach, stops, validity: every vehicle
arrived, no teleport, no collision), each scenario's peak Webster ``Y`` and the invalid runs;
exits 1 when a run was invalid. ``--controllers`` / ``--modes`` run other edgectl
controllers or sensing modes in place of adaptive's (``edgectl:maxpressure --modes loops``:
max pressure, which reads no zones).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.adaptive_zones import DEGRADE, jobs, run
from bench.scenarios.heldout import KINDS, build_heldout, peak_y, scenario_name
from bench.sensing_report import CONTROLLERS, MODES, report

ADAPTIVE = ("edgectl:adaptive",)


def _invalid(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"- {r['scenario']} seed {r['seed']} {r['controller']} {r.get('sensing') or ''}:"
        f" teleports {r.get('teleports')}, not every vehicle arrived or a collision"
        for r in rows
        if not r["ok"]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, nargs="+", default=[101, 102])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--jobs", type=int, default=1, help="SUMO processes at once (default 1: shared machine)"
    )
    parser.add_argument("--degraded", action="store_true", help="also run degraded zones")
    parser.add_argument(
        "--controllers",
        nargs="+",
        default=list(ADAPTIVE),
        choices=CONTROLLERS,
        metavar="CONTROLLER",
    )
    parser.add_argument(
        "--modes", nargs="+", default=None, choices=MODES, help="default: loops zones (+ degraded)"
    )
    parser.add_argument("--root", type=Path, default=None, help="build the scenarios here")
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument("--from-json", type=Path, default=None, help="table of an earlier run")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        print(report(data["runs"]))
        print("\n" + "\n".join(data["y"]))
        return 0
    modes = ("loops", "zones", "degraded") if args.degraded else ("loops", "zones")
    if args.modes is not None:
        modes = tuple(args.modes)
    t0 = time.perf_counter()
    y_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgectl-heldout-") as tmp:
        root = args.root or Path(tmp)
        cfgs: dict[str, Path] = {}
        for kind in args.kinds:
            for variant in args.variants:
                name = scenario_name(kind, variant)
                cfgs[name] = build_heldout(kind, variant, root)
                ys = peak_y(cfgs[name])
                y_lines.append(
                    f"- {name}: peak Webster Y " + ", ".join(f"{k} {v:.2f}" for k, v in ys.items())
                )
        todo = jobs(cfgs, args.seeds, controllers=args.controllers, modes=modes, degrade=DEGRADE)
        rows = run(todo, args.jobs)
    wall = time.perf_counter() - t0
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": rows, "y": y_lines}, indent=1) + "\n")
    print(report(rows))
    print("\nDemand level:\n\n" + "\n".join(y_lines))
    bad = _invalid(rows)
    print("\nInvalid runs:\n\n" + ("\n".join(bad) if bad else "- none"))
    print(f"\n{len(rows)} runs in {wall:.0f} s wall, {args.jobs} SUMO process(es) at a time")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
