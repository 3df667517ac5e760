"""Issue 19 baseline: edgectl against SUMO's own programs timed by Webster.

    python -m bench.issue19_baseline [--seeds 1 2 3] [--scenarios …] [--json OUT]

Builds the scenarios (:mod:`bench.scenarios.build`), runs every controller × scenario × seed
one after the other (SUMO is single-threaded; the machine's cores are shared), and prints a
Markdown table: mean time loss over the seeds per controller, and ``edgectl:*`` / SUMO
actuated and / the best SUMO program. ``sumo:static`` and ``sumo:actuated`` are timed by
Webster for each scenario's peak flows (:mod:`edgectl.sumo.webster`); ``sumo:delay_based``
keeps the derived min / max greens. A run where a vehicle did not arrive or teleported is
marked and left out of the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[1] / "docs" / "sumo-bench.md"
HEADING = "## Against timed peers (issue 19 baseline)"
SCENARIOS = ("saturated", "turning", "grid2x2", "isolated", "tee", "arterial")
PEERS = ("sumo:static", "sumo:actuated", "sumo:delay_based")
EDGECTL = ("edgectl:actuated", "edgectl:adaptive")


def run(
    scenarios: tuple[str, ...],
    seeds: tuple[int, ...],
    controllers: tuple[str, ...],
    peer_timing: str = "webster",
) -> list[dict[str, Any]]:
    from bench.scenarios.build import build
    from edgectl.sumo import run_bench

    rows: list[dict[str, Any]] = []
    for name in scenarios:
        cfg = build(name)
        for controller in controllers:
            for seed in seeds:
                r = run_bench(cfg, controller, seed=seed, peer_timing=peer_timing)
                rows.append(
                    {
                        "scenario": name,
                        "controller": controller,
                        "seed": seed,
                        "time_loss_s": r.time_loss_s,
                        "worst_approach_delay_s": r.worst_approach_delay_s,
                        "stops": r.stops,
                        "arrived": r.arrived,
                        "loaded": r.loaded,
                        "teleports": r.teleports,
                        "ok": r.valid and r.all_arrived and r.teleports == 0,
                        "wall_s": r.wall_s,
                    }
                )
                print(
                    f"{name} {controller} seed {seed}: {r.time_loss_s:.1f} s"
                    f" ({r.arrived}/{r.loaded}, teleports {r.teleports})",
                    file=sys.stderr,
                )
    return rows


def table(rows: list[dict[str, Any]], controllers: tuple[str, ...]) -> str:
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    head = [f"`{c}`" for c in controllers]
    ratio_cols = [
        f"`{c}` / {peer}"
        for c in controllers
        if c.startswith("edgectl:")
        for peer in ("SUMO actuated", "best SUMO")
    ]
    lines = [
        "| scenario | " + " | ".join(head + ratio_cols) + " | all valid |",
        "|---" * (1 + len(head) + len(ratio_cols) + 1) + "|",
    ]
    geo: dict[str, list[float]] = {}
    for name in scenarios:
        mine = [r for r in rows if r["scenario"] == name]
        ok = all(r["ok"] for r in mine)
        mean = {
            c: statistics.fmean(r["time_loss_s"] for r in mine if r["controller"] == c)
            for c in controllers
            if any(r["controller"] == c for r in mine)
        }
        peers = {c: v for c, v in mean.items() if c.startswith("sumo:")}
        best = min(peers, key=lambda c: peers[c]) if peers else None
        cells = [f"{mean[c]:.1f}" if c in mean else "–" for c in controllers]
        for c in controllers:
            if not c.startswith("edgectl:"):
                continue
            for label, peer in (("SUMO actuated", "sumo:actuated"), ("best SUMO", best)):
                if c in mean and peer in mean:
                    ratio = mean[c] / mean[peer]
                    geo.setdefault(f"`{c}` / {label}", []).append(ratio)
                    cells.append(f"{ratio:.2f}" + (f" (`{peer}`)" if label == "best SUMO" else ""))
                else:
                    cells.append("–")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'yes' if ok else '**no**'} |")
    lines.append("")
    for key, vals in geo.items():
        g = math.exp(statistics.fmean(math.log(v) for v in vals))
        lines.append(f"- geometric mean over scenarios, {key}: {g:.2f}")
    lines += [
        "",
        "Worst approach (mean delay on the worst signalised approach of each run, s; mean over"
        " seeds):",
        "",
        "| scenario | " + " | ".join(head) + " |",
        "|---" * (1 + len(head)) + "|",
    ]
    for name in scenarios:
        cells = []
        for c in controllers:
            vals = [
                r["worst_approach_delay_s"]
                for r in rows
                if r["scenario"] == name and r["controller"] == c
            ]
            cells.append(f"{statistics.fmean(vals):.1f}" if vals else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kept_section(doc: Path = DOC) -> str:
    """The issue 19 section of ``doc`` (from its heading to the next ``## `` or the end),
    with a leading blank line; "" when there is none. The matrix command keeps it."""
    if not doc.is_file():
        return ""
    text = doc.read_text()
    start = text.find(HEADING)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(HEADING))
    return "\n" + text[start : end + 1 if end >= 0 else len(text)].rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    parser.add_argument("--controllers", nargs="+", default=[*PEERS, *EDGECTL])
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="print the table of an earlier --json"
    )
    parser.add_argument(
        "--peer-timing",
        choices=("webster", "default"),
        default="webster",
        help="default: SUMO's programs on the network's demand-blind splits (for comparison)",
    )
    args = parser.parse_args(argv)
    controllers = tuple(args.controllers)
    if args.from_json is not None:
        rows = json.loads(args.from_json.read_text())
        print(table(rows, tuple(c for c in controllers if any(r["controller"] == c for r in rows))))
        return 0
    t0 = time.perf_counter()
    rows = run(tuple(args.scenarios), tuple(args.seeds), controllers, args.peer_timing)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(table(rows, controllers))
    print(f"\n{len(rows)} runs in {time.perf_counter() - t0:.0f} s wall, one at a time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
