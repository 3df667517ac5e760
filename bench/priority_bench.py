"""Priority in SUMO: emergency-vehicle green waves and TSP, with and without (issue 22).

    .venv/bin/python -m bench.priority_bench [--seeds 1 2 3] [--scenarios corridor grid]
        [--controllers edgectl:actuated edgectl:adaptive] [--jobs 1] [--no-build] [--no-docs]

Runs every scenario × controller × seed in four modes of the bench's GPS feed
(:mod:`edgectl.sumo.priority`):

- ``none``: ``--no-priority`` (the vehicles are tracked and measured, nothing is sent);
- ``ev``: emergency vehicles' green waves only;
- ``tsp``: buses' check-ins only (transit signal priority);
- ``both``: everything, as ``edgectl bench sumo`` runs by default.

Besides, once per scenario, the priority vehicles alone on the network with every signal
switched off (``--tls.all-off``): their time loss there (turns, a bus's stops) is the part no
controller can remove; a bus's *signal delay* is its time loss minus that reference.

Prints a table and writes ``docs/sumo-priority.md`` (tables, the acceptance check against
the issue's targets), ``docs/sumo-priority.json`` (every run) and
``docs/img/priority-sumo.png`` (``--render``: only rewrite the page and the plot from that
JSON). Runs sequentially by default (``--jobs``: parallel
processes). Exit status 0 when every run was valid (no teleport, no collision).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.scenarios import build as builder

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "sumo-priority.md"
RAW = REPO / "docs" / "sumo-priority.json"
PNG = REPO / "docs" / "img" / "priority-sumo.png"
SCENARIOS = ("corridor", "grid")
CONTROLLERS = ("edgectl:actuated", "edgectl:adaptive")
MODES = ("none", "ev", "tsp", "both")
CLASSES = ("emergency", "bus", "other")
# the targets
EV_RATIO = 0.5  # emergency time loss at most halved
EV_OTHER = 0.05  # general traffic's mean time loss up by at most 5 %
BUS_RATIO = 0.7  # buses' signal delay down by at least 30 %
BUS_OTHER = 0.03  # general traffic up by at most 3 %


def _one(job: tuple[str, str, str, int, str]) -> dict[str, Any]:
    name, cfg, controller, seed, mode = job
    from edgectl.sumo import run_bench
    from edgectl.sumo.priority import FeedParams

    feed = FeedParams(emergency=mode in ("ev", "both"), transit=mode in ("tsp", "both"))
    result = run_bench(
        Path(cfg), controller, seed=seed, priority=mode != "none", feed=feed
    ).to_json()
    result["scenario"] = name
    result["mode"] = mode
    return result


def reference(cfg: Path) -> dict[str, float]:
    """Mean time loss per class of the priority vehicles alone, every signal off."""
    from edgectl.sumo import sumo_home

    name = cfg.stem
    d = cfg.parent
    with tempfile.TemporaryDirectory() as tmp:
        trips = Path(tmp) / "trips.xml"
        cmd = [
            str(sumo_home() / "bin" / "sumo"),
            "-n",
            str(d / f"{name}.net.xml"),
            "-r",
            str(d / f"{name}.fleet.rou.xml"),
            "--step-length",
            str(builder.STEP_S),
            "--tls.all-off",
            "true",
            "--tripinfo-output",
            str(trips),
            "--no-step-log",
            "true",
            "--no-warnings",
            "true",
        ]
        stops = d / f"{name}.stops.add.xml"
        if stops.exists():
            cmd += ["-a", str(stops)]
        subprocess.run(cmd, check=True, capture_output=True)
        sums: dict[str, list[float]] = {}
        for el in ET.parse(trips).getroot():
            cls = "emergency" if el.get("vType") == "ambulance" else "bus"
            sums.setdefault(cls, []).append(float(el.get("timeLoss", "0")))
    return {k: statistics.fmean(v) for k, v in sums.items()}


def _loss(r: dict[str, Any], cls: str) -> float:
    return float(r["time_loss_by_class_s"].get(cls, float("nan")))


def _mean(rs: list[dict[str, Any]], f: Any) -> float:
    vals = [float(f(r)) for r in rs]
    return statistics.fmean(vals) if vals else float("nan")


def _stat(vals: list[float]) -> str:
    if not vals:
        return "–"
    m = statistics.fmean(vals)
    return f"{m:.1f}" if len(vals) < 2 else f"{m:.1f} ± {statistics.stdev(vals):.1f}"


def _pick(runs: list[dict[str, Any]], sc: str, c: str, mode: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["scenario"] == sc and r["controller"] == c and r["mode"] == mode]


def acceptance(
    runs: list[dict[str, Any]], refs: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """Per scenario × controller: the issue's targets on the means over seeds."""
    rows = []
    for sc in sorted({r["scenario"] for r in runs}):
        for c in sorted({r["controller"] for r in runs}):
            none, ev, tsp = (_pick(runs, sc, c, m) for m in ("none", "ev", "tsp"))
            if not (none and ev and tsp):
                continue
            ref_bus = refs.get(sc, {}).get("bus", 0.0)
            base_ev = _mean(none, lambda r: _loss(r, "emergency"))
            base_bus = _mean(none, lambda r: _loss(r, "bus")) - ref_bus
            base_other = _mean(none, lambda r: _loss(r, "other"))
            ev_ratio = _mean(ev, lambda r: _loss(r, "emergency")) / base_ev
            ev_other = _mean(ev, lambda r: _loss(r, "other")) / base_other - 1
            bus_ratio = (_mean(tsp, lambda r: _loss(r, "bus")) - ref_bus) / base_bus
            bus_raw = _mean(tsp, lambda r: _loss(r, "bus")) / (base_bus + ref_bus)
            tsp_other = _mean(tsp, lambda r: _loss(r, "other")) / base_other - 1
            teleports = sum(r["teleports"] for r in [*none, *ev, *tsp])
            rows.append(
                {
                    "scenario": sc,
                    "controller": c,
                    "ev_ratio": ev_ratio,
                    "ev_other": ev_other,
                    "bus_ratio": bus_ratio,
                    "bus_raw_ratio": bus_raw,
                    "tsp_other": tsp_other,
                    "teleports": teleports,
                    "ev_met": ev_ratio <= EV_RATIO and ev_other <= EV_OTHER and not teleports,
                    "tsp_met": bus_ratio <= BUS_RATIO and tsp_other <= BUS_OTHER and not teleports,
                }
            )
    return rows


