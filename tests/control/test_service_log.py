"""``edgectl.testing.service``: what the service log makes of a tick stream and a record."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode
from edgectl.control.types import (
    DetectorStatus,
    Interval,
    OperatingState,
    Outputs,
    PedInterval,
    RingStatus,
)
from edgectl.testing.service import ServiceLog, cycle_bound_s, record_service

EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"
G, Y, RC, R = Interval.GREEN, Interval.YELLOW, Interval.RED_CLEAR, Interval.RED


@pytest.fixture(scope="module")
def eight() -> DaemonConfig:
    return load_config(EXAMPLES / "eight_phase.toml", environ={})


def tick(
    t: float,
    ring1: tuple[int | None, Interval],
    ring2: tuple[int | None, Interval],
    calls: Iterable[int] = (),
    *,
    on: Iterable[int] = (),
    state: OperatingState = OperatingState.NORMAL,
) -> Outputs:
    rings = tuple(
        RingStatus(ring=i, phase=p, interval=iv, ped=PedInterval.DONT_WALK, elapsed=0.0)
        for i, (p, iv) in enumerate((ring1, ring2), start=1)
    )
    return Outputs(
        t=t,
        channels=(),
        rings=rings,
        state=state,
        mode=Mode.ADAPTIVE,
        plan=1,
        flash_reason=None,
        alarms=frozenset(),
        calls=frozenset(calls),
        ped_calls=frozenset(),
        detectors=tuple(DetectorStatus(d, d in set(on), False) for d in range(1, 13)),
    )


def test_cycle_bound_of_the_example(eight: DaemonConfig) -> None:
    # ring 1: (20+5) + (55+6) + (20+5) + (40+6); the pedestrian phases' walk + clearance
    # (10 + 7 + 19 = 36 s) is shorter than their max 2
    assert cycle_bound_s(eight, eight.plan(1)) == pytest.approx(157.0)


def test_greens_and_waits(eight: DaemonConfig) -> None:
    log = ServiceLog(eight)
    log.feed(tick(0.0, (2, G), (6, G), {4}))
    log.feed(tick(5.0, (2, Y), (6, Y), {4}))
    log.feed(tick(9.0, (4, G), (8, G), {2}))
    log.feed(tick(20.0, (4, G), (8, G), {2}))
    log.freeze()
    log.feed(tick(30.0, (2, G), (6, G)))  # after freeze: ignored
    assert log.phases[2].green_starts == [0.0]
    assert log.phases[2].green_s == pytest.approx(5.0)
    assert log.phases[4].green_starts == [9.0]
    assert log.phases[4].green_s == pytest.approx(11.0)
    (wait4,) = log.phases[4].waits
    assert (wait4.since, wait4.until, wait4.served) == (0.0, 9.0, True)
    (wait2,) = log.phases[2].waits  # still waiting when the log ended
    assert (wait2.since, wait2.until, wait2.served) == (9.0, 20.0, False)
    assert log.longest_wait() == wait2
    assert log.left_normal == []
    assert "greens (t: phases): 0.0: 2 6 | 9.0: 4 8" in log.describe()


def test_a_phase_called_before_its_groups_turn_and_left_out_is_a_skip(
    eight: DaemonConfig,
) -> None:
    log = ServiceLog(eight)
    log.feed(tick(0.0, (3, G), (7, G), {1, 5}))  # 1 and 5 call during group B
    log.feed(tick(10.0, (2, G), (6, G), {1, 5}))  # group A's turn starts past the lefts
    log.feed(tick(15.0, (2, G), (5, G), {1}))  # 5 is served after all, 1 is not
    log.feed(tick(30.0, (4, G), (8, G), {1}))  # the barrier: group A's turn is over
    assert [(k.phase, k.t, k.since, k.pass_start) for k in log.skips] == [(1, 30.0, 0.0, 10.0)]
    assert log.reservices == []


def test_a_phase_green_twice_in_one_turn_while_the_other_side_waits_is_a_re_service(
    eight: DaemonConfig,
) -> None:
    log = ServiceLog(eight)
    log.feed(tick(0.0, (2, G), (6, G), {4}))
    log.feed(tick(10.0, (1, G), (6, G), {4, 2}))
    log.feed(tick(20.0, (2, G), (6, G), {4}))  # 2 again, 4 still waiting beyond the barrier
    assert [(r.t, r.phase, r.ring, r.waiting) for r in log.reservices] == [(20.0, 2, 1, (4,))]
    log2 = ServiceLog(eight)
    log2.feed(tick(0.0, (2, G), (6, G)))
    log2.feed(tick(10.0, (1, G), (6, G), {2}))
    log2.feed(tick(20.0, (2, G), (6, G)))  # nobody waits beyond the barrier: not counted
    assert log2.reservices == []


def test_leaving_normal_operation_closes_the_waits(eight: DaemonConfig) -> None:
    log = ServiceLog(eight)
    log.feed(tick(0.0, (2, G), (6, G), {4}))
    log.feed(tick(3.0, (None, R), (None, R), {4}, state=OperatingState.FLASH))
    log.feed(tick(3.1, (None, R), (None, R), {4}, state=OperatingState.FLASH))
    assert log.left_normal == [(3.0, "flash")]
    assert [(w.since, w.until, w.served) for w in log.phases[4].waits] == [(0.0, 3.0, False)]


class _Queues:
    def queue(self, p: int) -> float:
        return {2: 3.0, 4: 1.0}.get(p, 0.0)


class _Strategy:
    queues = _Queues()


def test_the_strategys_estimate_next_to_the_stop_bar(eight: DaemonConfig) -> None:
    log = ServiceLog(eight)
    log.feed(tick(0.0, (1, G), (5, G), {2, 4}, on={2, 4}), _Strategy())
    assert log.phases[2].estimate_max == 3.0
    assert log.phases[2].beyond_stop_bar_max == 2.0  # one stop-bar loop occupied
    assert log.phases[4].beyond_stop_bar_max == 0.0
    no_estimate = ServiceLog(eight)
    no_estimate.feed(tick(0.0, (1, G), (5, G)), object())
    assert no_estimate.phases[2].estimate_max is None


def test_record_service() -> None:
    rows = [
        (0.0, 2, "FR"),
        (0.0, 4, "FR"),
        (5.0, 2, "R"),
        (5.0, 4, "R"),
        (7.0, 2, "G"),
        (17.0, 2, "Y"),
        (21.0, 2, "R"),
        (23.0, 4, "G"),
        (33.0, 4, "Y"),
        (36.4, 4, "R"),
        (38.0, 2, "G"),
    ]
    out = record_service(rows, [2, 4], end=50.0)
    two, four = out[2], out[4]
    assert two.greens == 2
    assert two.green_s == pytest.approx(22.0)
    assert two.yellow_min_s == pytest.approx(4.0)
    assert two.red_max_s == pytest.approx(17.0)  # 21 → 38
    assert four.greens == 1
    assert four.green_s == pytest.approx(10.0)
    assert four.yellow_min_s == pytest.approx(3.4)
    assert four.red_max_s == pytest.approx(18.0)  # from the take-over at 5 to 23
