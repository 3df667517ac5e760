"""Hardware-in-the-loop: the daemon in ``adaptive`` mode against ``firmware-sim`` over real TCP.

The emulator is a real process (the ``nema-cabinet`` profile: stop-bar loops 1–8, advance
loops 9–12 40 m upstream on phases 2/4/6/8); the daemon is built exactly as ``edgectl run``
builds it (:func:`edgectl.testing.service.run_mode`) from ``edgectl/examples/eight_phase.toml`` in
adaptive mode. Safety and service come from the emulator's record and summary; waits, greens
and the strategy's queue estimate from the daemon's own outputs, tick by tick.

When an assertion about service fails, its message carries the daemon's account of the run
(the greens in order; per phase its green time and longest waits; every skip and
re-service).
"""

from __future__ import annotations

import asyncio

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, DetectorType, Mode
from edgectl.testing.checker import channel_minimums
from edgectl.testing.service import RECORD_JITTER_S, ModeRun, run_mode

from .support import EIGHT_PHASE

pytestmark = pytest.mark.hil

DURATION_S = 85.0  # emulator time: start-up flash 5 s + all-red 2 s, then ~78 s of service
# Every approach has traffic, the main street (2/6) the most; light enough that a controller
# runs full cycles within the window (actuated and maxpressure serve every approach in it).
DEMAND = "time_s,p1,p2,p3,p4,p5,p6,p7,p8\n0,150,450,150,250,150,450,150,250\n"
SEED = 68  # every movement's first vehicle arrives within 13 s (one seeded stream per
# movement: arrivals do not depend on the signals)


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory: pytest.TempPathFactory) -> ModeRun:
    """One session for every test of this module (about 90 s of wall time)."""
    workdir = tmp_path_factory.mktemp("adaptive-hil")
    demand = workdir / "demand.csv"
    demand.write_text(DEMAND, encoding="utf-8")
    config = load_config(EIGHT_PHASE)
    return asyncio.run(
        run_mode(
            config,
            Mode.ADAPTIVE,
            workdir=workdir,
            duration_s=DURATION_S,
            seed=SEED,
            demand=demand,
        )
    )


def _account(run: ModeRun) -> str:
    return "\nwhat the daemon did (controller time):\n" + run.service.describe()


def test_the_cabinet_saw_a_safe_junction(adaptive_run: ModeRun, eight_phase: DaemonConfig) -> None:
    run = adaptive_run
    # the whole window in normal operation: first green after start-up, no flash since
    assert run.duration_s >= DURATION_S - 1.0
    assert run.service.t_first_normal is not None
    assert run.service.t_first_normal <= 10.0  # start-up flash 5 s + all-red 2 s
    assert run.service.left_normal == []
    assert run.summary["mmu"]["tripped"] is False, run.summary["mmu"]
    assert run.summary["mmu"]["faults"] == []
    # no conflict, no short yellow or red clearance (the independent checker on the record)
    assert run.record_findings == [], "\n".join(map(str, run.record_findings[:20]))
    # no green cut below its minimum (the same checker on the daemon's outputs)
    assert run.phase_findings == [], "\n".join(map(str, run.phase_findings[:20]))
    # every yellow the load switches showed lasted at least the plan's yellow
    mins = channel_minimums(eight_phase, eight_phase.plan(eight_phase.control.plan)).yellow
    shown = {ch: c.yellow_min_s for ch, c in run.channels.items() if c.yellow_min_s is not None}
    assert shown, "no complete yellow in the record"
    for ch, seconds in shown.items():
        assert seconds >= mins[ch] - RECORD_JITTER_S, (ch, seconds, mins[ch])


def test_every_approach_is_served(adaptive_run: ModeRun) -> None:
    """Every movement's vehicles are served within the window (its first vehicle came
    within 13 s; a controller running full cycles serves every approach in ~78 s)."""
    run = adaptive_run
    for mid, mv in run.summary["movements"].items():
        assert mv["arrived"] >= 1, f"{mid}: the seeded demand brought nobody (test premise)"
        assert mv["served"] >= 1, f"{mid}: {mv['arrived']} arrived, none served{_account(run)}"


def test_no_call_waits_longer_than_the_cycle_bound(adaptive_run: ModeRun) -> None:
    """No starvation: no call — served, or still waiting when the window ends — waits longer
    than one cycle of the plan with every phase at its longest green plus its clearances
    (157 s for edgectl/examples/eight_phase.toml; the kernel's own bound). Within this window that
    catches only gross starvation; ``bench/hil_adaptive.py`` measures the waits over 300 s."""
    run = adaptive_run
    bound = run.cycle_bound_s
    assert bound > 0
    for p, svc in run.service.phases.items():
        assert svc.max_wait_s <= bound, (
            f"phase {p} waited {svc.max_wait_s:.1f} s > {bound:.1f} s{_account(run)}"
        )


def test_the_main_street_gets_green_again(adaptive_run: ModeRun, eight_phase: DaemonConfig) -> None:
    """Beyond the start-up green (the engine's), the strategy gives the main street green."""
    run = adaptive_run
    main = [p.id for p in eight_phase.phases if p.main_street]
    assert main == [2, 6]
    for p in main:
        starts = run.service.phases[p].green_starts
        assert len(starts) >= 2, f"main-street phase {p} green only at {starts}{_account(run)}"


def test_no_called_phase_is_left_out_when_its_barrier_group_is_served(
    adaptive_run: ModeRun,
) -> None:
    """A phase whose call was there before its barrier group's turn began is served in that
    turn, before the junction crosses the barrier again: a phase left out waits a whole extra
    cycle. (NEMA ring sequence: a called phase is never skipped; the example configures no
    omits.)"""
    run = adaptive_run
    assert run.service.skips == [], f"skipped phases{_account(run)}"


def test_no_phase_is_served_twice_while_the_other_side_of_the_barrier_waits(
    adaptive_run: ModeRun,
) -> None:
    """Dual-ring sequence: while calls wait beyond the barrier, a ring serves each phase of
    its barrier group at most once per pass (NEMA ring sequence — the example configures no
    conditional service — and SURTRAC's cyclic phase order alike). Re-serving a phase there
    keeps the barrier shut for every phase on the other side."""
    run = adaptive_run
    assert run.service.reservices == [], f"re-services{_account(run)}"


def test_the_advance_loops_reach_the_strategy(
    adaptive_run: ModeRun, eight_phase: DaemonConfig
) -> None:
    """The strategy's own queue estimate of each phase with advance loops went beyond what its
    stop-bar loops could show at the time: vehicles counted over the advance loops."""
    run = adaptive_run
    advance = sorted(
        {p for d in eight_phase.detectors if d.type is DetectorType.ADVANCE for p in d.call_phases}
    )
    assert advance == [2, 4, 6, 8]
    for p in advance:
        svc = run.service.phases[p]
        assert svc.estimate_max is not None, "the adaptive strategy exposes no queue estimate"
        assert svc.beyond_stop_bar_max is not None
        assert svc.beyond_stop_bar_max >= 1.0, (
            f"phase {p}: estimate never above the stop-bar presence "
            f"(max estimate {svc.estimate_max})"
        )
