"""Protected / permissive lefts: the flashing yellow arrow (FYA) of a left-turn channel.

Engine: the arrow flashes while the opposing phase is green and ends with a steady yellow when
that phase's green ends. Kernel and the independent checker: an arrow is a right of way towards
everything but the phase it yields to; each misuse is reported. Validation: what makes an arrow
safe to configure.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.model import (
    Barrier,
    Channel,
    ChannelSource,
    Config,
    Control,
    Intersection,
    Phase,
    PhaseTiming,
    Plan,
    Ring,
)
from edgectl.config.validation import validate_config
from edgectl.control.engine import Engine
from edgectl.control.monitor import ConflictMonitor
from edgectl.control.types import Inputs, Requests
from edgectl.testing.checker import ChannelChecker, derive_channel_conflicts, permissive_channels

S = ChannelState
ARROW = 1  # channel of phase 1, the left that yields to phase 2
YELLOW = {1: 3.0, 2: 3.5, 3: 3.5, 4: 3.5}
RED = {1: 1.0, 2: 1.5, 3: 1.5, 4: 1.5}


def _config(
    *, permissive: int | None = 2, timing: Mapping[int, PhaseTiming] | None = None
) -> Config:
    """Ring 1: 1 (left) 2 (opposing through) | 3; ring 2: 4 beside 1 and 2 (own through)."""
    timing = timing or {
        p: PhaseTiming(min_green=5, max1=15, yellow=YELLOW[p], red_clear=RED[p])
        for p in (1, 2, 3, 4)
    }
    return Config(
        intersection=Intersection(id="fya"),
        phases=tuple(Phase(id=p, startup=p in (2, 4)) for p in (1, 2, 3, 4)),
        rings=(Ring(id=1, sequence=(1, 2, 3)), Ring(id=2, sequence=(4,))),
        barriers=(Barrier(phases=(1, 2, 4)), Barrier(phases=(3,))),
        channels=(
            Channel(id=ARROW, phase=1, permissive=permissive),
            Channel(id=2, phase=2),
            Channel(id=3, phase=3),
            Channel(id=4, phase=4),
        ),
        plans=(Plan(id=1, timing=dict(timing)),),
        control=Control(startup_flash=0.0, startup_all_red=2.0),
    )


def _frames(engine: Engine, seconds: float) -> list[tuple[float, dict[int, ChannelState]]]:
    out = []
    for k in range(1, round(seconds * 10) + 1):
        t = round(k / 10, 1)
        o = engine.step(t, Inputs(), Requests(calls=frozenset({1, 2, 3, 4})))
        out.append((t, dict(o.channels)))
    return out


def test_the_arrow_flashes_with_the_opposing_green_and_ends_with_its_yellow() -> None:
    engine = Engine(_config())
    frames = _frames(engine, 240.0)
    monitor = ConflictMonitor(_config())
    plan = _config().plans[0]
    assert not [v for t, f in frames for v in monitor.check(t, f, plan)]
    assert engine.last is not None and engine.last.flash_reason is None
    arrow = [f[ARROW] for _, f in frames]
    assert S.FY in arrow and S.G in arrow
    for (_, before), (_, f) in itertools.pairwise(frames):
        if f[ARROW] is S.FY:
            assert f[2] is S.G  # only while the opposing through is green
        if before[ARROW] is S.FY and f[ARROW] is not S.FY:
            assert f[ARROW] is S.Y and f[2] is S.Y  # ends with the opposing phase's yellow
    # the ending yellow lasts the opposing yellow, then red with the opposing red clearance
    runs = _runs(frames, ARROW)
    ending = [d for prev, (st, d) in itertools.pairwise(runs) if prev[0] is S.FY and st is S.Y]
    assert ending and min(ending) >= YELLOW[2] - 1e-6


def _runs(
    frames: list[tuple[float, dict[int, ChannelState]]], ch: int
) -> list[tuple[ChannelState, float]]:
    """(state, duration) of each complete run of ``ch``'s states."""
    out: list[tuple[ChannelState, float]] = []
    start, cur = frames[0][0], frames[0][1][ch]
    for t, f in frames[1:]:
        if f[ch] is not cur:
            out.append((cur, t - start))
            start, cur = t, f[ch]
    return out


def test_without_permissive_the_left_is_protected_only() -> None:
    frames = _frames(Engine(_config(permissive=None)), 120.0)
    assert S.FY not in {f[ARROW] for _, f in frames}


def _check_both(
    frames: list[dict[int, ChannelState]],
) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """(kind, first channel) of every violation of the kernel's monitor and of the
    independent checker, frames 0.1 s apart."""
    config = _config()
    monitor = ConflictMonitor(config)
    checker = ChannelChecker(
        derive_channel_conflicts(config),
        YELLOW,
        RED,
        permissive=permissive_channels(config),
    )
    kernel: set[tuple[str, int]] = set()
    independent: set[tuple[str, int]] = set()
    for k, f in enumerate(frames):
        t = round(k * 0.1, 1)
        kernel |= {(v.kind, v.channels[0]) for v in monitor.check(t, f, config.plans[0])}
        independent |= {(x.kind, x.channels[0]) for x in checker.feed(t, f)}
    return kernel, independent


def _timeline(*steps: tuple[float, dict[int, ChannelState]]) -> list[dict[int, ChannelState]]:
    """Frames every 0.1 s: each step holds its frame for its seconds."""
    out: list[dict[int, ChannelState]] = []
    for seconds, frame in steps:
        out += [frame] * round(seconds * 10)
    return out


RED_ALL = {1: S.R, 2: S.R, 3: S.R, 4: S.R}


