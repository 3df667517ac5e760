"""The coordination reference: where a coordinated plan is in its cycle on a shared clock, and
the bounded transition that walks the junction's own cycle into step with it.

Why a shared clock: neighbouring junctions keep a green wave only if they agree on where cycle
zero is. Counting the cycle on each controller's own time (which starts when the daemon
starts) shifts the offset at every restart. As NTCIP 1202 controllers do, the cycle is
therefore counted on the wall clock from a **sync reference**, a local time of day
(``control.sync_reference``, default ``"00:00"``; a plan's ``coordination.sync_reference``
overrides it)::

    target = (sync_s − reference − offset) mod cycle

``sync_s`` is handed to the controller every tick (:attr:`~edgectl.control.types.Inputs.sync_s`;
the core reads no clock): in the daemon, UTC seconds since the epoch plus the cabinet zone's
UTC offset *on a fixed date* (1 January 2001, :mod:`edgectl.daemon.clock`), so that whole local
days are 86 400 s and the cycle is one unbroken lattice of cycles. A daylight-saving change
moves the time-of-day schedule (which reads the local time) but not the cycle: it is never
re-counted at a DST change or at midnight, and every junction with the same zone, reference,
cycle and offset agrees. In the SUMO bench ``sync_s`` is the simulation time; without it the
controller's own time stands in (the behaviour before the shared clock).

The junction runs its **own** cycle position (:class:`CycleClock`), which follows the target.
When they disagree by more than :data:`IN_STEP_TOLERANCE_S` — after a plan or offset change,
a wall-clock step, a held controller clock — the local cycle walks back into step by a
bounded transition, the shorter of:

- **shortway** (NTCIP "subtract"): the local cycle runs up to :data:`SHORTWAY_MAX` (20 %) fast
  outside the coordinated phases' green, so every split there is at most 1/1.2 = 83 % of its
  length (about 17 % shorter), and never shorter than the phase's minimum service (minimum
  green or walk + pedestrian clearance, plus yellow and red clearance): the fraction is capped
  per plan so that it cannot be;
- **dwell**: the local cycle stops while inside the coordinated phases' green (they are held
  longer), at most :data:`DWELL_MAX_FRACTION` of the cycle (20 %) per cycle.

Nothing here shortens an interval: the strategies only request holds and force-offs at the
local cycle's window points, and the engine never ends a minimum green, a clearance or a
pedestrian interval early whatever is requested.

At start-up (or when a cycle mode begins) the local cycle is set to the target at once
(``immediate``, NTCIP "begin pickup"): the engine's start-up phases are the coordinated ones,
out-of-window greens are forced off after their minimum, and the junction is in step by the
next cycle zero; the pick-up ends there, or as soon as the coordinated phases are green inside
their window (from then on they yield at their force-off points).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from edgectl.config.model import Config, Plan
from edgectl.control.strategies.base import split_windows

__all__ = [
    "DWELL_MAX_FRACTION",
    "IN_STEP_TOLERANCE_S",
    "SHORTWAY_MAX",
    "CycleClock",
    "CycleTerms",
    "Transition",
    "cycle_terms",
    "reference_seconds",
    "target_position",
]

SHORTWAY_MAX = 0.2
"""The local cycle runs at most this much fast in a shortway transition (splits ≥ 1/1.2)."""

DWELL_MAX_FRACTION = 0.2
"""At most this fraction of the cycle is dwelled in the coordinated phases per cycle."""

IN_STEP_TOLERANCE_S = 0.5
"""A difference up to this is followed at once (never backwards); more starts a transition."""


class Transition(enum.StrEnum):
    """How the local cycle is walking into step (``None``: in step)."""

    IMMEDIATE = "immediate"  # start-up pick-up: set to the target, in step at the next zero
    SHORTWAY = "shortway"  # running fast outside the coordinated green
    DWELL = "dwell"  # stopped inside the coordinated green


#: Indiana hi-res event 150 (coord cycle state change) parameters.
COORD_STATE_PARAM: dict[Transition | None, int] = {
    None: 1,  # in step
    Transition.SHORTWAY: 3,  # transition - subtract
    Transition.DWELL: 4,  # transition - dwell
    Transition.IMMEDIATE: 6,  # begin pick-up
}
COORD_FREE_PARAM = 0


def reference_seconds(text: str) -> float:
    """``"HH:MM"`` or ``"HH:MM:SS"`` → seconds after midnight (``ValueError`` otherwise)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"sync reference {text!r} is not HH:MM or HH:MM:SS")
    hh, mm = int(parts[0]), int(parts[1])
    ss = int(parts[2]) if len(parts) == 3 else 0
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"sync reference {text!r} is not a time of day")
    return float(hh * 3600 + mm * 60 + ss)


