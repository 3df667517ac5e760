"""Aggregated telemetry over a period, from the stream of :class:`Outputs` (pure).

Per detector: volume (rising edges) and occupancy (share of ticks occupied).
Per phase: green time, gap-outs, max-outs, force-offs, split failures and a queue estimate.

A split failure follows the ATSPM definition: the green occupancy ratio of the phase's
stop-bar detectors is at least 0.79 *and* the occupancy in the first 5 s of the following
red is at least 0.79 — vehicles were waiting all through green and still are at its end.

The queue estimate of a phase is the number of actuations on its calling detectors since
its last green ended: vehicles that arrived while it could not serve them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from edgectl.config.model import Config, DetectorType
from edgectl.control.types import EventCode, Interval, Outputs

SPLIT_FAILURE_RATIO = 0.79
ROR_WINDOW_S = 5.0


@dataclass(slots=True)
class _PhaseAcc:
    green_s: float = 0.0
    gap_outs: int = 0
    max_outs: int = 0
    force_offs: int = 0
    split_failures: int = 0
    queue: int = 0
    # split-failure bookkeeping for the current/last green
    g_on: int = 0
    g_all: int = 0
    r_on: int = 0
    r_all: int = 0
    red_since: float | None = None


@dataclass(slots=True)
class TelemetryAggregator:
    config: Config
    tick: float = 0.1
    _volume: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _occupied: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _ticks: int = 0
    _last_on: dict[int, bool] = field(default_factory=dict)
    _phases: dict[int, _PhaseAcc] = field(default_factory=dict)
    _period_start: float | None = None
    _stop_bar: dict[int, tuple[int, ...]] = field(default_factory=dict)
    _callers: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._phases = {p.id: _PhaseAcc() for p in self.config.phases}
        self._stop_bar = {
            p.id: tuple(
                d.id
                for d in self.config.detectors
                if d.type is DetectorType.STOP_BAR and p.id in d.call_phases
            )
            for p in self.config.phases
        }
        self._callers = {
            p.id: tuple(d.id for d in self.config.detectors if p.id in d.call_phases)
            for p in self.config.phases
        }

    def add(self, out: Outputs) -> None:
        if self._period_start is None:
            self._period_start = out.t
        self._ticks += 1
        on = {d.id: d.on for d in out.detectors}
        for det, is_on in on.items():
            if is_on:
                self._occupied[det] += 1
                if not self._last_on.get(det, False):
                    self._volume[det] += 1
        green = {r.phase for r in out.rings if r.phase is not None and r.interval is Interval.GREEN}
        for pid, acc in self._phases.items():
            sb = self._stop_bar[pid]
            occupied = any(on.get(d, False) for d in sb)
            if pid in green:
                acc.green_s += self.tick
                if sb:
                    acc.g_all += 1
                    acc.g_on += occupied
            elif acc.red_since is not None and sb and out.t - acc.red_since < ROR_WINDOW_S:
                acc.r_all += 1
                acc.r_on += occupied
                if out.t - acc.red_since + self.tick >= ROR_WINDOW_S:
                    self._judge_split(acc)
            if pid not in green:
                for d in self._callers[pid]:
                    if on.get(d, False) and not self._last_on.get(d, False):
                        acc.queue += 1
        for ev in out.events:
            acc_e = self._phases.get(ev.param)
            if acc_e is None:
                continue
            if ev.code == EventCode.PHASE_GAP_OUT:
                acc_e.gap_outs += 1
            elif ev.code == EventCode.PHASE_MAX_OUT:
                acc_e.max_outs += 1
            elif ev.code == EventCode.PHASE_FORCE_OFF:
                acc_e.force_offs += 1
            elif ev.code == EventCode.PHASE_BEGIN_YELLOW:
                acc_e.red_since = None
            elif ev.code == EventCode.PHASE_BEGIN_RED_CLEAR:
                acc_e.red_since = ev.t
                acc_e.r_on = acc_e.r_all = 0
            elif ev.code == EventCode.PHASE_BEGIN_GREEN:
                acc_e.queue = 0
                acc_e.g_on = acc_e.g_all = 0
        self._last_on = on

    def _judge_split(self, acc: _PhaseAcc) -> None:
        if acc.g_all and acc.r_all:
            gor = acc.g_on / acc.g_all
            ror = acc.r_on / acc.r_all
            if gor >= SPLIT_FAILURE_RATIO and ror >= SPLIT_FAILURE_RATIO:
                acc.split_failures += 1
        acc.red_since = None

    def take(self, t: float) -> dict[str, object]:
        """The period's figures; counters restart (queue estimates carry on)."""
        period = 0.0 if self._period_start is None else t - self._period_start
        ticks = max(self._ticks, 1)
        payload: dict[str, object] = {
            "period_s": round(period, 1),
            "detectors": {
                str(d.id): {
                    "volume": self._volume.get(d.id, 0),
                    "occupancy": round(self._occupied.get(d.id, 0) / ticks, 4),
                }
                for d in self.config.detectors
            },
            "phases": {
                str(pid): {
                    "green_s": round(acc.green_s, 1),
                    "gap_outs": acc.gap_outs,
                    "max_outs": acc.max_outs,
                    "force_offs": acc.force_offs,
                    "split_failures": acc.split_failures,
                    "queue_estimate": acc.queue,
                }
                for pid, acc in self._phases.items()
            },
        }
        self._volume.clear()
        self._occupied.clear()
        self._ticks = 0
        self._period_start = t
        for acc in self._phases.values():
            acc.green_s = 0.0
            acc.gap_outs = acc.max_outs = acc.force_offs = acc.split_failures = 0
        return payload
