"""What the priority and TSP property runs share: random loop traffic and a starvation clock
that keeps running through preempts."""

from __future__ import annotations

import random
from collections.abc import Iterable

from edgectl.control.types import Interval, OperatingState, Outputs


def flicker(rng: random.Random, detectors: Iterable[int], presence: set[int]) -> None:
    """One tick of random loop traffic: an occupied loop clears with p 0.3, a free one is
    occupied with p 0.02."""
    for d in detectors:
        if d in presence:
            if rng.random() < 0.3:
                presence.discard(d)
        elif rng.random() < 0.02:
            presence.add(d)


class StarvationClock:
    """How long each called, non-green, non-omitted phase has waited, counted in normal
    operation and preempt alike (reset by any other state); past ``bound`` s is a failure."""

    def __init__(self, bound: float, omitted: Iterable[int]) -> None:
        self.bound = bound
        self.omitted = frozenset(omitted)
        self.waits: dict[int, float] = {}

    def check(self, out: Outputs, t: float, story: str) -> None:
        if out.state not in (OperatingState.NORMAL, OperatingState.PREEMPT):
            self.waits.clear()
            return
        greens = {r.phase for r in out.rings if r.interval is Interval.GREEN}
        for p in list(self.waits):
            if p not in out.calls or p in greens:
                del self.waits[p]
        for p in out.calls - greens - self.omitted:
            since = self.waits.setdefault(p, t)
            assert t - since <= self.bound, (
                f"phase {p} waited {t - since:.1f} s > {self.bound:.1f}{story}"
            )