def target_position(sync_s: float, reference_s: float, offset: float, cycle: float) -> float:
    """Where the shared clock says the cycle is: seconds since the start of coordinated green."""
    return (sync_s - reference_s - offset) % cycle


@dataclass(frozen=True, slots=True)
class CycleTerms:
    """What the local cycle needs of a coordinated plan (built once per plan)."""

    cycle: float
    offset: float
    reference_s: float
    coord_end: float  # the coordinated green: local positions [0, coord_end)
    shortway: float  # how much faster the local cycle may run outside it (0: no shortway)
    dwell_max: float  # seconds per cycle the local cycle may stop inside it
    coord_phases: frozenset[int] = frozenset()  # the phases whose windows begin at zero

    @property
    def shortway_gain(self) -> float:
        """Seconds a whole cycle of shortway gains on the target."""
        return (self.cycle - self.coord_end) * self.shortway / (1.0 + self.shortway)


def _min_service(config: Config, plan: Plan, phase: int) -> float:
    timing = plan.timing.get(phase)
    if timing is None:
        return 0.0
    green = timing.min_green
    try:
        if config.phase(phase).pedestrian:
            green = max(green, timing.walk + timing.ped_clear)
    except KeyError:
        pass
    return green + timing.yellow + timing.red_clear


def cycle_terms(config: Config, plan: Plan) -> CycleTerms | None:
    """The plan's cycle terms; None for a plan without a cycle."""
    coord = plan.coordination
    if coord is None or coord.cycle <= 0:
        return None
    windows = split_windows(config, plan)
    firsts = [w.force_off for w in windows.values() if w.start == 0.0 and w.split > 0]
    coord_phases = frozenset(p for p, w in windows.items() if w.start == 0.0 and w.split > 0)
    coord_end = min(firsts) if firsts else 0.0
    shortway = SHORTWAY_MAX
    for p, w in windows.items():
        need = _min_service(config, plan, p)
        if w.split > 0 and need > 0:
            shortway = min(shortway, w.split / need - 1.0)
    reference = coord.sync_reference or config.control.sync_reference
    return CycleTerms(
        cycle=coord.cycle,
        offset=coord.offset,
        reference_s=reference_seconds(reference),
        coord_end=max(0.0, coord_end),
        shortway=max(0.0, shortway),
        dwell_max=DWELL_MAX_FRACTION * coord.cycle,
        coord_phases=coord_phases,
    )


