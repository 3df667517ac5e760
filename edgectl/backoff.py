"""Capped, jittered exponential backoff — the one retry policy of edgectl."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Full-jitter exponential backoff (AWS architecture blog's "full jitter").

    ``next()`` returns the delay before the next attempt: uniform in
    ``[initial/2, min(cap, initial * 2**n)]``; ``reset()`` after a success.
    """

    initial: float
    cap: float
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return self.rng.uniform(min(self.initial / 2, ceiling), ceiling)

    def reset(self) -> None:
        self.attempts = 0
