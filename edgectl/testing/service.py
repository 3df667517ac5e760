"""How a junction served its phases: the daemon's view per tick and the emulator's record.

Two sources, kept apart on purpose:

- :class:`ServiceLog`, a daemon hook (``Daemon.hooks``, called after every control tick):
  when each phase started green, how long each call waited for its green, every phase served
  twice in one pass of its barrier group while a call waited beyond the barrier (a
  *re-service*), every phase left out of a pass of its barrier group although its call was
  there before the pass began (a *skip*), and — when the running strategy keeps one — the
  strategy's own queue estimate per phase next to what the stop-bar loops alone could show
  (the rest can only come from the advance loops). Times are the controller's clock.
- :func:`record_service`, from the emulator's ``--record`` (what the load switches showed):
  greens, green time, the shortest complete yellow and the longest red per vehicle channel.
  Times are the emulator's clock.

:func:`run_mode` runs one session — ``firmware-sim`` as a subprocess over Modbus TCP (or an
RTU pty), the daemon in this process exactly as ``edgectl run`` builds it
(:func:`edgectl.daemon.assemble.build_daemon`) in a chosen control mode — and returns both views,
the emulator's summary and the safety checker's findings. The emulator is stopped first, at
``duration_s`` on its own clock, so every mode is measured over the same window of the same
seeded arrivals. ``bench/hil_adaptive.py`` and ``tests/hil/test_adaptive_hil.py`` use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgectl.config.model import Config, DaemonConfig, DetectorType, Mode, Plan
from edgectl.control.types import Interval, OperatingState, Outputs, Requests
from edgectl.testing.checker import (
    Finding,
    PhaseChecker,
    channel_minimums,
    check_record,
    permissive_channels,
)
from edgectl.testing.hil import Emulator, read_record

if TYPE_CHECKING:
    from edgectl.daemon.loop import Daemon

__all__ = [
    "ChannelService",
    "ModeRun",
    "PhaseService",
    "Reservice",
    "ServiceLog",
    "Skip",
    "Wait",
    "cycle_bound_s",
    "record_service",
    "run_mode",
]

#: Drift between what the engine timed and what the cabinet showed (see tests/hil/support.py).
RECORD_JITTER_S = 0.03


def cycle_bound_s(config: Config, plan: Plan) -> float:
    """The longest a call can wait in ``plan``: one whole cycle of a ring with every phase at
    its longest green (max 1, max 2, or min green + walk + pedestrian clearance) plus its
    yellow and red clearance, for the ring where that is longest."""
    worst = 0.0
    for ring in config.rings:
        total = 0.0
        for p in ring.sequence:
            t = plan.timing.get(p)
            if t is None or t.omit:
                continue
            green = max(t.max1, t.max2 or 0.0, t.min_green + t.walk + t.ped_clear)
            total += green + t.yellow + t.red_clear
        worst = max(worst, total)
    return worst


# ------------------------------------------------------------------------ the daemon's view


@dataclass(slots=True)
class Wait:
    """A call on ``phase`` from ``since`` until its green began at ``until`` (controller
    time); ``served`` is False when the call was still waiting when the log ended."""

    phase: int
    since: float
    until: float
    served: bool

    @property
    def seconds(self) -> float:
        return self.until - self.since


@dataclass(frozen=True, slots=True)
class Reservice:
    """``phase`` (ring ``ring``) started green at ``t`` for the second time in the same pass
    of its barrier group while ``waiting`` (phases beyond the barrier) had calls."""

    t: float
    phase: int
    ring: int
    waiting: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """``phase`` had a call since ``since``, before its barrier group's pass began at
    ``pass_start``; the pass ended at ``t`` (a phase beyond the barrier turned green) without
    serving it."""

    t: float
    phase: int
    since: float
    pass_start: float


@dataclass(slots=True)
class PhaseService:
    """What the daemon did for one phase."""

    phase: int
    green_starts: list[float] = field(default_factory=list)
    green_s: float = 0.0
    waits: list[Wait] = field(default_factory=list)
    estimate_max: float | None = None  # the strategy's queue estimate, when it keeps one
    beyond_stop_bar_max: float | None = None  # estimate − stop-bar loops occupied

    @property
    def max_wait_s(self) -> float:
        return max((w.seconds for w in self.waits), default=0.0)


def _strategy_of(daemon: Daemon) -> object:
    """The controller's current strategy object (read only)."""
    return daemon.controller.strategy


def _queue_estimate(strategy: object) -> Callable[[int], float] | None:
    """The strategy's per-phase queue estimate (``strategy.queues.queue(p)``), if it has one."""
    queues = getattr(strategy, "queues", None)
    queue = getattr(queues, "queue", None)
    return queue if callable(queue) else None