class CycleClock:
    """The junction's own cycle position, walked into step with the shared clock's target.

    Pure: :meth:`step` is given the controller time and the shared clock every tick. The
    position never runs backwards and never runs faster than ``1 + terms.shortway``.
    """

    __slots__ = ("_dwelled", "_now", "_position", "_terms", "transition")

    def __init__(self) -> None:
        self._position: float | None = None
        self._now = 0.0
        self._terms: CycleTerms | None = None
        self._dwelled = 0.0  # dwell used in the current local cycle
        self.transition: Transition | None = None

    @property
    def position(self) -> float | None:
        return self._position

    @property
    def running(self) -> bool:
        return self._position is not None

    def rate(self) -> float:
        """How fast the local cycle runs now against real time (1 in step)."""
        terms, pos = self._terms, self._position
        if terms is None or pos is None:
            return 1.0
        if self.transition is Transition.SHORTWAY and pos >= terms.coord_end:
            return 1.0 + terms.shortway
        return 1.0

    def reset(self) -> None:
        """Stop (a mode without a cycle): the next :meth:`step` picks up at once."""
        self._position = None
        self._terms = None
        self.transition = None
        self._dwelled = 0.0

    def step(
        self, now: float, sync_s: float, terms: CycleTerms, *, coord_green: bool = False
    ) -> float:
        """The local cycle position at controller time ``now``. ``coord_green``: the
        coordinated phases are green (a pick-up ends once they are, inside their window)."""
        target = target_position(sync_s, terms.reference_s, terms.offset, terms.cycle)
        pos = self._position
        if pos is None:
            self._position, self._now, self._terms = target, now, terms
            self.transition = Transition.IMMEDIATE
            self._dwelled = 0.0
            return target
        if terms is not self._terms:
            if terms != self._terms:  # a new plan, cycle, offset or reference
                pos %= terms.cycle
            self._terms = terms
        dt = max(0.0, now - self._now)
        self._now = now
        cycle = terms.cycle
        new = self._advance(pos, dt, target, terms)
        if new >= cycle:  # a new local cycle began
            self._dwelled = 0.0
            if self.transition is Transition.IMMEDIATE:
                self.transition = None
        self._position = new % cycle
        if (
            self.transition is Transition.IMMEDIATE
            and coord_green
            and self._position < terms.coord_end
        ):
            self.transition = None  # picked up: the coordinated green runs in its window
        return self._position

    def _advance(self, pos: float, dt: float, target: float, t: CycleTerms) -> float:
        """The new position, unwrapped (≥ ``pos``; ≥ the cycle when a new cycle began)."""
        behind = (target - (pos + dt)) % t.cycle  # to gain on top of running normally
        ahead = t.cycle - behind if behind > 0 else 0.0  # or to lose
        small_behind, small_ahead = behind <= IN_STEP_TOLERANCE_S, ahead <= IN_STEP_TOLERANCE_S
        finishing = (self.transition is Transition.SHORTWAY and small_behind) or (
            self.transition is Transition.DWELL and small_ahead
        )
        if (small_behind or small_ahead) and not finishing:
            if self.transition is not Transition.IMMEDIATE:
                self.transition = None  # in step (a pick-up ends at its own point)
            if small_behind:
                return _forward(pos, target, t.cycle)
            return _forward(pos, target, t.cycle) if dt >= ahead else pos
        if not finishing:
            self.transition = self._direction(behind, ahead, t)
        if self.transition is Transition.SHORTWAY:
            extra = dt * t.shortway if pos >= t.coord_end else 0.0
            if extra >= behind:
                self.transition = None
                return _forward(pos, target, t.cycle)
            return pos + dt + extra
        lose = 0.0
        if small_ahead:  # the last fraction of a second: wait wherever the cycle is
            lose = dt
        elif pos < t.coord_end and self._dwelled < t.dwell_max:
            lose = min(dt, t.dwell_max - self._dwelled)
            self._dwelled += lose
        if lose >= ahead:
            self.transition = None
            return _forward(pos, target, t.cycle)
        return pos + dt - lose

    @staticmethod
    def _direction(behind: float, ahead: float, t: CycleTerms) -> Transition:
        """The shorter way into step, in cycles of real time."""
        gain = t.shortway_gain
        shortway = behind / gain if gain > 0 else math.inf
        dwell = ahead / t.dwell_max if t.dwell_max > 0 else math.inf
        return Transition.SHORTWAY if shortway <= dwell else Transition.DWELL


def _forward(pos: float, target: float, cycle: float) -> float:
    """``target`` as a position at or after ``pos`` (unwrapped: > cycle when it wrapped)."""
    return pos + (target - pos) % cycle
