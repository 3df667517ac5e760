"""Bounds of signal timing (SPEC §4, MUTCD / ITE) and the ITE change and clearance formulas.

Used by plan validation (errors and warnings) and by the SUMO bench, which times its
yellow and red clearance from lane speeds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "MAX_RED_CLEAR",
    "MAX_YELLOW",
    "MIN_GREEN",
    "MIN_WALK",
    "MIN_WALK_REDUCED",
    "MIN_YELLOW",
    "PED_SPEED_MPS",
    "STOP_FLUSH_S",
    "UNIT_STOP_TIMEOUT_S",
    "handover_limit_s",
    "ite_red_clear",
    "ite_yellow",
]

# MUTCD / ITE bounds (SPEC §4)
MIN_YELLOW = 3.0
MAX_YELLOW = 6.0
MAX_RED_CLEAR = 6.0
MIN_GREEN = 4.0
MIN_WALK = 7.0
MIN_WALK_REDUCED = 4.0
PED_SPEED_MPS = 1.07  # 3.5 ft/s, MUTCD 4E.06


G_MPS2 = 9.81


class PhaseTimingLike(Protocol):
    """What :func:`handover_limit_s` reads of a phase's timing."""

    @property
    def min_green(self) -> float: ...
    @property
    def walk(self) -> float: ...
    @property
    def ped_clear(self) -> float: ...
    @property
    def yellow(self) -> float: ...
    @property
    def red_clear(self) -> float: ...


def ite_yellow(
    speed_kmh: float,
    grade: float = 0.0,
    *,
    reaction_s: float = 1.0,
    decel_mps2: float = 3.05,
) -> float:
    """ITE yellow change interval ``t + v / (2a + 2·G·g)`` in seconds.

    ``speed_kmh`` is the approach speed, ``grade`` a fraction (uphill positive), ``reaction_s``
    the perception-reaction time and ``decel_mps2`` the comfortable deceleration.
    """
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise ValueError(f"approach speed must be a positive number, got {speed_kmh!r}")
    denominator = 2.0 * decel_mps2 + 2.0 * grade * G_MPS2
    if not denominator > 0:
        raise ValueError(f"deceleration {decel_mps2} and grade {grade} give no stopping")
    return reaction_s + (speed_kmh / 3.6) / denominator


def ite_red_clear(width_m: float, speed_kmh: float, *, vehicle_length_m: float = 6.1) -> float:
    """ITE red clearance interval ``(W + L) / v`` in seconds."""
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise ValueError(f"approach speed must be a positive number, got {speed_kmh!r}")
    return (width_m + vehicle_length_m) / (speed_kmh / 3.6)


#: systemd's ``TimeoutStopSec=`` in the shipped unit, and the outbox flush after the flash
UNIT_STOP_TIMEOUT_S = 45.0
STOP_FLUSH_S = 3.0


def handover_limit_s(timings: Iterable[PhaseTimingLike]) -> float:
    """Longest a safe hand-over to flash can take: a green that just started must run its
    minimum (or walk + pedestrian clearance), then yellow and red clearance (+ 2 s)."""
    worst = 0.0
    for t in timings:
        green = max(t.min_green, t.walk + t.ped_clear)
        worst = max(worst, green + t.yellow + t.red_clear)
    return worst + 2.0
