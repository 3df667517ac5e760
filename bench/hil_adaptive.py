"""The daemon in each control mode against firmware_sim over Modbus TCP: delay and service.

    .venv/bin/python -m bench.hil_adaptive [--duration 300]
        [--modes actuated adaptive maxpressure] [--seeds 1]
        [--demand bench/demand/eight_phase_peak.csv] [--config edgectl/examples/eight_phase.toml]
        [--profile builtin:nema-cabinet]
        [--workdir DIR] [--json OUT] [--markdown OUT]

For every mode and seed, one session (:func:`edgectl.testing.service.run_mode`): ``firmware-sim``
as a subprocess (the ``nema-cabinet`` profile: stop-bar loops 1–8, advance loops 9–12 40 m up
on 2/4/6/8) and the daemon exactly as ``edgectl run`` builds it, in this process, in real time,
with the same demand and seed. Each session is measured over the same window — the emulator
is stopped at ``--duration`` s on its own clock, so every mode sees the same arrivals.

Reported per mode, from the emulator's ``--summary`` and ``--record`` (ground truth): mean
vehicle delay of the vehicles served, and of those plus the ones still waiting at the end
(with the delay they have so far — a controller that leaves vehicles waiting is not
flattered), vehicles served / arrived / still queued, MMU trips, the shortest yellow shown,
and per phase the same delays and the longest (vehicles still waiting included), green time,
greens and the longest red. From the daemon's own outputs: the longest wait of a call for its
green, skips (a phase left out of a pass of its barrier group although called before the pass
began) and re-services (a phase green twice in one pass of its barrier group while a call
waited beyond the barrier). Modes run one after another.
Exit status 0 when every session ran with the MMU untripped and no safety finding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgectl.config.loader import load_config
from edgectl.config.model import Mode
from edgectl.logs import configure_logging
from edgectl.testing.service import ModeRun, run_mode

REPO = Path(__file__).resolve().parents[1]

EIGHT_PHASE = REPO / "edgectl" / "examples" / "eight_phase.toml"
PEAK = REPO / "bench" / "demand" / "eight_phase_peak.csv"


def _longest_delay(movement: dict[str, Any]) -> float:
    return max(float(movement.get("delay_s_max", 0.0)), float(movement.get("waiting_s_max", 0.0)))


def result(run: ModeRun) -> dict[str, Any]:
    """One session as plain data (the JSON output and the tables)."""
    s = run.summary
    phase_of = {int(ch): int(c["phase"]) for ch, c in s["channels"].items()}
    phases: dict[str, Any] = {}
    for mid, mv in s["movements"].items():
        ch = int(mv["channel"])
        p = phase_of.get(ch, ch)
        chan = run.channels.get(ch)
        svc = run.service.phases.get(p)
        phases[str(p)] = {
            "movement": mid,
            "arrived": mv["arrived"],
            "served": mv["served"],
            "in_queue": mv["in_queue"],
            "delay_s_mean": mv["delay_s_mean"],
            "delay_s_mean_with_waiting": mv["delay_s_mean_with_waiting"],
            "delay_s_max": round(_longest_delay(mv), 1),
            "green_s": round(chan.green_s, 1) if chan else 0.0,
            "greens": chan.greens if chan else 0,
            "red_max_s": round(chan.red_max_s, 1) if chan else 0.0,
            "call_wait_max_s": round(svc.max_wait_s, 1) if svc else 0.0,
            "estimate_max": svc.estimate_max if svc else None,
        }
    longest = run.service.longest_wait()
    return {
        "mode": run.mode.value,
        "seed": run.seed,
        "window_s": run.duration_s,
        "delay_s_mean": s["delay_s_mean"],
        "delay_s_mean_with_waiting": s["delay_s_mean_with_waiting"],
        "vehicles": s["vehicles"],
        "mmu_trips": len(s["mmu"]["faults"]),
        "mmu": s["mmu"],
        "yellow_min_s": None if run.yellow_min_s is None else round(run.yellow_min_s, 2),
        "reservices": len(run.service.reservices),
        "skips": len(run.service.skips),
        "longest_call_wait": None
        if longest is None
        else {
            "phase": longest.phase,
            "seconds": round(longest.seconds, 1),
            "since": round(longest.since, 1),
            "served": longest.served,
        },
        "cycle_bound_s": run.cycle_bound_s,
        "safety_findings": [str(f) for f in run.record_findings + run.phase_findings],
        "phases": phases,
        "service_log": run.service.describe(),
    }


def tables(results: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | seed | mean delay s (served / with waiting) | served / arrived (queued) "
        "| MMU trips | min yellow s | skips | re-services | longest call wait s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        v = r["vehicles"]
        lw = r["longest_call_wait"]
        wait = "-" if lw is None else f"{lw['seconds']} (φ{lw['phase']})"
        lines.append(
            f"| {r['mode']} | {r['seed']} | {r['delay_s_mean']:.1f} / "
            f"{r['delay_s_mean_with_waiting']:.1f} | {v['served']} / {v['arrived']} "
            f"({v['in_queue']}) | {r['mmu_trips']} | {r['yellow_min_s']} | {r['skips']} "
            f"| {r['reservices']} | {wait} |"
        )
    for r in results:
        lines += [
            "",
            f"**{r['mode']}**, seed {r['seed']}, {r['window_s']:.0f} s:",
            "",
            "| phase | delay mean (with waiting) / max s | served / arrived | green s | greens "
            "| longest red s | longest call wait s |",
            "|---|---|---|---|---|---|---|",
        ]
        for p, ph in sorted(r["phases"].items()):
            lines.append(
                f"| {p} | {ph['delay_s_mean']:.1f} ({ph['delay_s_mean_with_waiting']:.1f}) / "
                f"{ph['delay_s_max']:.1f} | {ph['served']} / "
                f"{ph['arrived']} | {ph['green_s']:.1f} | {ph['greens']} | {ph['red_max_s']:.1f} "
                f"| {ph['call_wait_max_s']:.1f} |"
            )
    return "\n".join(lines)


async def _main(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    config = load_config(args.config)
    results: list[dict[str, Any]] = []
    for seed in args.seeds:
        for mode in args.modes:
            started = time.monotonic()
            print(f"{mode.value} seed {seed}: {args.duration:.0f} s …", file=sys.stderr, flush=True)
            run = await run_mode(
                config,
                mode,
                workdir=workdir,
                duration_s=args.duration,
                seed=seed,
                demand=args.demand,
                profile=args.profile,
            )
            r = result(run)
            r["wall_s"] = round(time.monotonic() - started, 1)
            results.append(r)
            print(
                f"  mean delay {r['delay_s_mean']:.1f} s ({r['delay_s_mean_with_waiting']:.1f} s "
                f"with waiting), served {r['vehicles']['served']}/{r['vehicles']['arrived']}, "
                f"MMU trips {r['mmu_trips']}, wall {r['wall_s']} s",
                file=sys.stderr,
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="s of emulator time")
    parser.add_argument(
        "--modes",
        type=Mode,
        nargs="+",
        default=[Mode.ACTUATED, Mode.ADAPTIVE, Mode.MAXPRESSURE],
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--demand", type=Path, default=PEAK, help="firmware-sim --demand CSV")
    parser.add_argument("--config", type=Path, default=EIGHT_PHASE)
    parser.add_argument(
        "--profile",
        default="builtin:nema-cabinet",
        help="firmware-sim --profile (e.g. builtin:io-modules-zones with "
        "edgectl/examples/io_modules_zones.toml: emulated zone sensors)",
    )
    parser.add_argument("--workdir", type=Path, help="keep records, summaries and logs here")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args(argv)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="hil-adaptive-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with (workdir / "daemon.log").open("w", encoding="utf-8") as log:
            configure_logging("info", json=True, stream=log)
            results = asyncio.run(_main(args, workdir))
    text = tables(results)
    print(
        f"hil_adaptive: {args.config.name}, demand {args.demand.name}, "
        f"{args.duration:.0f} s per session, started {started}\n"
    )
    print(text)
    for r in results:
        if r["mode"] == Mode.ADAPTIVE.value:
            print(f"\nadaptive seed {r['seed']}, what the daemon did:\n{r['service_log']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    ok = all(r["mmu_trips"] == 0 and not r["safety_findings"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