class ServiceLog:
    """A daemon hook: greens, call waits, skips, re-services and the strategy's queue estimates.

    Give it to the daemon's ``hooks``; it looks only at what the daemon already produced (the
    tick's :class:`Outputs`) and, read only, at the strategy's queue estimate. Only normal
    operation counts: a wait is closed (unserved) when the junction leaves it, e.g. for flash.
    :meth:`freeze` ends the log (later ticks are ignored).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.phases: dict[int, PhaseService] = {p.id: PhaseService(p.id) for p in config.phases}
        self.reservices: list[Reservice] = []
        self.skips: list[Skip] = []
        self.ticks = 0
        self.t_first_normal: float | None = None
        self.left_normal: list[tuple[float, str]] = []  # (t, state) after normal operation began
        self.t_last: float = 0.0
        self._frozen = False
        self._group: dict[int, int] = {}
        for index, barrier in enumerate(config.barriers):
            for p in barrier.phases:
                self._group.setdefault(p, index)
        self._ring = {p: r.id for r in config.rings for p in r.sequence}
        self._stop_bar: dict[int, tuple[int, ...]] = {
            p.id: tuple(
                d.id
                for d in config.detectors
                if d.type is DetectorType.STOP_BAR and p.id in d.call_phases
            )
            for p in config.phases
        }
        self._waiting: dict[int, float] = {}
        self._green: dict[int, float] = {}  # phase → green start, while green
        self._pass_group: int | None = None
        self._pass_start = 0.0
        self._pass_served: set[int] = set()
        self._t_normal = 0.0  # last tick in normal operation

    def __call__(self, daemon: Daemon, out: Outputs) -> None:
        self.feed(out, _strategy_of(daemon))

    def freeze(self) -> None:
        """End the log now: open waits are closed as unserved at the last tick."""
        if self._frozen:
            return
        self._close_waits(self.t_last)
        self._end_greens(set(), self.t_last)
        self._frozen = True

    def feed(self, out: Outputs, strategy: object = None) -> None:
        """One tick: the outputs and, optionally, the strategy that made its requests."""
        if self._frozen:
            return
        self.ticks += 1
        self.t_last = out.t
        if out.state is not OperatingState.NORMAL:
            if self.t_first_normal is not None and (
                not self.left_normal or self.left_normal[-1][0] < self._t_normal
            ):
                self.left_normal.append((out.t, out.state.value))
            self._close_waits(out.t)
            self._end_greens(set(), out.t)
            self._pass_group = None
            self._pass_served.clear()
            return
        if self.t_first_normal is None:
            self.t_first_normal = out.t
        self._t_normal = out.t
        timing = {r.phase for r in out.rings if r.phase is not None}
        green = {r.phase for r in out.rings if r.phase is not None and r.interval is Interval.GREEN}
        called = frozenset(p for p in out.calls | out.ped_calls if p in self.phases)
        for p in sorted(green - self._green.keys()):
            self._begin_green(p, out, called)
        self._end_greens(green, out.t)
        for p in called - timing:
            self._waiting.setdefault(p, out.t)
        self._estimates(out, strategy)

    def _begin_green(self, p: int, out: Outputs, called: frozenset[int]) -> None:
        self._green[p] = out.t
        self.phases[p].green_starts.append(out.t)
        since = self._waiting.pop(p, None)
        if since is not None:
            self.phases[p].waits.append(Wait(p, since, out.t, served=True))
        group = self._group.get(p)
        if group != self._pass_group:
            if self._pass_group is not None:
                self._end_pass(out.t)
            self._pass_group = group
            self._pass_start = out.t
            self._pass_served.clear()
        elif p in self._pass_served:
            beyond = sorted(q for q in called if self._group.get(q) != group)
            if beyond:
                self.reservices.append(Reservice(out.t, p, self._ring.get(p, 0), tuple(beyond)))
        self._pass_served.add(p)

    def _end_pass(self, t: float) -> None:
        """The junction crossed the barrier: which phase of the pass's group, called before
        the pass began, was left out?"""
        for q, since in sorted(self._waiting.items()):
            if (
                self._group.get(q) == self._pass_group
                and since < self._pass_start
                and q not in self._pass_served
            ):
                self.skips.append(Skip(t, q, since, self._pass_start))

    def _end_greens(self, green: set[int], t: float) -> None:
        for p in [p for p in self._green if p not in green]:
            self.phases[p].green_s += t - self._green.pop(p)

    def _close_waits(self, t: float) -> None:
        for p, since in self._waiting.items():
            self.phases[p].waits.append(Wait(p, since, t, served=False))
        self._waiting.clear()

    def _estimates(self, out: Outputs, strategy: object) -> None:
        queue = _queue_estimate(strategy)
        if queue is None:
            return
        on = {d.id for d in out.detectors if d.on}
        for p, svc in self.phases.items():
            estimate = float(queue(p))
            beyond = estimate - sum(1 for d in self._stop_bar[p] if d in on)
            svc.estimate_max = max(svc.estimate_max or 0.0, estimate)
            svc.beyond_stop_bar_max = max(svc.beyond_stop_bar_max or 0.0, beyond)

    # --- reading ---

    def max_wait_s(self) -> dict[int, float]:
        return {p: svc.max_wait_s for p, svc in self.phases.items()}

    def longest_wait(self) -> Wait | None:
        waits = [w for svc in self.phases.values() for w in svc.waits]
        return max(waits, key=lambda w: w.seconds, default=None)

    def describe(self) -> str:
        """A readable account: the greens in order, per phase its green time and waits
        (longest first), then every skip and re-service."""
        order: list[str] = []
        for t, p in sorted((t, p) for p, svc in self.phases.items() for t in svc.green_starts):
            if order and order[-1].startswith(f"{t:.1f}:"):
                order[-1] += f" {p}"
            else:
                order.append(f"{t:.1f}: {p}")
        lines = ["greens (t: phases): " + " | ".join(order)]
        for p, svc in sorted(self.phases.items()):
            starts = " ".join(f"{t:.1f}" for t in svc.green_starts) or "-"
            waits = sorted(svc.waits, key=lambda w: -w.seconds)[:3]
            longest = ", ".join(
                f"{w.seconds:.1f} s ({w.since:.1f}→{w.until:.1f}{'' if w.served else ' unserved'})"
                for w in waits
            )
            est = "" if svc.estimate_max is None else f" est.max {svc.estimate_max:.1f}"
            lines.append(
                f"phase {p}: green {svc.green_s:.1f} s, starts at [{starts}]; "
                f"longest waits {longest or '-'}{est}"
            )
        for k in self.skips:
            lines.append(
                f"skipped t={k.t:.1f}: phase {k.phase}, called since {k.since:.1f}, left out of "
                f"its barrier group's pass {k.pass_start:.1f}→{k.t:.1f}"
            )
        for r in self.reservices:
            lines.append(
                f"re-service t={r.t:.1f}: phase {r.phase} (ring {r.ring}) green again in the "
                f"same barrier pass while {list(r.waiting)} waited beyond the barrier"
            )
        return "\n".join(lines)


# ------------------------------------------------------------------------ the emulator's view


@dataclass(slots=True)
class ChannelService:
    """What one vehicle channel showed (emulator record)."""

    channel: int
    greens: int = 0
    green_s: float = 0.0
    yellow_min_s: float | None = None  # shortest complete yellow (yellow → anything)
    red_max_s: float = 0.0  # longest time between the end of a yellow (or take-over) and G


def record_service(
    rows: Iterable[tuple[float, int, str]], channels: Iterable[int], *, end: float
) -> dict[int, ChannelService]:
    """Per vehicle channel, from a ``--record`` (rows ``(time_s, channel, state)``) up to
    ``end`` (the emulator's stop). Red is timed from a yellow's end or from the controller's
    take-over (flash → red), until the next green, flash or ``end``."""
    out = {ch: ChannelService(ch) for ch in channels}
    state: dict[int, tuple[str, float]] = {}
    red_since: dict[int, float] = {}
    for t, ch, st in rows:
        svc = out.get(ch)
        if svc is None:
            continue
        prev = state.get(ch)
        if prev is not None:
            prev_state, since = prev
            if prev_state == "G":
                svc.green_s += t - since
            elif prev_state == "Y":
                lasted = t - since
                svc.yellow_min_s = (
                    lasted if svc.yellow_min_s is None else min(svc.yellow_min_s, lasted)
                )
        if st == "R" and (prev is None or prev[0] in ("Y", "FR", "FY", "OFF")):
            red_since.setdefault(ch, t)
        elif st != "R" and ch in red_since:
            svc.red_max_s = max(svc.red_max_s, t - red_since.pop(ch))
        if st == "G":
            svc.greens += 1
        state[ch] = (st, t)
    for ch, (st, since) in state.items():
        if st == "G":
            out[ch].green_s += max(0.0, end - since)
    for ch, since in red_since.items():
        out[ch].red_max_s = max(out[ch].red_max_s, end - since)
    return out


# ------------------------------------------------------------------------ one session


@dataclass(slots=True)
class ModeRun:
    """One session of the daemon in ``mode`` against the emulator."""

    mode: Mode
    seed: int
    duration_s: float  # emulator time at the stop (the measurement window)
    summary: dict[str, Any]  # the emulator's --summary
    channels: dict[int, ChannelService]  # from the emulator's --record
    service: ServiceLog  # the daemon's view
    record_findings: list[Finding]  # conflicts, yellow, red clearance, ped clearance
    phase_findings: list[Finding]  # min green (and max green in actuated) from the outputs
    workdir: Path
    cycle_bound_s: float = 0.0

    @property
    def yellow_min_s(self) -> float | None:
        ys = [c.yellow_min_s for c in self.channels.values() if c.yellow_min_s is not None]
        return min(ys, default=None)


class _PhaseCheck:
    """Feeds the independent :class:`PhaseChecker` from the daemon's ticks."""

    def __init__(self, config: Config) -> None:
        self.checker = PhaseChecker(config, starvation_bound_s=1e9)
        self.findings: list[Finding] = []
        self.frozen = False

    def __call__(self, daemon: Daemon, out: Outputs) -> None:
        if not self.frozen:
            requests = daemon.controller.last_requests
            self.findings += self.checker.feed(out, requests, operator=Requests())


async def run_mode(
    config: DaemonConfig,
    mode: Mode,
    *,
    workdir: Path,
    duration_s: float,
    seed: int = 1,
    demand: Path | None = None,
    listen: str = "modbus+tcp://127.0.0.1:0",
    profile: str = "builtin:nema-cabinet",
    extra_hooks: Sequence[Callable[[Daemon, Outputs], None]] = (),
) -> ModeRun:
    """The emulator (subprocess) and the daemon (here) in ``mode`` for ``duration_s`` seconds
    of emulator time; see the module docstring."""
    from edgectl.daemon.assemble import build_daemon
    from edgectl.daemon.loop import with_field_url

    state_dir = workdir / f"state-{mode.value}-{seed}"
    await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    name = f"sim-{mode.value}-{seed}"
    extra = ["--demand", str(demand)] if demand is not None else []
    emulator = Emulator(workdir, listen=listen, profile=profile, seed=seed, extra=extra, name=name)
    service = ServiceLog(config)
    check = _PhaseCheck(config)
    summary: dict[str, Any] = {}
    await asyncio.to_thread(emulator.start)
    try:
        cfg = with_field_url(config, emulator.url)
        cfg = cfg.model_copy(
            update={
                "control": cfg.control.model_copy(update={"mode": mode}),
                "daemon": cfg.daemon.model_copy(
                    update={"state_dir": state_dir, "metrics_listen": ""}
                ),
                "mqtt": cfg.mqtt.model_copy(update={"url": ""}),
            }
        )
        daemon, closers = build_daemon(cfg, hooks=[service, check, *extra_hooks])

        async def stop_after() -> None:
            await asyncio.sleep(max(0.0, duration_s - emulator.now()))
            service.freeze()
            check.frozen = True
            nonlocal summary
            summary = await asyncio.to_thread(emulator.stop)
            daemon.request_stop()

        async def run_daemon(stopper: asyncio.Task[None]) -> None:
            try:
                await daemon.run()
            finally:
                stopper.cancel()  # the daemon stopped early (a signal): end the session

        try:
            async with asyncio.TaskGroup() as tg:
                stopper = tg.create_task(stop_after(), name=f"edgectl[stop:{mode.value}]")
                tg.create_task(run_daemon(stopper), name=f"edgectl[daemon:{mode.value}]")
        finally:
            for close in closers:
                close()
    finally:
        if not summary:
            with contextlib.suppress(Exception):
                summary = await asyncio.to_thread(emulator.stop)
    run = ModeRun(
        mode=mode,
        seed=seed,
        duration_s=float(summary["duration_s"]),
        summary=summary,
        channels={},
        service=service,
        record_findings=[],
        phase_findings=check.findings,
        workdir=workdir,
    )
    await asyncio.to_thread(_read_record, run, config, emulator.record_path)
    return run


def _read_record(run: ModeRun, config: Config, record: Path) -> None:
    """The record's findings (independent checker) and per-channel service, into ``run``."""
    plan = config.plan(config.control.plan)
    mins = channel_minimums(config, plan)
    summary = run.summary
    run.record_findings = check_record(
        record,
        [(a, b) for a, b in summary["conflicts"]],
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=RECORD_JITTER_S,
        permissive=permissive_channels(config),
    )
    vehicles = [int(ch) for ch, c in summary["channels"].items() if c["kind"] == "vehicle"]
    run.channels = record_service(read_record(record), vehicles, end=run.duration_s)
    run.cycle_bound_s = cycle_bound_s(config, plan)
