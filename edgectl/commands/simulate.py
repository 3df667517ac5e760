"""``edgectl simulate``: the controller against a seeded random detector stream, in virtual time.

Runs :class:`~edgectl.control.controller.Controller` on a configuration (default
``examples/eight_phase.toml``) at 0.1 s ticks, as fast as the CPU allows, against
:class:`PoissonDemand` — Poisson vehicle arrivals per phase that queue over the stop-bar loop
while the phase is red and discharge at a saturation headway on green, pulses on the advance
loops, and Poisson pedestrian button presses. It prints the signal timeline (one line per
interval change: time, ring, phase, interval, reason) and a summary.

    edgectl simulate --duration 600 --seed 7 --events-csv events.csv
    edgectl simulate examples/eight_phase.toml --mode coordinated --plan 2
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from edgectl.config.model import Config, DetectorType, Mode
from edgectl.control.controller import Controller
from edgectl.control.events import write_atspm_csv
from edgectl.control.types import Event, EventCode, Inputs, Interval, Outputs
from edgectl.errors import ConfigError

DEFAULT_CONFIG = "examples/eight_phase.toml"

_REASONS = {
    EventCode.PHASE_GAP_OUT: "gap-out",
    EventCode.PHASE_MAX_OUT: "max-out",
    EventCode.PHASE_FORCE_OFF: "force-off",
}


class PoissonDemand:
    """A seeded random detector stream driven by a tiny queue model (pure, deterministic).

    ``rates`` maps phase → arrivals per second (default: 0.12 veh/s for phases with a
    pedestrian movement or on the main street, 0.04 for the others); ``ped_rate`` is the
    pushes per second per pedestrian phase. Per tick call
    :meth:`inputs` with the controller's last outputs.
    """

    HEADWAY = 20  # ticks between discharging vehicles (2.0 s)
    OCCUPY = 6  # ticks a moving vehicle occupies a loop

    def __init__(
        self,
        config: Config,
        *,
        seed: int = 1,
        rates: Mapping[int, float] | None = None,
        ped_rate: float = 0.005,
    ) -> None:
        self._rng = random.Random(seed)
        self._config = config
        phases = {p.id: p for p in config.phases}
        self.rates: dict[int, float] = {}
        for p in phases.values():
            default = 0.12 if (p.main_street or p.pedestrian) else 0.04
            self.rates[p.id] = default if rates is None else rates.get(p.id, 0.0)
        self._stop: dict[int, list[int]] = {}
        self._advance: dict[int, list[int]] = {}
        for d in config.detectors:
            for phase_id in d.call_phases[:1]:
                target = self._advance if d.type is DetectorType.ADVANCE else self._stop
                target.setdefault(phase_id, []).append(d.id)
        self._queue: dict[int, int] = dict.fromkeys(phases, 0)
        self._next_discharge: dict[int, int] = dict.fromkeys(phases, 0)
        self._pulse: dict[int, int] = {}  # detector → tick its pulse ends
        self._peds = [p.id for p in phases.values() if p.pedestrian]
        self._ped_rate = ped_rate
        self._p0 = {p: math.exp(-rate / 10) for p, rate in self.rates.items()}
        # one push somewhere per tick with the summed probability (pushes are rare)
        self._ped_any = min(1.0, len(self._peds) * ped_rate / 10)
        self.arrived = 0
        self.served = 0

    @staticmethod
    def _poisson(lam: float, u: float) -> int:
        """Inverse transform of the Poisson distribution for the uniform draw ``u``."""
        k, p = 0, math.exp(-lam)
        s = p
        while u > s and k < 10:
            k += 1
            p *= lam / k
            s += p
        return k

    def inputs(self, tick: int, last: Outputs | None) -> Inputs:
        green: set[int] = set()
        if last is not None:
            for r in last.rings:
                if r.phase is not None and r.interval is Interval.GREEN:
                    green.add(r.phase)
        presence: set[int] = set()
        rnd = self._rng.random
        for p, rate in self.rates.items():
            u = rnd()
            if u < self._p0[p]:
                continue  # no arrival this tick (the common case)
            n = self._poisson(rate / 10, u)
            if n:
                self.arrived += n
                self._queue[p] += n
                for det in self._advance.get(p, ()):
                    self._pulse[det] = tick + self.OCCUPY
        queue = self._queue
        for p, n in queue.items():
            if not n:
                continue
            stop = self._stop.get(p, ())
            if p in green:
                if tick >= self._next_discharge[p]:
                    queue[p] = n - 1
                    self.served += 1
                    self._next_discharge[p] = tick + self.HEADWAY
                    for det in stop:
                        self._pulse[det] = tick + self.HEADWAY - 4
            else:
                presence.update(stop)  # a vehicle waits over the stop-bar loop
                self._next_discharge[p] = tick + 20  # start-up lost time
        if self._pulse:
            for det, end in list(self._pulse.items()):
                if tick < end:
                    presence.add(det)
                else:
                    del self._pulse[det]
        buttons: frozenset[int] = frozenset()
        if self._peds and rnd() < self._ped_any:
            buttons = frozenset({self._rng.choice(self._peds)})
        return Inputs(presence=frozenset(presence), ped_buttons=buttons)

    @property
    def queued(self) -> int:
        return sum(self._queue.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", metavar="CONFIG", help=f"configuration (default {DEFAULT_CONFIG})"
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
    if path is not None:
        return Path(path)
    local = Path(DEFAULT_CONFIG)
    if local.exists():
        return local
    return Path(__file__).resolve().parents[2] / DEFAULT_CONFIG


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