def test_a_correct_arrow_sequence_is_clean() -> None:
    frames = _timeline(
        (2.0, RED_ALL),
        (8.0, {1: S.FY, 2: S.G, 3: S.R, 4: S.G}),
        (3.5, {1: S.Y, 2: S.Y, 3: S.R, 4: S.Y}),
        (2.0, RED_ALL),
        (5.0, {1: S.R, 2: S.R, 3: S.G, 4: S.R}),
    )
    assert _check_both(frames) == (set(), set())


@pytest.mark.parametrize(
    ("name", "steps", "kind"),
    [
        (
            "arrow beside the cross street",
            [(2.0, RED_ALL), (3.0, {1: S.FY, 2: S.G, 3: S.G, 4: S.R})],
            "conflict",
        ),
        (
            "arrow outlives the opposing green",
            [
                (2.0, RED_ALL),
                (5.0, {1: S.FY, 2: S.G, 3: S.R, 4: S.R}),
                (1.0, {1: S.FY, 2: S.Y, 3: S.R, 4: S.R}),
            ],
            "permissive_without_opposing_green",
        ),
        (
            "arrow straight to red",
            [
                (2.0, RED_ALL),
                (5.0, {1: S.FY, 2: S.G, 3: S.R, 4: S.R}),
                (1.0, {1: S.R, 2: S.Y, 3: S.R, 4: S.R}),
            ],
            "permissive_not_to_yellow",
        ),
        (
            "protected yellow into the arrow",
            [
                (2.0, RED_ALL),
                (5.0, {1: S.G, 2: S.R, 3: S.R, 4: S.R}),
                (3.0, {1: S.Y, 2: S.R, 3: S.R, 4: S.R}),
                (1.0, {1: S.FY, 2: S.G, 3: S.R, 4: S.R}),
            ],
            "yellow_to_permissive",
        ),
        (
            "arrow during the cross street's red clearance",
            [
                (2.0, RED_ALL),
                (5.0, {1: S.R, 2: S.R, 3: S.G, 4: S.R}),
                (3.5, {1: S.R, 2: S.R, 3: S.Y, 4: S.R}),
                (0.5, {1: S.FY, 2: S.G, 3: S.R, 4: S.R}),
            ],
            "short_red_clear",
        ),
        (
            "short yellow ending the arrow",
            [
                (2.0, RED_ALL),
                (5.0, {1: S.FY, 2: S.G, 3: S.R, 4: S.R}),
                (2.0, {1: S.Y, 2: S.Y, 3: S.R, 4: S.R}),
                (1.0, RED_ALL),
            ],
            "short_yellow",
        ),
    ],
)
def test_every_misuse_of_an_arrow_is_caught_by_both(
    name: str, steps: list[tuple[float, dict[int, ChannelState]]], kind: str
) -> None:
    kernel, independent = _check_both(_timeline(*steps))
    # each names the arrow channel (the cross street's own checks may add more)
    assert (kind, ARROW) in kernel, f"{name}: kernel saw {kernel}"
    assert (kind, ARROW) in independent, f"{name}: checker saw {independent}"


def test_flash_frames_are_not_arrows() -> None:
    # the controller's yellow-main flash shows FY on a left channel: not a permissive movement
    frames = _timeline(
        (2.0, {1: S.FY, 2: S.FY, 3: S.FR, 4: S.FY}),
        (2.0, RED_ALL),
        (5.0, {1: S.R, 2: S.R, 3: S.G, 4: S.R}),
    )
    assert _check_both(frames) == (set(), set())


def _problems(config: Config) -> list[str]:
    return [f"{p.path}: {p.message}" for p in validate_config(config) if p.severity == "error"]


def test_validation_accepts_the_nema_arrow() -> None:
    assert _problems(_config()) == []


def test_validation_rejects_an_arrow_with_nothing_to_yield_to() -> None:
    problems = _problems(_config(permissive=4))  # 4 times beside 1
    assert any("channels[0].permissive" in p and "nothing to yield to" in p for p in problems)


def test_validation_rejects_an_arrow_beside_a_conflicting_phase() -> None:
    # 3 yielding to 2: but 4 times beside 2 and conflicts with 3 (across the barrier)
    config = _config()
    channels = tuple(
        c.model_copy(update={"permissive": 2 if c.id == 3 else None}) for c in config.channels
    )
    problems = _problems(config.model_copy(update={"channels": channels}))
    assert any(
        "channels[2].permissive" in p and "phase 4" in p and "would be shown beside it" in p
        for p in problems
    )


def test_validation_rejects_opposing_clearances_shorter_than_the_arrow() -> None:
    timing = {
        p: PhaseTiming(min_green=5, max1=15, yellow=YELLOW[p], red_clear=RED[p])
        for p in (1, 2, 3, 4)
    }
    timing[1] = PhaseTiming(min_green=5, max1=15, yellow=4.0, red_clear=2.0)
    problems = _problems(_config(timing=timing))
    assert any("timing.2.yellow" in p for p in problems)
    assert any("timing.2.red_clear" in p for p in problems)


def test_validation_rejects_an_arrow_beside_an_overlap_carried_from_elsewhere() -> None:
    # an overlap green with 2 and with 3 (across the barrier) conflicts with 1's arrow
    config = _config()
    overlap = Channel(id=5, source=ChannelSource.OVERLAP, phase=2, overlap_parents=(2, 3))
    problems = _problems(config.model_copy(update={"channels": (*config.channels, overlap)}))
    assert any("channels[0].permissive" in p and "overlap channels[4]" in p for p in problems)
