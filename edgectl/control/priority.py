"""Emergency-vehicle priority with an arrival time: a pure planner on the preempt path.

A priority request names the vehicle's movement (the phases that serve it), its expected
arrival at the stop line (``eta``, controller time), a level (1 = highest) and how it checks
out (a detector, the centre's cancel, or a timeout after the ETA). Rather than preempting when
the vehicle arrives, the planner starts an ordinary preempt (:class:`~edgectl.control.types.
Preempt` on input :data:`PRIORITY_INPUT`) early enough that the movement is green and its
queue flushed before the ETA::

    start = eta - lead,   lead = clear_bound + flush

``clear_bound`` is a conservative bound, from the plan's timing, of the time the engine needs
to end any conflicting green safely: the green's remaining minimum (down to
``control.preempt_min_green``) or the pedestrian clearance after a truncated walk, whichever
is longer, then the full yellow and red clearance (the worst conflicting phase; rings clear in
parallel). ``flush`` is ``control.priority_flush_s`` (per phase:
``control.priority_flush_phase_s``). The engine's preempt path does the rest and is what keeps
it safe: it never cuts a yellow, a red clearance or a pedestrian clearance, and shortens a
minimum green only down to the preempt minimum.

Several requests resolve by level, then ETA: only the winner drives the preempt. A request
whose ``eta - lead`` has already passed is served as soon as possible and answered ``late``
(``honoured`` false, with the green time to expect). The preempt is held until check-out and
is never held longer than ``control.preempt_max_presence_s`` (the request is then dropped, as
the engine would disregard a preempt input on for longer). After a release the planner starts
no new priority preempt until every phase that was waiting at the release has been served
once (or ``control.priority_recovery_max_s`` has passed), so a stream of requests cannot
starve the other movements.

Nothing here reads a clock or does I/O: :class:`~edgectl.control.controller.Controller` hands
the planner each tick's time, detector presence and the engine's last outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgectl.config.model import Config, Plan
from edgectl.control.types import Interval, OperatingState, Outputs, Preempt

__all__ = [
    "PRIORITY_INPUT",
    "PriorityAnswer",
    "PriorityPlanner",
    "PriorityRequest",
    "clear_bound",
    "lead_time",
]

PRIORITY_INPUT = 7
"""The preempt input number priority uses: after the six physical/remote inputs (1..6), so a
railroad or any other preempt input outranks it (the engine serves the lowest input)."""

_MARGIN_S = 0.3  # the engine's entry tick, tick rounding, an overlap's last clearance tick


@dataclass(frozen=True, slots=True)
class PriorityRequest:
    """One vehicle's request. A new request with the same ``id`` replaces the old one."""

    id: str
    phases: tuple[int, ...]  # the vehicle's movement (dwell phases, compatible)
    eta: float  # controller time of the expected arrival at the stop line
    level: int = 1  # 1 = highest
    checkout_detector: int | None = None  # check out on this detector's next actuation
    timeout_s: float | None = None  # check out this long after the ETA (default: config)


@dataclass(frozen=True, slots=True)
class PriorityAnswer:
    """What the junction can promise: ``honoured`` when the movement will be green
    ``flush`` seconds before the ETA; otherwise ``green_at`` is the earliest green to expect."""

    id: str
    honoured: bool
    start: float  # when the preempt starts (planned, or now for a late request)
    green_at: float  # expected start of the movement's green, at the latest
    lead: float
    reason: str = ""


@dataclass(slots=True)
class _Active:
    request: PriorityRequest
    since: float  # preempt on since
    green: bool = False  # the movement has been green while served
    detector_seen: bool = False  # the check-out detector was on at the last tick


def clear_bound(config: Config, plan: Plan, phases: Iterable[int]) -> float:
    """Worst-case seconds to end every green conflicting with ``phases`` through its full
    clearance, from any moment (a green just started, a walk just begun)."""
    served = set(phases)
    preempt_min = config.control.preempt_min_green
    ped = {p.id for p in config.phases if p.pedestrian}
    worst = 0.0
    for pid, t in plan.timing.items():
        if pid in served:
            continue
        green = min(t.min_green, preempt_min)
        if pid in ped:
            green = max(green, t.ped_clear)
        worst = max(worst, green + t.yellow + t.red_clear)
    return worst + _MARGIN_S


def flush_s(config: Config, phases: Iterable[int]) -> float:
    """The queue flush time before the ETA: the longest of the movement's phases."""
    control = config.control
    return max(
        (control.priority_flush_phase_s.get(p, control.priority_flush_s) for p in phases),
        default=control.priority_flush_s,
    )


def lead_time(config: Config, plan: Plan, phases: Iterable[int]) -> float:
    """How long before the ETA the preempt must start: clearance bound + queue flush."""
    wanted = tuple(phases)
    return clear_bound(config, plan, wanted) + flush_s(config, wanted)


def _rank(r: PriorityRequest) -> tuple[int, float, str]:
    return (r.level, r.eta, r.id)


