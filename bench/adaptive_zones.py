"""Issue 19, zones: ``edgectl:adaptive`` on loops alone, with zones, with degraded zones.

    python -m bench.adaptive_zones [--seeds 1 2 3] [--scenarios …] [--json OUT]
    python -m bench.adaptive_zones --decision-time [--scenarios saturated grid2x2]

Builds every scenario with E2 zones (:func:`bench.scenarios.build.build` with ``zones=True``)
under a private directory (``--root``, default a temporary one: the shared
``bench/scenarios/*/generated`` are left alone), then runs one after the other, per scenario
and seed: SUMO's own programs (``sumo:static`` / ``sumo:actuated`` timed by Webster,
``sumo:delay_based``), and ``edgectl:adaptive`` three times — loops alone (``zones=False``),
zones + loops, and zones degraded (``--degrade``, default range 80 m, 10 % of vehicles
missed, one zone dead per junction). Prints mean time loss over the seeds, the ratios to
SUMO actuated and to the best SUMO program, the geometric means, and the worst approach.

``--decision-time`` runs adaptive with zones instead and times every planner decision (one
``requests`` per 0.1 s tick and junction: zone demand, queue estimate and the decision) in
thread CPU time: worst, p99 and mean per scenario.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIOS = ("saturated", "turning", "grid2x2", "isolated", "tee", "arterial")
PEERS = ("sumo:static", "sumo:actuated", "sumo:delay_based")
DEGRADE = "range=80,miss=0.1,dead=1"
MODES = ("loops", "zones", "degraded")


def _row(name: str, controller: str, seed: int, r: Any) -> dict[str, Any]:
    return {
        "scenario": name,
        "controller": controller,
        "seed": seed,
        "time_loss_s": r.time_loss_s,
        "worst_approach_delay_s": r.worst_approach_delay_s,
        "stops": r.stops,
        "ok": r.valid and r.all_arrived and r.teleports == 0,
        "zone_faults": sum(int(j.get("zone_faults", 0)) for j in r.junctions.values()),
    }


def run(
    scenarios: tuple[str, ...], seeds: tuple[int, ...], root: Path, degrade: str, peers: bool
) -> list[dict[str, Any]]:
    from bench.scenarios.build import build
    from edgectl.sumo import run_bench
    from edgectl.sumo.zones import ZoneDegrade

    rows: list[dict[str, Any]] = []
    for name in scenarios:
        cfg = build(name, root=root, zones=True)
        for seed in seeds:
            runs: list[tuple[str, Any]] = []
            if peers:
                runs += [(c, run_bench(cfg, c, seed=seed)) for c in PEERS]
            adaptive = "edgectl:adaptive"
            runs.append(("loops", run_bench(cfg, adaptive, seed=seed, zones=False)))
            runs.append(("zones", run_bench(cfg, adaptive, seed=seed)))
            bad = ZoneDegrade.parse(f"{degrade},seed={seed}")
            runs.append(("degraded", run_bench(cfg, adaptive, seed=seed, zone_degrade=bad)))
            for label, r in runs:
                rows.append(_row(name, label, seed, r))
            print(
                f"{name} seed {seed}: "
                + ", ".join(f"{label} {r.time_loss_s:.1f}" for label, r in runs),
                file=sys.stderr,
                flush=True,
            )
    return rows


def _geo(vals: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in vals))


def table(rows: list[dict[str, Any]]) -> str:
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    cols = [c for c in (*PEERS, *MODES) if any(r["controller"] == c for r in rows)]

    def mean(name: str, c: str, key: str = "time_loss_s") -> float | None:
        vals = [r[key] for r in rows if r["scenario"] == name and r["controller"] == c]
        return statistics.fmean(vals) if vals else None

    head = [f"`{c}`" if c.startswith("sumo:") else f"adaptive {c}" for c in cols]
    ratio_heads = [f"{m} / SUMO act." for m in MODES] + [f"{m} / best SUMO" for m in MODES[:2]]
    lines = [
        "| scenario | " + " | ".join(head + ratio_heads) + " | all valid |",
        "|---" * (2 + len(head) + len(ratio_heads)) + "|",
    ]
    geo: dict[str, list[float]] = {}
    for name in scenarios:
        m = {c: mean(name, c) for c in cols}
        peers = {c: v for c, v in m.items() if c.startswith("sumo:") and v is not None}
        best = min(peers, key=lambda c: peers[c]) if peers else None
        cells = [f"{v:.1f}" if v is not None else "–" for v in m.values()]
        for mode in MODES:
            v, a = m.get(mode), m.get("sumo:actuated")
            cells.append(f"{v / a:.2f}" if v and a else "–")
            if v and a:
                geo.setdefault(f"{mode} / SUMO actuated", []).append(v / a)
        for mode in MODES[:2]:
            v = m.get(mode)
            if v and best is not None:
                cells.append(f"{v / peers[best]:.2f}")
                geo.setdefault(f"{mode} / best SUMO", []).append(v / peers[best])
            else:
                cells.append("–")
        ok = all(r["ok"] for r in rows if r["scenario"] == name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'yes' if ok else '**no**'} |")
    lines.append("")
    lines += [f"- geometric mean, {k}: {_geo(v):.2f}" for k, v in geo.items()]
    lines += [
        "",
        "Worst approach (mean delay of the worst signalised approach, s, mean over seeds):",
        "",
        "| scenario | " + " | ".join(head) + " | zones / SUMO act. |",
        "|---" * (2 + len(head)) + "|",
    ]
    for name in scenarios:
        w = {c: mean(name, c, "worst_approach_delay_s") for c in cols}
        cells = [f"{v:.1f}" if v is not None else "–" for v in w.values()]
        z, a = w.get("zones"), w.get("sumo:actuated")
        ratio = f"{z / a:.2f}" if z and a else "–"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--root", type=Path, default=None, help="build the scenarios here")
    parser.add_argument("--degrade", default=DEGRADE, help="ZoneDegrade spec (seed = run seed)")
    parser.add_argument("--no-peers", action="store_true", help="adaptive runs only")
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument("--from-json", type=Path, default=None, help="table of an earlier run")
    parser.add_argument("--decision-time", action="store_true", help="time the planner")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        print(table(json.loads(args.from_json.read_text())))
        return 0
    with tempfile.TemporaryDirectory(prefix="edgectl-zones-") as tmp:
        root = args.root or Path(tmp)
        if args.decision_time:
            print(decision_time(tuple(args.scenarios), args.seeds[0], root))
            return 0
        t0 = time.perf_counter()
        rows = run(tuple(args.scenarios), tuple(args.seeds), root, args.degrade, not args.no_peers)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows))
    print(f"\n{len(rows)} runs in {time.perf_counter() - t0:.0f} s wall, one at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
