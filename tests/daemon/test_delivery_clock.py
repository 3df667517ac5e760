"""The controller clock holds while a frame reaches the cabinet late (pure unit)."""

from __future__ import annotations

import math

from edgectl.daemon.supervisor import DeliveryClock


def test_on_time_frames_advance_one_tick_each() -> None:
    clock = DeliveryClock(0.1)
    for _ in range(10):
        clock.advance(1, 0.004)
    assert clock.t == 1.0
    assert clock.stalls == 0


def test_a_late_frame_holds_the_clock_for_a_tick() -> None:
    clock = DeliveryClock(0.1)
    for _ in range(20):
        clock.advance(1, 0.004)
    before = clock.t
    assert clock.advance(1, 0.09) == before  # a retried write: 86 ms later than usual
    assert clock.advance(1, 0.004) == round(before + 0.1, 3)
    assert clock.stalls == 1


def test_an_undelivered_frame_holds_until_the_cap() -> None:
    clock = DeliveryClock(0.1, max_stall=3)
    clock.advance(1, 0.004)
    held = [clock.advance(1, math.inf) for _ in range(5)]
    assert held[:3] == [0.1, 0.1, 0.1]  # held three times, then it moves on regardless
    assert held[3] == 0.2


def test_a_uniformly_slow_link_is_not_late() -> None:
    clock = DeliveryClock(0.1)
    for _ in range(30):  # 9600 baud: every write takes ~80 ms, so durations are preserved
        clock.advance(1, 0.08)
    assert clock.stalls == 0
    assert clock.t == 3.0


def test_nothing_to_deliver_and_skipped_slots() -> None:
    clock = DeliveryClock(0.1)
    clock.advance(1, None)
    clock.advance(3, None)  # a late tick: the missed slots are not run, time moves on
    assert clock.t == 0.4
