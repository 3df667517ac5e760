"""Run the SUMO bench matrix: scenarios × controllers × seeds, in parallel processes.

    .venv/bin/python -m bench.sumo_matrix [--seeds 1 2 3] [--jobs 2] [--scenarios NAME ...]
                                          [--controllers NAME ...] [--no-build]

Builds the scenarios (:mod:`bench.scenarios.build`) unless ``--no-build``, runs every
combination with ``edgectl.sumo.run_bench`` (one process per run, ``--jobs`` at a time), and
writes ``docs/sumo-bench.md`` (a Markdown table per scenario: mean ± standard deviation over
seeds, plus the acceptance check of the adaptive strategy), ``docs/sumo-bench.json`` (every
run) and ``docs/img/sumo-matrix.png`` (time loss per controller per scenario with the seed
spread). Exit status 0 when every run was valid.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.scenarios import build as builder

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "sumo-bench.md"
RAW = REPO / "docs" / "sumo-bench.json"
PNG = REPO / "docs" / "img" / "sumo-matrix.png"
CONTROLLERS = (
    "sumo:static",
    "sumo:actuated",
    "sumo:delay_based",
    "edgectl:fixed",
    "edgectl:actuated",
    "edgectl:maxpressure",
    "edgectl:adaptive",
    "edgectl:actuated single-ring",
    "edgectl:adaptive single-ring",
)
SINGLE = " single-ring"  # suffix: the edgectl controller on the stages in one ring
SUMO_OWN = ("sumo:static", "sumo:actuated", "sumo:delay_based")
NOTES = """## Scenarios

Built by `bench/scenarios/build.py` from plain node/edge/connection files with netconvert
(the output under `bench/scenarios/<name>/generated/` is not kept in git). Demand is given as
flows with Poisson arrivals over three 6-minute periods (a morning-like tide, a peak, the
opposite tide), then the network drains; every incoming lane of a signalised junction has an
E1 loop 3 m before the stop line and one 40 m upstream. Speed limit 50 km/h; the main street
has three lanes in (right+through, through, protected left), side streets two (right+through,
protected left). SUMO steps 1 s.

- `isolated`: one four-arm junction, protected lefts, asymmetric demand up to ~2,800 veh/h.
- `isolated_light`: the same junction off-peak (~1,000–1,300 veh/h, a side street nearly empty).
- `arterial`: three junctions 300 m apart on an east-west arterial with side streets and
  turning traffic at every junction.
- `tee`: a T junction (no dual ring: its stages share movements, so channels are overlaps
  carried green from one stage into the next).
- `narrow`: two-lane roads, one lane in per approach; lefts share it and turn permissively.
- `wide`, `skewed_tee`, `pair` were added after the adaptive strategy was tuned, as checks
  on junctions it had not seen: a four-arm junction of two major roads (three lanes in on
  every arm, heavy, crossing tides), a skewed T with a one-lane-out side road, and two
  junctions 250 m apart on two-lane roads. Nothing was tuned on them.

## Clearances as the drivers see them

SUMO shows a signal state for whole simulation steps. The bench rounds every yellow and red
clearance up to a whole number of steps (`edgectl.sumo.network.on_steps`), for every
controller, so no driver ever sees less than the ITE interval: at 1 s steps the 3.3 s
yellow is shown for 4 s. (Until November 2026 the bench ran 1 s steps without that
rounding: a 3.3 s yellow was shown for 3 s, under the configured minimum, to every
controller; the numbers before then are not comparable.) A test reads SUMO's own per-step
record of the signal (`SaveTLSStates`) and checks every yellow and red clearance.

## Reading the numbers

- `sumo:static`, `sumo:actuated` and `sumo:delay_based` run SUMO's own programs on the
  derived stages, timed by Webster for the scenario's peak flows (`edgectl.sumo.webster`,
  see "Against timed peers" below); `edgectl:fixed` runs the splits of the network's
  default program (33 s through, 6 s protected left): it is here as the floor, not as a
  tuned fixed-time plan.
