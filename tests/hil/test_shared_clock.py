"""Hardware-in-the-loop: two junctions keep a common cycle on the shared wall clock.

Two ``edgectl run`` daemons, each against its own ``firmware-sim``, both in coordinated mode
with the eight-phase example's plan 2 (cycle 100 s, coordinated phases 2 and 6, force-off
point 29 s into the cycle), started 17 s apart. What is asserted comes from the emulators'
records (when channel 2 turned yellow: the coordinated phase's yield), mapped onto the wall
clock, and the independent checker on the same records:

- the two junctions' yield points agree modulo the cycle within 1 s once their pick-up
  transitions have ended (the second one is a daemon started mid-cycle, as after a restart),
  and sit at the commanded force-off point;
- a −30 s wall-clock step on the second daemon (the ``EDGECTL_TEST_CLOCK_STEP`` hook) raises
  an alarm and begins a bounded transition (a dwell in the coordinated green), with no
  interval shortened on either record. ``-m long`` runs until that transition has ended
  (about 4 minutes: a dwell of 20 s a cycle) and checks that the second junction yields at
  the force-off point of its own, stepped clock (30 s after the first junction: a clock
  that is off is coordinated with nobody, hence the alarm).

To keep the default run short, the plan's offset is chosen from the wall clock when the test
starts so that cycle zero falls just after the first daemon's start-up (flash 5 s + all-red
2 s): each daemon picks up inside the coordinated window and its first yield already counts.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig
from edgectl.control.coordination import target_position
from edgectl.control.strategies import split_windows
from edgectl.daemon.clock import shared_seconds, zone_offset_s
from edgectl.testing.hil import DaemonProcess, Emulator

from .support import EIGHT_PHASE, record_findings

pytestmark = pytest.mark.hil

CYCLE = 100.0
PLAN = 2
FIRST_ZERO_AFTER_S = 12.0  # cycle zero this long after the first daemon starts
SECOND_AFTER_S = 17.0  # the second daemon starts this much later
STEP_AT_S = 27.0  # the second daemon's wall clock steps this long after it started …
STEP_S = -30.0  # … by this much
STOP_S = 45.0  # the hand-over to flash may take min/ped service + clearances (34 s here)
RECORD_SLACK_S = 0.5  # tick + frame write + the emulator's own tick, and its clock origin


def _config(workdir: Path, offset: float) -> Path:
    """The eight-phase example, coordinated with plan 2 from start-up, at ``offset``."""
    text = EIGHT_PHASE.read_text(encoding="utf-8")
    text = text.replace('mode = "actuated"\nplan = 1\n', f'mode = "coordinated"\nplan = {PLAN}\n')
    text = text.replace(
        "cycle = 100.0\noffset = 0.0\n",
        f'cycle = 100.0\noffset = {offset:.1f}\nsync_reference = "00:00"\n',
    )
    assert 'mode = "coordinated"' in text and f"offset = {offset:.1f}" in text
    path = workdir / "coordinated.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _demand(workdir: Path) -> Path:
    path = workdir / "demand.csv"
    path.write_text("time_s,multiplier\n0,1.0\n", encoding="utf-8")
    return path


class WallMap:
    """Emulator record time → the shared clock (UTC + the zone's fixed offset)."""

    def __init__(self) -> None:
        self.wall_minus_mono = time.time() - time.monotonic()
        self.zone = zone_offset_s()

    def shared(self, sim: Emulator, t: float) -> float:
        return shared_seconds(sim.started_at + t + self.wall_minus_mono, self.zone)


def _yields(sim: Emulator, walls: WallMap, after: float) -> list[float]:
    """Shared-clock times at which channel 2 (phase 2) turned yellow after ``after``."""
    rows = sim.record()
    out = []
    previous: str | None = None
    for t, ch, state in rows:
        if ch != 2:
            continue
        if state == ChannelState.Y.name and previous == ChannelState.G.name:
            s = walls.shared(sim, t)
            if s >= after:
                out.append(s)
        previous = state
    return out


def _wrapped(a: float, b: float) -> float:
    return (a - b + CYCLE / 2) % CYCLE - CYCLE / 2


def _err(y: float, offset: float, force_off: float) -> float:
    return round(_wrapped(target_position(y, 0.0, offset, CYCLE), force_off), 3)


def _coord_events(daemon: DaemonProcess, param: int) -> list[dict[str, object]]:
    return [
        e
        for e in daemon.log_events()
        if e.get("event") == "event" and e.get("code") == 150 and e.get("param") == param
    ]


def _wait_until(deadline: float, *daemons: DaemonProcess) -> None:
    while time.time() < deadline:
        for d in daemons:
            assert d.process is not None and d.process.running(), (
                d.process and d.process.output()[-3000:]
            )
        time.sleep(0.2)


def _stop_both(*daemons: DaemonProcess) -> list[int | None]:
    """Stop the daemons at the same time (each hands over in flash on its own)."""
    with ThreadPoolExecutor(len(daemons)) as pool:
        return list(pool.map(lambda d: d.stop(STOP_S), daemons))


def _wait_until_in_step_again(daemon: DaemonProcess, deadline: float) -> None:
    """Until the daemon logged a transition (event 150, 3 or 4) and then 'in step' (1)."""
    while time.time() < deadline:
        params = [
            e.get("param")
            for e in daemon.log_events()
            if e.get("event") == "event" and e.get("code") == 150
        ]
        began = next((i for i, p in enumerate(params) if p in (3, 4)), None)
        if began is not None and 1 in params[began:]:
            return
        time.sleep(0.5)
    raise AssertionError("the transition after the clock step did not end in time")


@pytest.mark.parametrize(
    "until_in_step",
    [False, pytest.param(True, marks=[pytest.mark.long, pytest.mark.timeout(900)])],
    ids=["step-begins", "step-ends"],
)
def test_two_junctions_keep_a_common_cycle(
    tmp_path: Path, until_in_step: bool, request: pytest.FixtureRequest
) -> None:
    if until_in_step and "long" not in str(request.config.getoption("markexpr", "")):
        pytest.skip("long run: select it with -m long")
    walls = WallMap()
    t0 = time.time()
    zero_at = shared_seconds(t0 + FIRST_ZERO_AFTER_S, walls.zone)
    offset = round(zero_at % CYCLE, 1) % CYCLE
    path = _config(tmp_path, offset)
    config: DaemonConfig = load_config(path)
    plan = config.plan(PLAN)
    force_off = split_windows(config, plan)[2].force_off  # 29 s
    assert abs(_wrapped(target_position(zero_at, 0.0, offset, CYCLE), 0.0)) <= 0.06

    demand = _demand(tmp_path)
    sim_a = Emulator(tmp_path, name="sim-a", seed=5, extra=["--demand", str(demand)])
    sim_b = Emulator(tmp_path, name="sim-b", seed=6, extra=["--demand", str(demand)])
    a = b = None
    try:
        sim_a.start()
        sim_b.start()
        a = DaemonProcess(tmp_path, path, sim_a.url, name="daemon-a").start()
        _wait_until(t0 + SECOND_AFTER_S, a)
        b_started = time.time()
        b = DaemonProcess(
            tmp_path,
            path,
            sim_b.url,
            name="daemon-b",
            env={"EDGECTL_TEST_CLOCK_STEP": f"{STEP_AT_S}:{STEP_S}"},
        ).start()
        step_wall = b_started + STEP_AT_S
        # run through the first yields (cycle zero + 29 s) and into the step
        end = step_wall + 8.0
        in_step_at = end
        if until_in_step:
            # the dwell: 30 s at most 20 s a cycle → in step within three cycles of the step
            _wait_until_in_step_again(b, deadline=step_wall + 3 * CYCLE + 30.0)
            in_step_at = time.time()
            end = in_step_at + CYCLE + 5.0  # one more yield each, in step
        _wait_until(end, a, b)
        stopped_at = time.time()
        # a clean stop hands over in flash after the pedestrian clearance running (19 s)
        assert _stop_both(a, b) == [0, 0]
    finally:
        for d in (b, a):
            if d is not None:
                d.stop(STOP_S)
        summary_a = sim_a.stop()
        summary_b = sim_b.stop()

    # 1. both daemons picked up at once and said so (event 150: 6 pick-up, 1 in step)
    for d in (a, b):
        assert _coord_events(d, 6), "no pick-up logged"
        assert _coord_events(d, 1), "never in step"

    # 2. the coordinated phase's yields agree across the junctions and sit at the offset
    first_shared = shared_seconds(b_started + 7.0, walls.zone)  # the second one is serving
    step_shared = shared_seconds(step_wall, walls.zone)
    ya = [y for y in _yields(sim_a, walls, first_shared) if y < step_shared]
    yb = [y for y in _yields(sim_b, walls, first_shared) if y < step_shared]
    assert ya and yb, (ya, yb, sim_a.record()[-5:])
    for y in ya + yb:
        error = _wrapped(target_position(y, 0.0, offset, CYCLE), force_off)
        assert 0.0 - RECORD_SLACK_S <= error <= RECORD_SLACK_S, (y, error)
    assert abs(_wrapped(ya[0], yb[0])) <= 1.0
    print(
        f"yields vs force-off point (s): a {[_err(y, offset, force_off) for y in ya]}, "
        f"b {[_err(y, offset, force_off) for y in yb]}"
    )

    # 3. the step: an alarm, a bounded transition (a dwell: the clock went back)
    steps = [e for e in b.log_events() if e.get("event") == "clock_step"]
    assert steps and float(str(steps[0]["step_s"])) == pytest.approx(STEP_S, abs=0.5), steps
    alarms = [e for e in b.log_events() if e.get("event") == "clock_alarms"]
    assert any(
        any(re.fullmatch(r"clock:step:-30\.\d", str(x)) for x in e.get("alarms", []))
        for e in alarms
    ), alarms
    assert _coord_events(b, 4), "no dwell began after the step"

    # 4. nothing shortened, no conflict, on either record (independent checker)
    for sim, summary in ((sim_a, summary_a), (sim_b, summary_b)):
        assert summary["mmu"]["tripped"] is False, summary["mmu"]
        findings = record_findings(config, sim.record_path, summary["conflicts"])
        assert findings == [], "\n".join(map(str, findings[:20]))

    if until_in_step:
        # 5. in step again, each on its own clock: the second junction's clock is now 30 s
        # behind, so its yields sit at the force-off point of *its* clock, 30 s after the
        # first junction's (an unsynchronised clock is coordinated with nobody: the alarm)
        after = shared_seconds(in_step_at, walls.zone)
        before = shared_seconds(stopped_at, walls.zone)  # not the hand-over to flash
        last_a = [y for y in _yields(sim_a, walls, after) if y < before]
        last_b = [y for y in _yields(sim_b, walls, after) if y < before]
        assert last_a and last_b, (last_a, last_b)
        for y in last_a:
            assert abs(_err(y, offset, force_off)) <= RECORD_SLACK_S, y
        for y in last_b:
            assert abs(_err(y + STEP_S, offset, force_off)) <= RECORD_SLACK_S, y
        print(
            f"after the step's transition: a {[_err(y, offset, force_off) for y in last_a]}, "
            f"b (on its clock) {[_err(y + STEP_S, offset, force_off) for y in last_b]}"
        )