class PriorityPlanner:
    """Holds the priority requests and drives one preempt input from them, tick by tick."""

    def __init__(self, config: Config, *, input_number: int = PRIORITY_INPUT) -> None:
        self.config = config
        self.input = input_number
        self.requests: dict[str, PriorityRequest] = {}
        self.active: _Active | None = None
        self.delayed: frozenset[int] = frozenset()  # waiting at the last release
        self.released_at: float | None = None
        self.log: list[tuple[float, str, str]] = []  # (t, request id, what): for diagnosis

    @property
    def busy(self) -> bool:
        """Anything to do this tick: requests held, a preempt on, phases to recover."""
        return bool(self.requests) or self.active is not None or bool(self.delayed)

    # --- the centre's side ---

    def request(self, now: float, req: PriorityRequest, plan: Plan) -> PriorityAnswer:
        """Add or update a request; answer whether its ETA can be honoured."""
        self.requests[req.id] = req
        return self.answer(now, req, plan)

    def cancel(self, request_id: str) -> bool:
        """Check-out by the centre. False when no such request is held."""
        return self.requests.pop(request_id, None) is not None

    def answer(self, now: float, req: PriorityRequest, plan: Plan) -> PriorityAnswer:
        """The promise for ``req`` as things stand (other requests, recovery)."""
        clear = clear_bound(self.config, plan, req.phases)
        lead = clear + flush_s(self.config, req.phases)
        start = req.eta - lead
        earliest = now
        reason = ""
        if self.recovering(now):
            assert self.released_at is not None
            earliest = self.released_at + self.config.control.priority_recovery_max_s
            reason = "recovering from the last priority"
        for other in self.requests.values():
            if other.id == req.id or set(other.phases) == set(req.phases):
                continue
            serving = self.active is not None and self.active.request.id == other.id
            if not serving and _rank(other) > _rank(req):
                continue  # a lower-ranked request yields to this one
            if serving and other.level > req.level:
                continue  # outranked: this one takes the preempt over when due
            ends = other.eta + self._timeout(other)
            if serving and self.active is not None:
                ends = min(ends, self.active.since + self.config.control.preempt_max_presence_s)
            if ends > start and ends > earliest:
                earliest = ends
                reason = f"behind request {other.id!r} (level {other.level})"
        if start >= earliest:
            return PriorityAnswer(req.id, True, start, start + clear, lead)
        late = max(start, earliest)
        return PriorityAnswer(req.id, False, late, late + clear, lead, reason or "late")

    # --- the tick ---

    def _timeout(self, req: PriorityRequest) -> float:
        return (
            req.timeout_s if req.timeout_s is not None else self.config.control.priority_timeout_s
        )

    def recovering(self, now: float) -> bool:
        """Still serving the phases the last priority delayed (no new priority yet)."""
        if self.released_at is None or not self.delayed:
            return False
        return now - self.released_at < self.config.control.priority_recovery_max_s

    def winner(self, now: float, plan: Plan) -> PriorityRequest | None:
        """The request that drives the preempt now: the one being served unless a due
        request of a higher level (lower number) outranks it, else the best-ranked due one."""
        due = [
            r
            for r in self.requests.values()
            if now >= r.eta - lead_time(self.config, plan, r.phases)
        ]
        best = min(due, key=_rank, default=None)
        if self.active is not None and self.active.request.id in self.requests:
            current = self.requests[self.active.request.id]
            return best if best is not None and best.level < current.level else current
        return best

    def step(
        self, now: float, presence: frozenset[int], last: Outputs | None, plan: Plan
    ) -> tuple[Preempt, ...]:
        """This tick's preempt directives (none, an on, an off, or an off then an on)."""
        greens = _greens(last)
        if self.delayed:
            self.delayed -= greens
        self._check_out(now, presence, greens)
        active = self.active
        winner = self.winner(now, plan)
        if active is not None:
            if winner is None:
                return (self._release(now, last),)
            if winner == active.request:
                return ()
            out: tuple[Preempt, ...] = ()
            if set(winner.phases) != set(active.request.phases):
                # the engine keeps an input's first phases: off then on re-selects the dwell
                out = (Preempt(self.input, False), Preempt(self.input, True, winner.phases))
                active.green = False
                active.detector_seen = False
            self.log.append((now, winner.id, "switch"))
            active.request = winner  # ``since`` kept: max presence bounds the whole hold
            return out
        if winner is None or self.recovering(now):
            return ()
        self.active = _Active(winner, now)
        self.log.append((now, winner.id, "start"))
        return (Preempt(self.input, True, winner.phases),)

    def _check_out(self, now: float, presence: frozenset[int], greens: frozenset[int]) -> None:
        """Drop requests that have checked out (detector, timeout, max presence)."""
        for rid, req in list(self.requests.items()):
            if now >= req.eta + self._timeout(req):
                del self.requests[rid]
                self.log.append((now, rid, "timeout"))
        active = self.active
        if active is None or active.request.id not in self.requests:
            return
        req = active.request
        if greens & set(req.phases):
            active.green = True
        if req.checkout_detector is not None:
            on = req.checkout_detector in presence
            if on and not active.detector_seen and active.green:
                del self.requests[req.id]
                self.log.append((now, req.id, "detector"))
                return
            active.detector_seen = on
        if now - active.since >= self.config.control.preempt_max_presence_s - 0.2:
            del self.requests[req.id]  # released just before the engine would disregard it
            self.log.append((now, req.id, "max presence"))

    def _release(self, now: float, last: Outputs | None) -> Preempt:
        assert self.active is not None
        self.log.append((now, self.active.request.id, "release"))
        self.active = None
        self.released_at = now
        self.delayed = _waiting(last)
        return Preempt(self.input, False)


def _greens(last: Outputs | None) -> frozenset[int]:
    if last is None:
        return frozenset()
    return frozenset(
        r.phase for r in last.rings if r.phase is not None and r.interval is Interval.GREEN
    )


def _waiting(last: Outputs | None) -> frozenset[int]:
    """Phases called and not green at a release: the ones the priority delayed."""
    if last is None or last.state is not OperatingState.PREEMPT:
        return frozenset()
    return last.calls - _greens(last)


def ranked(requests: Mapping[str, PriorityRequest]) -> list[PriorityRequest]:
    """The requests in the order they are served (level, then ETA)."""
    return sorted(requests.values(), key=_rank)