- `edgectl:*` run four-arm junctions on the NEMA dual ring (phases 1–8, lefts lead,
  the rings cross the barrier together) as a NEMA controller in that cabinet would; the rows
  `… single-ring` run the same controller on SUMO's stages in one ring, the structure SUMO's
  own programs get. The dual ring alone takes `edgectl:actuated` from 44.3 to 36.9 s on
  `isolated` (seeds 1–3); it is part of what edgectl brings, not of the adaptive timing.
  `narrow`, `tee` and `skewed_tee` run on stages in every row (their conflicts leave no
  dual ring).
- `edgectl:actuated` uses the derived plan (min green 7 s through / 5 s left, passage 2.5 /
  2.0 s, max 50 / 25 s); a stop-bar loop in a lane where a turner waits for a gap
  (`narrow`'s shared lanes) has a queue limit of the time the queue stored up to its
  advance loop needs (12.7 s at 40 m), as an engineer would set it. SUMO's actuated uses
  Webster's greens, the same min green and 1.5 × Webster's green as its max, its own
  detectors and gap logic, and never skips a stage.
- `edgectl:adaptive` neighbour coordination (`--coordinate`: projected arrivals from the
  upstream junction's discharge) is off here: it has not won on our networks (issue 19's
  matrix, zones, seeds 1–3: `arterial` 48.2 s with it, 48.1 s without; `grid2x2` 33.1 s
  both).
- `narrow` is where edgectl's adaptive loses to SUMO's timed actuated program, on seeds 2
  and 3 (the issue 19 section of [sumo-bench.md](sumo-bench.md): the loops lose the queue
  that stands beyond the advance loop).
"""


PERMISSIVE_NOTE = (
    "This run keeps the permissive turns (`g`) of the lefts netconvert's program runs",
    "protected / permissive (`--permissive-lefts`), for every controller: SUMO's programs get",
    "them in the through stage, edgectl's dual ring shows them as a flashing yellow arrow",
    "(FY while the opposing through is green, ended by a steady yellow with it). The main",
    "matrix ([sumo-bench.md](sumo-bench.md)) runs those lefts protected only.",
    "`edgectl:adaptive` leaves a short left queue (under 8 vehicles, waiting under 60 s) to",
    "its arrow and omits the protected left phase meanwhile; the junctions run on stages in",
    "one ring (`tee`, `skewed_tee`, `narrow`) have no arrow, and get nothing from this.",
    "",
)


def scenario_configs(builder: Any, names: list[str], *, build: bool) -> dict[str, Path]:
    """Each scenario's ``.sumocfg``, netconverted first when ``build`` (or not there yet)."""
    cfgs = {}
    for name in names:
        cfg = builder.HERE / name / "generated" / f"{name}.sumocfg"
        cfgs[name] = builder.build(name) if build or not cfg.exists() else cfg
    return cfgs


def _one(job: tuple[str, str, str, int, bool]) -> dict[str, Any]:
    name, cfg, controller, seed, permissive_lefts = job
    from edgectl.sumo import run_bench

    base = controller.removesuffix(SINGLE)
    result = run_bench(
        Path(cfg),
        base,
        seed=seed,
        dual_ring=base == controller,
        permissive_lefts=permissive_lefts,
    ).to_json()
    result["scenario"] = name
    result["controller"] = controller
    return result


def _stat(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {statistics.stdev(values):.1f}"


def write_markdown(
    runs: list[dict[str, Any]], seeds: list[int], wall: float, cmd: str, *, png: Path = PNG
) -> str:
    scenarios = sorted({r["scenario"] for r in runs}, key=lambda s: (s != "isolated", s))
    permissive = "--permissive-lefts" in cmd
    lines = [
        "# SUMO software-in-the-loop bench"
        + (": protected / permissive lefts" if permissive else ""),
        "",
        *(PERMISSIVE_NOTE if permissive else ()),
        "`edgectl bench sumo SCENARIO.sumocfg --controller NAME [--seed N] [--json OUT]"
        " [-- SUMO_ARGS…]` runs one controller against a SUMO scenario (SPEC §10). This page",
        "is written by the matrix command, which runs every scenario × controller × seed in",
        "parallel processes:",
        "",
        "```",
        "python -m bench.scenarios.build         # netconvert the scenarios (also done below)",
        cmd,
        "```",
        "",
        "How the bench works: for every signalised junction it derives signal groups (tls link",
        "indices → channels), conflicts (SUMO's `<request>` foes), stages (the tls default",
        "program without permissive turns of lefts it also protects), the NEMA dual ring of a"
        " four-arm junction",
        "when SUMO's conflicts allow every concurrency it needs (else one ring of stages, a",
        "barrier after each),",
        "detector assignment (E1 loops on incoming lanes; stop bar or ~40 m advance by",
        "position) and ITE yellow / red clearance from lane speeds. `edgectl:*` run one",
        "`edgectl.control.controller.Controller` per junction (engine, safety kernel and",
        "strategy of the daemon) at 0.1 s sub-steps inside each SUMO step (1 s here);",
        "`sumo:*` are SUMO's own static / actuated / delay-based programs built from the same",
        "stages and clearances. Metrics come from SUMO's tripinfo device (arrived vehicles) and",
        "subscriptions (stops; per-approach delay = time lost on each signalised incoming",
        "edge). A teleport or a collision makes a run invalid.",
        "",
        f"Last run: seeds {', '.join(map(str, seeds))}; {len(runs)} runs in {wall:.0f} s wall"
        " on 2 cores. Values are mean ± standard deviation over seeds; times in seconds per"
        " vehicle.",
        "",
        f"![time loss per controller and scenario](img/{png.name})",
        "",
    ]
    for sc in scenarios:
        lines += [
            f"## {sc}",
            "",
            "| controller | time loss | waiting | trip duration | insertion delay | stops |"
            " worst approach delay | arrived / loaded | teleports | valid |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in CONTROLLERS:
            rs = [r for r in runs if r["scenario"] == sc and r["controller"] == c]
            if not rs:
                continue
            lines.append(
                f"| `{c}` | {_stat([r['time_loss_s'] for r in rs])}"
                f" | {_stat([r['waiting_s'] for r in rs])}"
                f" | {_stat([r['duration_s'] for r in rs])}"
                f" | {_stat([r['depart_delay_s'] for r in rs])}"
                f" | {_stat([r['stops'] for r in rs])}"
                f" | {_stat([r['worst_approach_delay_s'] for r in rs])}"
                f" | {sum(r['arrived'] for r in rs)} / {sum(r['loaded'] for r in rs)}"
                f" | {sum(r['teleports'] for r in rs)}"
                f" | {'yes' if all(r['valid'] for r in rs) else 'NO'} |"
            )
        lines.append("")
    lines += [
        "## Acceptance check: `edgectl:adaptive`",
        "",
        "Target (issue 6): on every scenario and seed, adaptive mean time loss ≤ 0.75 ×"
        " `sumo:actuated` and ≤ 0.80 × the best of SUMO's own controllers, zero teleports,"
        " every vehicle arrived.",
        "",
        "| scenario | seed | adaptive | sumo:actuated | ratio (≤ 0.75) | best SUMO |"
        " ratio (≤ 0.80) | all arrived, no teleport | worst approach: adaptive / sumo:actuated"
        " | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    met_all = True
    for sc in scenarios:
        for seed in seeds:
            by = {r["controller"]: r for r in runs if r["scenario"] == sc and r["seed"] == seed}
            a = by.get("edgectl:adaptive")
            act = by.get("sumo:actuated")
            own = [by[c] for c in SUMO_OWN if c in by]
            if a is None or act is None or not own:
                continue
            best = min(own, key=lambda r: r["time_loss_s"])
            r1 = a["time_loss_s"] / act["time_loss_s"]
            r2 = a["time_loss_s"] / best["time_loss_s"]
            clean = a["valid"] and a["all_arrived"]
            met = r1 <= 0.75 and r2 <= 0.80 and clean
            met_all = met_all and met
            lines.append(
                f"| {sc} | {seed} | {a['time_loss_s']:.1f} | {act['time_loss_s']:.1f}"
                f" | {r1:.2f} | {best['time_loss_s']:.1f} (`{best['controller']}`)"
                f" | {r2:.2f} | {'yes' if clean else 'NO'}"
                f" | {a['worst_approach_delay_s']:.1f} / {act['worst_approach_delay_s']:.1f}"
                f" | {'yes' if met else '**no**'} |"
            )
    lines += [
        "",
        f"Overall: **{'met' if met_all else 'not met'}**.",
        "",
        NOTES,
    ]
    return "\n".join(lines)


def write_plot(runs: list[dict[str, Any]], png: Path = PNG) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({r["scenario"] for r in runs}, key=lambda s: (s != "isolated", s))
    controllers = [c for c in CONTROLLERS if any(r["controller"] == c for r in runs)]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    width = 0.8 / max(1, len(controllers))
    for i, c in enumerate(controllers):
        means, lo, hi = [], [], []
        for sc in scenarios:
            vals = [r["time_loss_s"] for r in runs if r["scenario"] == sc and r["controller"] == c]
            m = statistics.fmean(vals) if vals else 0.0
            means.append(m)
            lo.append(m - min(vals) if vals else 0.0)
            hi.append(max(vals) - m if vals else 0.0)
        xs = [k + (i - (len(controllers) - 1) / 2) * width for k in range(len(scenarios))]
        ax.bar(
            xs,
            means,
            width,
            yerr=[lo, hi],
            capsize=3,
            label=c,
            hatch="//" if c.startswith("sumo:") else None,
        )
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_ylabel("mean time loss per vehicle (s)")
    ax.set_title("SUMO bench: time loss per controller (bars: mean; whiskers: min–max over seeds)")
    top = max((r["time_loss_s"] for r in runs), default=1.0)
    ax.set_ylim(0, top * 1.3)
    ax.legend(ncols=4, fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--scenarios", nargs="+", default=list(builder.SCENARIOS))
    parser.add_argument("--controllers", nargs="+", default=list(CONTROLLERS))
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="print only; write no docs")
    parser.add_argument(
        "--permissive-lefts",
        action="store_true",
        help="keep the permissive turns of protected / permissive lefts (every controller);"
        " writes docs/sumo-bench-permissive-lefts.{md,json} and its plot",
    )
    args = parser.parse_args(argv)
    doc, raw, png = DOC, RAW, PNG
    if args.permissive_lefts:
        tag = "-permissive-lefts"
        doc = DOC.with_name(f"sumo-bench{tag}.md")
        raw = RAW.with_name(f"sumo-bench{tag}.json")
        png = PNG.with_name(f"sumo-matrix{tag}.png")
    cfgs = scenario_configs(builder, args.scenarios, build=not args.no_build)
    jobs = [
        (name, str(cfg), c, seed, args.permissive_lefts)
        for name, cfg in cfgs.items()
        for c in args.controllers
        for seed in args.seeds
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(_one, jobs))
    wall = time.perf_counter() - t0
    for r in runs:
        print(
            f"{r['scenario']:16s} {r['controller']:20s} seed={r['seed']}"
            f" loss={r['time_loss_s']:6.2f} wait={r['waiting_s']:6.2f}"
            f" worst={r['worst_approach_delay_s']:6.1f} arrived={r['arrived']}/{r['loaded']}"
            f" tp={r['teleports']} wall={r['wall_s']:.1f}"
        )
    if not args.no_docs:
        cmd = "python -m bench.sumo_matrix --seeds " + " ".join(map(str, args.seeds))
        if args.permissive_lefts:
            cmd += " --permissive-lefts"
        doc.parent.mkdir(parents=True, exist_ok=True)
        from bench.issue19_baseline import kept_section  # written by its own command

        doc.write_text(write_markdown(runs, args.seeds, wall, cmd, png=png) + kept_section(doc))
        raw.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
        write_plot(runs, png)
        print(f"wrote {doc}, {raw}, {png}")
    return 0 if all(r["valid"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