def write_markdown(
    runs: list[dict[str, Any]],
    refs: dict[str, dict[str, float]],
    seeds: list[int],
    wall: float,
    cmd: str,
) -> str:
    lines = [
        "# Priority in SUMO: emergency-vehicle green waves and TSP",
        "",
        "The SUMO half of issue 22 ([priority.md](priority.md)). This page is written by",
        "",
        "```",
        cmd,
        "```",
        "",
        f"Last run: seeds {', '.join(map(str, seeds))}; {len(runs)} runs in {wall:.0f} s wall."
        " Times are seconds per vehicle (SUMO's tripinfo `timeLoss`), mean ± standard"
        " deviation over seeds.",
        "",
        f"![time loss per class and mode](img/{PNG.name})",
        "",
        "## Acceptance check",
        "",
        "Targets (issue 22): emergency vehicles' time loss at least halved against the same"
        " run without priority, general traffic's mean time loss up by at most 5 %; buses'"
        " signal delay down by at least 30 % with TSP, general traffic up by at most 3 %;"
        " seeds 1–3 (means over them), zero teleports. EV targets compare mode `ev` with"
        " `none`, TSP targets `tsp` with `none`. A bus's signal delay is its time loss minus"
        " the reference below (the raw time-loss ratio is shown too).",
        "",
        "| scenario | controller | EV loss ratio (≤ 0.50) | general, EV priority (≤ +5 %)"
        " | bus signal delay ratio (≤ 0.70) | bus loss ratio, raw | general, TSP (≤ +3 %)"
        " | teleports | EV met | TSP met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = acceptance(runs, refs)
    for a in rows:
        lines.append(
            f"| {a['scenario']} | `{a['controller']}` | {a['ev_ratio']:.2f}"
            f" | {100 * a['ev_other']:+.1f} % | {a['bus_ratio']:.2f} | {a['bus_raw_ratio']:.2f}"
            f" | {100 * a['tsp_other']:+.1f} % | {a['teleports']}"
            f" | {'yes' if a['ev_met'] else '**no**'} | {'yes' if a['tsp_met'] else '**no**'} |"
        )
    met = bool(rows) and all(a["ev_met"] and a["tsp_met"] for a in rows)
    lines += ["", f"Overall: **{'met' if met else 'not met'}**.", ""]
    lines += [
        "Reference (the priority vehicles alone, every signal off): "
        + "; ".join(
            f"{sc}: emergency {r.get('emergency', 0):.1f} s, bus {r.get('bus', 0):.1f} s"
            for sc, r in sorted(refs.items())
        )
        + ".",
        "",
    ]
    for sc in sorted({r["scenario"] for r in runs}):
        for c in [c for c in CONTROLLERS if any(r["controller"] == c for r in runs)]:
            lines += [
                f"## {sc}, `{c}`",
                "",
                "| mode | emergency | bus | general (other) | all vehicles | EV halts at"
                " signals / crossings | bus halts / crossings | EV requests sent (updates)"
                " | TSP check-ins | teleports |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for mode in MODES:
                rs = _pick(runs, sc, c, mode)
                if not rs:
                    continue
                pe = [r["priority"]["classes"]["emergency"] for r in rs]
                pb = [r["priority"]["classes"]["bus"] for r in rs]
                lines.append(
                    f"| `{mode}` | {_stat([_loss(r, 'emergency') for r in rs])}"
                    f" | {_stat([_loss(r, 'bus') for r in rs])}"
                    f" | {_stat([_loss(r, 'other') for r in rs])}"
                    f" | {_stat([r['time_loss_s'] for r in rs])}"
                    f" | {sum(p['halted'] for p in pe)} / {sum(p['crossings'] for p in pe)}"
                    f" | {sum(p['halted'] for p in pb)} / {sum(p['crossings'] for p in pb)}"
                    f" | {sum(r['priority']['sent'] for r in rs)}"
                    f" ({sum(r['priority']['updates'] for r in rs)})"
                    f" | {sum(r['priority']['tsp_checkins'] for r in rs)}"
                    f" | {sum(r['teleports'] for r in rs)} |"
                )
            lines.append("")
    lines.append(NOTES)
    return "\n".join(lines)


NOTES = """## How the bench feeds priority

`edgectl bench sumo` (`edgectl/sumo/priority.py`) reads, for vehicles of vClass `emergency`
and `bus` only, what a vehicle-to-centre GPS feed carries: the position along the route
(odometer metres), the speed and the route (its edges). Nothing about other traffic. Every
route edge pair that crosses a signalised junction maps to that connection's tls links and to
the phase of the junction's configuration serving them.

- **Emergency vehicles**: one `edgectl.centre.route.GreenWave` per vehicle (the centre's
  library as a city would run it: `ahead` 3, `horizon_s` 120, `resend_s` 2, `timeout_s` 30,
  a queued vehicle's ETA at the speed limit), a fix every second; each `Send` becomes
  `Controller.request_priority` (ETA + the junction's own clock), each `Cancel`
  `Controller.cancel_priority` (the vehicle passed the stop line). On the NEMA dual ring a
  request names the vehicle's phase **and the compatible through of the other ring** (the
  opposing through for a through movement, the same approach's through for a left), so the
  preempt dwell keeps that traffic moving rather than holding it red.
- **Buses**: a check-in (`Controller.transit_checkin`, with the ETA at the current speed,
  updated when it moves by more than 2 s) once the bus is within 300 m of the stop line and
  has served its stops before it; a check-out once it has passed the stop line. The bench
  enables TSP on every junction's plan with early green and extension bounds of 40 s and
  20 s (`TSP_PLAN`), lockout 2 cycles (the plan default).
- `--no-priority` tracks and measures the same vehicles and sends nothing.

The junction side (the preempt on input 7, its lead `clear_bound + flush`, check-out,
recovery; TSP's early green, extension and lockout) is the daemon's own controller, unchanged:
[priority.md](priority.md).

## Scenarios

Built by `bench/scenarios/build.py` (`corridor`, `grid`) the way the other scenarios are:
plain node / edge / connection files, netconvert, E1 loops 3 m and 40 m before every stop
line, flows with Poisson arrivals over three 10-minute periods (a tide, a peak, the opposite
tide), then the network drains. Speed limit 50 km/h, SUMO steps 1 s.

- `corridor`: five signalised junctions 270–330 m apart on an east-west arterial (three lanes
  in: right + through, through, protected left; side streets two), side streets and turning
  traffic at every junction (peak ~900 veh/h entering the arterial each way).
- `grid`: 3 × 3 signalised junctions 300 m apart (east-west streets three lanes in,
  north-south avenues two), through traffic on every street and L-shaped trips.
- **Emergency vehicles**: vClass `emergency`, *without* SUMO's bluelight device (they obey
  the signals and nobody yields to them: only the controllers' priority can help), six per
  run (one every 5 minutes from 150 s), each on a route through four or five signals, some
  turning (left and right turns on and off the main street). That is denser than the "few
  per hour" of a real city, to measure something with three seeds: it makes the cost to
  general traffic a pessimistic figure.
- **Buses**: vClass `bus`, a line each way every 5 minutes (`corridor`, through all five
  junctions, two far-side stops of 15 s each) or 6 minutes (`grid`, along the middle street,
  one far-side stop each way).

## Reading the numbers

- The EV's gain is large because the request comes well before the vehicle: the lead
  (`clear_bound` + 8 s flush, about 18 s on these junctions) is conservative, so the
  vehicle's phase is often green 10 s or more before it arrives and its queue has gone.
- General traffic pays for each preempt (the conflicting phases truncated to the preempt
  minimum, the dwell) and for each early green / extension. With six emergency vehicles
  and 20–24 buses in 30 minutes this is a pessimistic load.
- The seed-to-seed spread of general traffic is about ±1–2 %: a difference of that size
  between modes is noise.
- `both` is not a target but what `edgectl bench sumo` runs by default: buses gain less
  there than in `tsp` because TSP does nothing while an emergency priority is busy at the
  junction (the controller's rule), and the two costs to general traffic add up (corridor,
  actuated: +3.5 %).
- Without their own priority the emergency vehicles' time loss spreads widely (six per run,
  each one stopped or not): on `corridor` seeds 1–3 TSP alone seemed to raise it (57 → 65 s
  actuated, 52 → 68 s adaptive), on seeds 4–6 adaptive went the other way (67 → 48 s), and
  on `grid` TSP alone lowered it. As far as these runs tell, noise.

## Tuning (on these scenarios and seeds 1–3, the ones reported above)

The priority mechanisms' parameters were tuned for traffic reasons on these same runs (so
the acceptance rows are not a held-out test; see the check on seeds 4–6 below):

- **Dwell with the companion through** (on by default): without it (the vehicle's phase
  alone) general traffic paid +6.1 % on `grid` (actuated, EVs only) against +3.1 % with it
  at the time; the EVs' gain was the same.
- **Emergency lead and wave**: the configuration defaults were kept (`priority_flush_s`
  8 s, `ahead` 3): a 4 s flush or `ahead` 2 moved general traffic within the seed noise.
- **TSP bounds**: the plan defaults (`tsp_max_early_s` 10 s, `tsp_max_extend_s` 10 s) cut
  the corridor buses' delay by only 16–23 %: in the free modes the early force-off point is
  `max1 − tsp_max_early_s`, so with `max1` 50 s an actuated phase that gaps out earlier loses
  nothing. 40 s / 20 s (`TSP_PLAN`) are used; 60 s / 20 s gained a little more for buses and
  cost general traffic +3.9 % on `corridor`.
- **Bus check-in** (corridor, actuated, bounds 40 s / 15 s, TSP only, ratio of the buses'
  time loss): 300 m before the stop line (after any stop before it) 0.70 against 0.73 at
  200 m; the ETA at the bus's current speed (at least 2 m/s) 0.70 against 0.76 with the ETA
  floored at the speed limit (`tsp_speed_share` 1): a too-early ETA ends an extension
  before the bus is there.

## Held-out check: seeds 4–6

The same matrix on seeds the tuning never saw
(`python -m bench.priority_bench --seeds 4 5 6 --no-build --no-docs`, same code and
parameters; targets as above: EV ≤ 0.50 with general ≤ +5 %, bus signal delay ≤ 0.70 with
general ≤ +3 %):

| scenario | controller | EV ratio | general, EV | bus ratio | general, TSP | teleports | met |
|---|---|---|---|---|---|---|---|
| corridor | `edgectl:actuated` | 0.19 | +1.2 % | 0.53 | +2.3 % | 0 | yes |
| corridor | `edgectl:adaptive` | 0.09 | +0.2 % | 0.48 | −0.4 % | 0 | yes |
| grid | `edgectl:actuated` | 0.09 | +2.1 % | 0.40 | −0.1 % | 0 | yes |
| grid | `edgectl:adaptive` | 0.10 | +3.6 % | 0.29 | +0.4 % | 0 | yes |

Met everywhere; the margins to the general-traffic bounds are the thin part (+3.6 % of
+5 % on `grid` adaptive with emergency priority, +2.3 % of +3 % on `corridor` actuated
with TSP).

## Weak points

- Per-class figures count arrived vehicles only (a run cut short by `--end` leaves the
  vehicles still driving out).
- A bus's signal delay subtracts the reference run's time loss (the buses alone, signals
  off: their stops and turns); with signals off a side street yields at the junction, which
  the reference does not separate out (the buses run on the main streets).
- Six emergency vehicles per 30 minutes and a bus every 5–6 minutes each way: priority is
  busier here than in most cities, so the general-traffic costs are on the high side; with
  rarer vehicles the EV gain per vehicle stays and the cost falls.
- SUMO's own controllers (`sumo:*`) take no requests: the feed is off for them (the JSON's
  `priority.note` says so).
"""


def write_plot(runs: list[dict[str, Any]], refs: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["scenario"], r["controller"]) for r in runs})
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    colours = {"none": "#999999", "ev": "#d62728", "tsp": "#1f77b4", "both": "#9467bd"}
    labels = [f"{sc}\n{c.split(':')[1]}" for sc, c in groups]
    for ax, cls, title in zip(
        axes,
        CLASSES,
        ("emergency vehicles", "buses (signal delay)", "general traffic"),
        strict=True,
    ):
        width = 0.8 / len(MODES)
        for i, mode in enumerate(MODES):
            means, lo, hi = [], [], []
            for sc, c in groups:
                ref = refs.get(sc, {}).get("bus", 0.0) if cls == "bus" else 0.0
                vals = [_loss(r, cls) - ref for r in _pick(runs, sc, c, mode)]
                m = statistics.fmean(vals) if vals else 0.0
                means.append(m)
                lo.append(m - min(vals) if vals else 0.0)
                hi.append(max(vals) - m if vals else 0.0)
            xs = [k + (i - (len(MODES) - 1) / 2) * width for k in range(len(groups))]
            ax.bar(xs, means, width, yerr=[lo, hi], capsize=2, label=mode, color=colours[mode])
        ax.set_xticks(range(len(groups)), labels, fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean time loss per vehicle (s)")
    axes[0].legend(title="priority", fontsize=8)
    fig.suptitle("Priority in SUMO: time loss by class (bars: mean; whiskers: min–max over seeds)")
    fig.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PNG, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--controllers", nargs="+", default=list(CONTROLLERS))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="print only; write no docs")
    parser.add_argument(
        "--render", action="store_true", help="rewrite the docs from docs/sumo-priority.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        doc = json.loads(RAW.read_text())
        runs, refs = doc["runs"], doc["reference"]
        seeds = doc.get("seeds") or sorted({r["seed"] for r in runs})
        wall = doc.get("wall_s", sum(r["wall_s"] for r in runs))
        cmd = doc.get("cmd", "python -m bench.priority_bench")
        DOC.write_text(write_markdown(runs, refs, seeds, wall, cmd) + "\n")
        write_plot(runs, refs)
        return 0
    cfgs: dict[str, Path] = {}
    for name in args.scenarios:
        cfg = builder.HERE / name / "generated" / f"{name}.sumocfg"
        cfgs[name] = builder.build(name) if not args.no_build or not cfg.exists() else cfg
    refs = {name: reference(cfg) for name, cfg in cfgs.items()}
    jobs = [
        (name, str(cfg), c, seed, mode)
        for name, cfg in cfgs.items()
        for c in args.controllers
        for mode in args.modes
        for seed in args.seeds
    ]
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(_one, jobs))
    else:
        runs = []
        for job in jobs:
            runs.append(_one(job))
            r = runs[-1]
            by = r["time_loss_by_class_s"]
            print(
                f"{r['scenario']:9s} {r['controller']:17s} {r['mode']:5s} seed={r['seed']}"
                f" emergency={by.get('emergency', 0):6.1f} bus={by.get('bus', 0):6.1f}"
                f" other={by.get('other', 0):6.2f} teleports={r['teleports']}"
                f" wall={r['wall_s']:.1f}s",
                flush=True,
            )
    wall = time.perf_counter() - t0
    rows = acceptance(runs, refs)
    print()
    print(
        f"{'scenario':9s} {'controller':17s} {'EV ratio':>8s} {'gen EV':>7s} {'bus ratio':>9s}"
        f" {'gen TSP':>7s} met"
    )
    for a in rows:
        print(
            f"{a['scenario']:9s} {a['controller']:17s} {a['ev_ratio']:8.2f}"
            f" {100 * a['ev_other']:+6.1f}% {a['bus_ratio']:9.2f} {100 * a['tsp_other']:+6.1f}%"
            f" {'EV ' if a['ev_met'] else 'ev-NO '}{'TSP' if a['tsp_met'] else 'tsp-NO'}"
        )
    if not args.no_docs:
        cmd = "python -m bench.priority_bench " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        DOC.write_text(write_markdown(runs, refs, args.seeds, wall, cmd.strip()) + "\n")
        raw = {
            "cmd": cmd.strip(),
            "seeds": args.seeds,
            "wall_s": round(wall, 1),
            "reference": refs,
            "runs": runs,
        }
        RAW.write_text(json.dumps(raw, indent=1) + "\n")
        write_plot(runs, refs)
        print(f"wrote {DOC.relative_to(REPO)}, {RAW.relative_to(REPO)}, {PNG.relative_to(REPO)}")
    return 0 if all(r["valid"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
