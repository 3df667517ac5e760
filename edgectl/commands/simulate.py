"""``edgectl simulate``: the controller against a seeded random detector stream, in virtual time.

Runs :class:`~edgectl.control.controller.Controller` on a configuration (default: the
packaged ``edgectl/examples/eight_phase.toml``) at 0.1 s ticks, as fast as the CPU allows,
against
:class:`~edgectl.control.demand.PoissonDemand` — Poisson vehicle arrivals per phase that
queue over the stop-bar loop while the phase is red and discharge at a saturation headway on
green, pulses on the advance loops, and Poisson pedestrian button presses. It prints the signal
timeline (one line per interval change: time, ring, phase, interval, reason) and a summary.

    edgectl simulate --duration 600 --seed 7 --events-csv events.csv
    edgectl simulate my-junction.toml --mode coordinated --plan 2
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from edgectl.atspm.events import write_atspm_csv
from edgectl.commands.examples import DEFAULT_EXAMPLE, example_path
from edgectl.config.model import Config, Mode
from edgectl.control.controller import Controller
from edgectl.control.demand import PoissonDemand
from edgectl.control.types import Event, EventCode, Outputs
from edgectl.errors import ConfigError

_REASONS = {
    EventCode.PHASE_GAP_OUT: "gap-out",
    EventCode.PHASE_MAX_OUT: "max-out",
    EventCode.PHASE_FORCE_OFF: "force-off",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help=f"configuration (default: the packaged example {DEFAULT_EXAMPLE})",
    )
    parser.add_argument("--duration", type=float, default=300.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the demand")
    parser.add_argument("--events-csv", metavar="F", help="write hi-res events as ATSPM CSV")
    parser.add_argument(
        "--mode", choices=[m.value for m in Mode], help="control mode (default: the config's)"
    )
    parser.add_argument("--plan", type=int, help="timing plan id (default: the config's)")
    parser.add_argument("--quiet", "-q", action="store_true", help="summary only")


def _resolve(path: str | None) -> Path:
    return Path(path) if path is not None else example_path()


def _load(path: Path) -> Config:
    from edgectl.config.loader import load_config

    return load_config(path)


def timeline_lines(out: Outputs, reasons: dict[int, str]) -> list[str]:
    """Timeline lines for one tick's events (interval changes, flash, barrier, preempt)."""
    lines: list[str] = []
    ring_of = {}
    for r in out.rings:
        if r.phase is not None:
            ring_of[r.phase] = r.ring
    for ev in out.events:
        code = ev.code
        if code in _REASONS:
            reasons[ev.param] = _REASONS[EventCode(code)]
            continue
        text: str | None = None
        if code == EventCode.PHASE_BEGIN_GREEN:
            text = f"phase {ev.param:<2} green"
        elif code == EventCode.PHASE_BEGIN_YELLOW:
            text = f"phase {ev.param:<2} yellow     ({reasons.pop(ev.param, 'clear')})"
        elif code == EventCode.PHASE_BEGIN_RED_CLEAR:
            text = f"phase {ev.param:<2} red clear"
        elif code == EventCode.PED_BEGIN_WALK:
            text = f"phase {ev.param:<2} walk"
        elif code == EventCode.PED_BEGIN_CLEAR:
            text = f"phase {ev.param:<2} ped clear"
        elif code == EventCode.BARRIER_TERMINATION:
            text = f"barrier -> group {ev.param}"
        elif code == EventCode.UNIT_FLASH_STATUS_CHANGE:
            text = f"flash {'on' if ev.param else 'off'} ({out.state.value})"
        elif code == EventCode.PREEMPT_CALL_ON:
            text = f"preempt {ev.param} call"
        elif code == EventCode.MONITOR_VIOLATION:
            text = f"MONITOR VIOLATION channel {ev.param}"
        if text is not None:
            ring = ring_of.get(ev.param) if code in (1, 8, 10, 21, 22) else None
            where = f"ring {ring}" if ring is not None else "      "
            lines.append(f"{ev.t:9.1f}  {where}  {text}")
    return lines


def simulate(
    config: Config,
    *,
    duration: float,
    seed: int,
    mode: Mode | None = None,
    plan_id: int | None = None,
    timeline: bool = True,
    stream: TextIO | None = None,
) -> tuple[Controller, list[Event], PoissonDemand]:
    """Run the simulation; returns the controller, every event and the demand model."""
    out_stream = sys.stdout if stream is None else stream
    controller = Controller(config, mode=mode, plan_id=plan_id)
    demand = PoissonDemand(config, seed=seed)
    events: list[Event] = []
    reasons: dict[int, str] = {}
    last: Outputs | None = None
    ticks = round(duration * 10)
    for tick in range(ticks + 1):
        inputs = demand.inputs(tick, last)
        last = controller.step(tick / 10, inputs)
        if last.events:
            events.extend(last.events)
            if timeline:
                for line in timeline_lines(last, reasons):
                    print(line, file=out_stream)
    return controller, events, demand


def run(args: argparse.Namespace) -> int:
    path = _resolve(args.config)
    try:
        config = _load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"edgectl simulate: {exc}", file=sys.stderr)
        return 1
    mode = Mode(args.mode) if args.mode else None
    plan_id = args.plan if args.plan is not None else config.control.plan
    if plan_id not in {p.id for p in config.plans}:
        print(f"edgectl simulate: no plan {plan_id} in {path}", file=sys.stderr)
        return 2
    if args.duration <= 0:
        print("edgectl simulate: --duration must be positive", file=sys.stderr)
        return 2
    print(
        f"# edgectl simulate: {config.intersection.id} ({path}), mode "
        f"{(mode or config.control.mode).value}, plan {plan_id}, "
        f"{args.duration:g} s, seed {args.seed}"
    )
    print(f"# {'time s':>7}  {'ring':6}  interval")
    controller, events, demand = simulate(
        config,
        duration=args.duration,
        seed=args.seed,
        mode=mode,
        plan_id=plan_id,
        timeline=not args.quiet,
    )
    counts = Counter(ev.code for ev in events)
    greens = Counter(ev.param for ev in events if ev.code == EventCode.PHASE_BEGIN_GREEN)
    last = controller.last
    print("# summary")
    print(f"  simulated        {args.duration:g} s ({controller.counters['ticks']} ticks)")
    print(f"  state            {last.state.value if last else '-'}, mode {controller.mode.value}")
    print("  greens per phase " + " ".join(f"{p}:{n}" for p, n in sorted(greens.items())))
    print(
        f"  terminations     gap-out {counts[EventCode.PHASE_GAP_OUT]}, "
        f"max-out {counts[EventCode.PHASE_MAX_OUT]}, "
        f"force-off {counts[EventCode.PHASE_FORCE_OFF]}"
    )
    print(f"  ped walks        {counts[EventCode.PED_BEGIN_WALK]}")
    print(
        f"  vehicles         arrived {demand.arrived}, served {demand.served}, "
        f"queued {demand.queued}"
    )
    print(f"  monitor          {controller.counters['violations']} violation(s)")
    alarms = ", ".join(sorted(last.alarms)) if last and last.alarms else "none"
    print(f"  alarms           {alarms}")
    if args.events_csv:
        with open(args.events_csv, "w", encoding="utf-8", newline="") as fh:
            n = write_atspm_csv(events, fh, signal_id=config.intersection.id)
        print(f"  events           {n} written to {args.events_csv}")
    return 0 if controller.counters["violations"] == 0 else 1
