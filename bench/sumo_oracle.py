"""How far is the adaptive target from what any controller could reach? Rollout estimates.

    .venv/bin/python -m bench.sumo_oracle [--seeds 1 2 3] [--jobs 2] [--scenarios NAME ...]
                                          [--permissive-lefts] [--no-build] [--no-docs]

For every one-junction scenario run on stages (``narrow``, ``tee``, ``skewed_tee``) and seed:
the seed's demand is written as explicit vehicles
(:func:`bench.oracle.explicit_routes`); SUMO's own controllers and ``edgectl:actuated``
/ ``edgectl:adaptive`` run on it through ``edgectl.sumo.run_bench``; and the clairvoyant
rollout controller of :mod:`bench.oracle` runs on the same vehicles twice: clairvoyant
(every vehicle seen, every option simulated into the real future) and with loop sensing (what
the loops could know, random futures in place of the rest). Writes ``docs/sumo-oracle.md`` and
``docs/sumo-oracle.json`` (``-permissive-lefts`` in the names with that flag).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.scenarios import build as builder
from bench.sumo_matrix import scenario_configs

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "sumo-oracle.md"
# one-junction scenarios that every controller runs on stages in one ring (a four-arm junction
# with a NEMA dual ring serves combinations the stages cannot: the oracle would bound nothing)
STAGE_JUNCTIONS = ("narrow", "tee", "skewed_tee")
BASELINES = (
    "sumo:static",
    "sumo:actuated",
    "sumo:delay_based",
    "edgectl:actuated",
    "edgectl:adaptive",
)
SUMO_OWN = ("sumo:static", "sumo:actuated", "sumo:delay_based")
TARGET_ACTUATED = 0.75  # issue 6: adaptive ≤ 0.75 × sumo:actuated
TARGET_BEST = 0.80  # ... and ≤ 0.80 × the best of SUMO's own controllers
ZONES_ACTUATED = 0.78  # issue 19, zones (150 m) + loops: ≤ 0.78 × sumo:actuated per scenario
ZONES_BEST = 0.85  # ... and ≤ 0.85 × the best SUMO program


def _one(job: tuple[str, str, int, bool, str, float | None]) -> dict[str, Any]:
    """One part of a row: the baselines and the clairvoyant controller, or the rollout
    controller with loop sensing (the slowest, so a job of its own)."""
    name, cfg_s, seed, permissive_lefts, part, reach = job
    from bench.oracle import explicit_routes, oracle_summary, run_oracle
    from edgectl.sumo import run_bench
    from edgectl.sumo.webster import scenario_route_files

    cfg = Path(cfg_s)
    out: dict[str, Any] = {"scenario": name, "seed": seed, "time_loss_s": {}}
    with tempfile.TemporaryDirectory(prefix="edgectl-oracle-") as tmp:
        routes = explicit_routes(cfg, seed, Path(tmp))
        if part == "loops":
            looped = run_oracle(
                cfg,
                seed,
                routes=routes,
                permissive_lefts=permissive_lefts,
                sensing="loops",
                loop_reach_m=reach,
            )
            out["time_loss_s"]["loop rollout"] = looped.time_loss_s
            out["loop rollout"] = oracle_summary(looped)
            return out
        for controller in BASELINES:
            r = run_bench(
                cfg,
                controller,
                seed=seed,
                sumo_args=["--route-files", str(routes)],
                permissive_lefts=permissive_lefts,
                # SUMO's programs timed by Webster from the scenario's flows, as in the matrix
                peer_demand=scenario_route_files(cfg),
            )
            if not r.valid or not r.all_arrived:
                raise RuntimeError(f"{name} seed {seed} {controller}: {r.invalid_reason}")
            out["time_loss_s"][controller] = r.time_loss_s
        oracle = run_oracle(cfg, seed, routes=routes, permissive_lefts=permissive_lefts)
    out["time_loss_s"]["clairvoyant"] = oracle.time_loss_s
    out["clairvoyant"] = oracle_summary(oracle)
    return out


def _merge(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for part in parts:
        row = rows.setdefault(
            (part["scenario"], part["seed"]),
            {"scenario": part["scenario"], "seed": part["seed"], "time_loss_s": {}},
        )
        row["time_loss_s"].update(part.pop("time_loss_s"))
        row.update(part)
    return list(rows.values())


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "–"


def _meets(
    tl: dict[str, float], key: str, actuated: float = TARGET_ACTUATED, best: float = TARGET_BEST
) -> bool:
    own = min(float(tl[c]) for c in SUMO_OWN)
    v = float(tl[key])
    return v <= actuated * float(tl["sumo:actuated"]) and v <= best * own


def write_markdown(
    runs: list[dict[str, Any]], wall: float, cmd: str, reach: float | None = None, jobs: int = 2
) -> str:
    lines = [
        "# How far could any controller go? Rollout estimates with and without loops",
        "",
        "Issue 6 asks `edgectl:adaptive` for a mean time loss ≤ 0.75 × `sumo:actuated` and",
        "≤ 0.80 × the best of SUMO's own controllers on every scenario and seed. This page asks",
        "how much of that is reachable at all, and what stands in the way: what a controller",
        "sees, or how it plans. On every one-junction scenario that all controllers run on",
        "stages in one ring (the four-arm junctions of the matrix run a NEMA dual ring in",
        "edgectl, which serves combinations stages cannot) it runs a rollout controller",
        "(`bench/oracle.py`) twice:",
        "",
        "- **clairvoyant**: it sees every vehicle, and before each decision (once a second",
        "  after the minimum green: extend, or end the green for each other stage) it saves",
        "  SUMO's state and simulates each option 60 s into the real future with the vehicles",
        "  that will actually come, driven by perfect-information queue-clearing policies, and",
        "  keeps the option that loses the least time;",
        "- **loop rollout**: the same planner, told only what the junction's loops could know.",
        "  Before each simulated future, every vehicle no loop could have seen is taken out",
        "  (due to depart within the horizon, or moving on an approach beyond its farthest",
        "  loop, ~40 m), and random vehicles drawn at the demand of the last 180 s take their",
        "  place; each option",
        "  is tried on the same 3 random futures. It keeps advantages no loop controller has:",
        "  SUMO itself as its model of the traffic, the exact vehicles inside the 40 m zone",
        "  and where each of them goes, and the demand split by destination.",
        "",
        "Both keep the rules every controller here keeps (the derived stages, minimum and",
        "maximum greens, yellow and red clearance). Both are one-step rollouts, not optima: a",
        "cleverer search could do somewhat better, so their numbers estimate what is",
        "reachable, they do not bound it.",
        "",
        "All controllers of a row run on the same vehicles (the seed's demand written out as",
        "explicit vehicles, so the look-ahead can replay it), so numbers differ slightly from",
        "the main matrix. SUMO's programs are timed by Webster from the scenario's flows, as",
        "in the matrix (before 2026-12-07 they ran here on the network's demand-blind",
        "splits: the explicit vehicles held no `<flow>` to time them by). Times are mean",
        "time loss in seconds per vehicle.",
        "",
        "```",
        cmd,
        "```",
        "",
        f"Last run: {len(runs)} scenario × seed rows in {wall:.0f} s wall, {jobs} at a time.",
        "",
        "| scenario | seed | `sumo:actuated` | best SUMO | `edgectl:actuated` "
        "| `edgectl:adaptive` | loop rollout | clairvoyant | adaptive / actuated "
        "| loop rollout / actuated | clairvoyant / actuated | target met by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    met = {"edgectl:adaptive": 0, "loop rollout": 0, "clairvoyant": 0}
    for r in sorted(runs, key=lambda r: (r["scenario"], r["seed"])):
        tl = r["time_loss_s"]
        best = min(SUMO_OWN, key=lambda c: float(tl[c]))
        act = float(tl["sumo:actuated"])
        who = [k for k in met if _meets(tl, k)]
        for k in who:
            met[k] += 1
        lines.append(
            f"| {r['scenario']} | {r['seed']} | {act:.1f} | {tl[best]:.1f} (`{best}`) "
            f"| {tl['edgectl:actuated']:.1f} | {tl['edgectl:adaptive']:.1f} "
            f"| {tl['loop rollout']:.1f} | {tl['clairvoyant']:.1f} "
            f"| {_ratio(tl['edgectl:adaptive'], act)} | {_ratio(tl['loop rollout'], act)} "
            f"| {_ratio(tl['clairvoyant'], act)} | {', '.join(who) or '**none**'} |"
        )
    lines += ["", "Ratio to `sumo:actuated`, and rows meeting the whole target:", ""]
    for key, n in met.items():
        ratios = [r["time_loss_s"][key] / r["time_loss_s"]["sumo:actuated"] for r in runs]
        lines.append(
            f"- {key}: {statistics.fmean(ratios):.2f} on average"
            f" ({min(ratios):.2f} – {max(ratios):.2f}), target met on {n} of"
            f" {len(runs)} rows"
        )
    lines += [
        "",
        "Reading it: the distance from the clairvoyant controller to the loop rollout is",
        "what *seeing* is worth (the same planner, told less); the distance from the loop",
        "rollout to `edgectl:adaptive` is what *planning* could still win with the loops",
        "the issue gives (stop bar and ~40 m upstream).",
        "",
    ]
    if reach is None:
        lines += [
            "What loops farther upstream would be worth: `--loop-reach M` lets the loop",
            "rollout plan as if every approach's farthest loop lay M m upstream; the last run",
            "with 150 m (issue 19's zone range) is in",
            "[sumo-oracle-reach-150.md](sumo-oracle-reach-150.md).",
            "",
        ]
    else:
        zoned = [
            r for r in runs if _meets(r["time_loss_s"], "loop rollout", ZONES_ACTUATED, ZONES_BEST)
        ]
        ratios = [
            r["time_loss_s"]["loop rollout"] / r["time_loss_s"]["sumo:actuated"] for r in runs
        ]
        gmean = statistics.geometric_mean(ratios) if ratios else float("nan")
        lines += [
            "**This run:** the loop rollout plans as if every approach's farthest loop lay",
            f"{reach:g} m upstream of its stop line (the scenarios' advance loops lie ~40 m",
            "upstream, and every other controller of the table uses those): its column is",
            "what loops that far upstream would be worth to this planner, and with 150 m",
            "an estimate of what a zone sensor's range is worth (issue 19). Against issue",
            f"19's zones target (≤ {ZONES_ACTUATED} × `sumo:actuated` and ≤ {ZONES_BEST} × the",
            f"best SUMO program per row) the loop rollout meets it on {len(zoned)} of",
            f"{len(runs)} rows; its geometric mean ratio to `sumo:actuated` is {gmean:.2f}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scenarios", nargs="+", default=list(STAGE_JUNCTIONS))
    parser.add_argument("--permissive-lefts", action="store_true")
    parser.add_argument(
        "--loop-reach",
        type=float,
        metavar="M",
        help="the loop rollout plans as if every approach's farthest loop lay M m upstream",
    )
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="print only; write no docs")
    args = parser.parse_args(argv)
    cfgs = scenario_configs(builder, args.scenarios, build=not args.no_build)
    jobs = [
        (name, str(cfg), seed, args.permissive_lefts, part, args.loop_reach)
        for name, cfg in cfgs.items()
        for seed in args.seeds
        for part in ("loops", "rest")  # the slow part first: the pool ends evenly
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = _merge(list(pool.map(_one, jobs)))
    wall = time.perf_counter() - t0
    for r in runs:
        tl = r["time_loss_s"]
        print(r["scenario"], r["seed"], " ".join(f"{c}={v:.2f}" for c, v in tl.items()))
    if not args.no_docs:
        tag = "-permissive-lefts" if args.permissive_lefts else ""
        cmd = "python -m bench.sumo_oracle --seeds " + " ".join(map(str, args.seeds))
        if args.permissive_lefts:
            cmd += " --permissive-lefts"
        if args.loop_reach is not None:
            tag += f"-reach-{args.loop_reach:g}"
            cmd += f" --loop-reach {args.loop_reach:g}"
        doc = DOC.with_name(f"sumo-oracle{tag}.md")
        doc.write_text(write_markdown(runs, wall, cmd, args.loop_reach, args.jobs))
        doc.with_suffix(".json").write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
        print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
