"""Property test: the real Controller in adaptive mode on the example junction with zone
sensors, fed random zone readings — plausible ones, implausible ones (more vehicles than fit,
more halting than vehicles, objects beyond the zone or too fast), stuck counters, dropouts
and silent sensors — with random loop traffic and random projected arrivals from upstream
neighbours (:meth:`Adaptive.expect`, as the daemon feeds them); checked every tick by the
INDEPENDENT checker (:mod:`edgectl.testing.checker`): no conflicting greens, no short
yellow or red clearance, no min green truncated, no called phase waiting longer than the
checker's starvation bound, and the kernel's monitor never intervened.

``ADAPTIVE_ZONES_EXAMPLES`` (default 8) examples of up to ``ADAPTIVE_ZONES_TICKS`` (default
3,000) ticks each; ``-s`` prints the ticks run. A long run, e.g.
``ADAPTIVE_ZONES_EXAMPLES=3000 ADAPTIVE_ZONES_TICKS=5000``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode, Zone
from edgectl.control.controller import Controller
from edgectl.control.strategies.adaptive import Adaptive
from edgectl.control.types import EventCode, Inputs, ZoneReading
from edgectl.testing.checker import SafetyChecker

EXAMPLES = int(os.environ.get("ADAPTIVE_ZONES_EXAMPLES", "8"))
TICKS = int(os.environ.get("ADAPTIVE_ZONES_TICKS", "3000"))
EXAMPLE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "io_modules_zones.toml"
STATS = {"ticks": 0, "zone_faults": 0, "zone_ticks": 0, "planned_on_zones": 0, "projections": 0}

# how a zone behaves during a segment
KINDS = ("plausible", "plausible", "plausible", "implausible", "stuck", "dropout", "silent")


@dataclass(frozen=True)
class Segment:
    """From ``tick`` on, zone ``zone`` behaves as ``kind`` with ``load`` (0..1) traffic."""

    tick: int
    zone: int
    kind: str
    load: float


@st.composite
def scenario(draw: st.DrawFn, zone_ids: tuple[int, ...]) -> tuple[list[Segment], int, float, float]:
    segments: list[Segment] = []
    tick = 0
    while tick < TICKS:
        for z in draw(st.lists(st.sampled_from(zone_ids), min_size=1, max_size=4, unique=True)):
            kind = draw(st.sampled_from(KINDS))
            segments.append(Segment(tick, z, kind, draw(st.sampled_from([0.0, 0.2, 0.6, 1.0]))))
        tick += draw(st.sampled_from([10, 50, 200, 600, 1500]))
    loop_rate = draw(st.sampled_from([0.0, 0.01, 0.03, 0.1]))
    projection_rate = draw(st.sampled_from([0.05, 0.0, 0.01, 0.2]))
    return segments, draw(st.integers(0, 2**32 - 1)), loop_rate, projection_rate


def _reading(zone: Zone, frame: int, kind: str, load: float, rng: random.Random) -> ZoneReading:
    """One measurement of ``zone`` (plausible or ``implausible``)."""
    length = zone.length_m
    n = round(load * rng.randint(0, int(zone.lanes * length / 8)))
    objects = sorted(
        (round(rng.uniform(0.0, length), 1), round(rng.choice([0.0, 0.5, 6.0, 13.9]), 1))
        for _ in range(n)
    )
    halting = sum(1 for _, v in objects if v < 1.39)
    queue = max((d for d, v in objects if v < 1.39), default=0.0)
    mean = sum(v for _, v in objects) / n if n else 0.0
    reading = ZoneReading(
        zone=zone.id,
        frame=frame,
        vehicles=n,
        halting=halting,
        queue_m=queue,
        mean_speed_mps=round(mean, 2),
        objects=tuple(objects[: zone.max_objects]),
        t=frame / 10,
    )
    if kind != "implausible":
        return reading
    bad = rng.choice(["too_many", "halting", "beyond", "fast", "queue"])
    if bad == "too_many":
        return ZoneReading(zone.id, frame, 500, 0, 0.0, 0.0, (), frame / 10)
    if bad == "halting":
        return ZoneReading(zone.id, frame, 2, 5, 10.0, 0.0, ((1.0, 0.0), (8.0, 0.0)), frame / 10)
    if bad == "beyond":
        return ZoneReading(zone.id, frame, 1, 0, 0.0, 5.0, ((length + 90.0, 5.0),), frame / 10)
    if bad == "fast":
        return ZoneReading(zone.id, frame, 1, 0, 0.0, 80.0, ((20.0, 80.0),), frame / 10)
    return ZoneReading(zone.id, frame, 3, 3, length * 3, 0.0, (), frame / 10)


def run(
    config: DaemonConfig,
    segments: list[Segment],
    rng_seed: int,
    loop_rate: float,
    projection_rate: float = 0.0,
) -> None:
    controller = Controller(config, mode=Mode.ADAPTIVE)
    strategy = controller._strategy
    assert isinstance(strategy, Adaptive)
    assert strategy.zone_demand is not None
    checker = SafetyChecker(config, max_modes=frozenset({Mode.ADAPTIVE}))
    rng = random.Random(rng_seed)
    zones = {z.id: z for z in config.zones}
    detectors = [d.id for d in config.detectors]
    phases = [p.id for p in config.phases]
    state: dict[int, tuple[str, float]] = {}
    frames = dict.fromkeys(zones, 0)
    stuck: dict[int, ZoneReading] = {}
    presence: set[int] = set()
    pending = list(segments)
    for tick in range(TICKS):
        t = tick / 10
        while pending and pending[0].tick <= tick:
            s = pending.pop(0)
            state[s.zone] = (s.kind, s.load)
        readings: list[ZoneReading] = []
        for z, (kind, load) in state.items():
            if kind == "silent" or (kind == "dropout" and rng.random() < 0.5):
                continue
            if kind == "stuck" and z in stuck:
                readings.append(stuck[z])
                continue
            frames[z] += 1
            r = _reading(zones[z], frames[z], kind, load, rng)
            stuck[z] = r
            readings.append(r)
        for d in detectors:
            if d in presence:
                if rng.random() < 0.3:
                    presence.discard(d)
            elif rng.random() < loop_rate:
                presence.add(d)
        if rng.random() < projection_rate:
            # a neighbour's projection: a platoon due within 40 s, some of it already late
            arrivals = [t + rng.uniform(-5.0, 40.0) for _ in range(rng.randint(0, 12))]
            strategy.expect(rng.choice(phases), arrivals)
            STATS["projections"] += 1
        out = controller.step(t, Inputs(presence=frozenset(presence), zones=tuple(readings)))
        STATS["ticks"] += 1
        STATS["zone_ticks"] += sum(1 for z in out.zones if not z.failed)
        STATS["planned_on_zones"] += bool(strategy.zone_demand.demand)
        codes = [e.code for e in out.events]
        STATS["zone_faults"] += codes.count(EventCode.ZONE_FAULT)
        findings = checker.feed(out, controller.last_requests)
        assert not findings, f"t={t:.1f}: {findings}"
        assert EventCode.MONITOR_VIOLATION not in codes, f"monitor at t={t:.1f}"


@pytest.fixture(scope="module")
def tick_report() -> Iterator[None]:
    yield
    print(
        f"\nadaptive with zones: {STATS['ticks']} ticks checked, {STATS['zone_ticks']}"
        f" healthy zone-ticks, {STATS['zone_faults']} zone faults,"
        f" {STATS['planned_on_zones']} ticks planned on zone demand,"
        f" {STATS['projections']} neighbour projections"
    )


def test_adaptive_with_zones_is_safe(tick_report: None) -> None:
    config = load_config(EXAMPLE)
    config = config.model_copy(
        update={"control": config.control.model_copy(update={"mode": Mode.ADAPTIVE})}
    )
    zone_ids = tuple(z.id for z in config.zones)
    assert zone_ids

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
    )
    @given(scenario(zone_ids))
    def check(case: tuple[list[Segment], int, float, float]) -> None:
        run(config, *case)

    check()
    assert STATS["ticks"] >= EXAMPLES * TICKS // 2
    assert STATS["planned_on_zones"] > 0, "the planner never used a zone"
    assert STATS["projections"] > 0, "no neighbour projection was fed"
