"""Transit signal priority (TSP): a pure planner that nudges the strategy's requests.

A bus *checks in* (the centre's ``tsp_checkin`` command, a local priority input, or
:meth:`~edgectl.control.controller.Controller.transit_checkin`) naming the phases that serve
it and, optionally, its expected arrival at the stop line (``eta``, controller time). It
*checks out* by the centre (``tsp_checkout``), by a detector (the first actuation of
``checkout_detector`` while one of its phases shows green or yellow) or by a timeout
(``timeout_s`` after the ETA, or after the check-in when there is no ETA; default: the plan's
``tsp_timeout_s``).

Two adjustments, each bounded by the plan in force (``tsp_*`` fields of
:class:`~edgectl.config.model.Plan`), and only through :class:`~edgectl.control.types.Requests`
edited before the engine steps (calls, holds, force-offs, omits withdrawn), so the engine's
safety rules are in force whatever is asked: min green, walk and pedestrian clearance, yellow
and red clearance are timed in full, and a hold never outlasts ``control.hold_max_s``.

Free modes (``actuated``, ``adaptive``, ``maxpressure``):

- **green extension** (event 114): the bus phase is green and the bus is expected within
  ``tsp_max_extend_s`` (or has no ETA): the phase is held (a strategy's force-off of it is
  withdrawn) until the ETA has passed by :data:`EXTEND_GRACE_S`, or ``tsp_max_extend_s``
  from the decision has run out, or the bus checks out, whichever comes first.
- **early green** (event 113): the bus phase is red and the bus is expected within
  :func:`early_horizon`: the bus phase is called (a strategy's omit of it withdrawn) and a
  conflicting green is forced off once it has run ``max1 − tsp_max_early_s`` (so it loses at
  most ``tsp_max_early_s`` of its maximum, never its minimum). When the bus phase then comes
  green, the extension may follow in the same episode.

Cycle modes (``fixed``, ``coordinated``; the local cycle position ``c``), the force-off points
move within the cycle so the coordinated phases still begin at cycle zero (cycle length and
offset kept; the cycle recovers within itself):

- a bus due within its phase's own split window keeps the phase green there (hold: no
  gap-out); that moves no force-off and is no adjustment;
- **green extension** (114): at its force-off point the bus phase stays green by at most
  ``min(tsp_max_extend_s, coordinated_extend_bound)`` — the slack of the next phase of its
  ring, and of every other ring's first phase after the barrier, above their minimum service
  before their own force-off points (:func:`coordinated_extend_bound`); so nobody after it
  is cut below a minimum and the coordinated phase starts on time; only while the bus is due;
- **early green** (113): a conflicting green within ``tsp_max_early_s`` of its own force-off
  point is forced off; the bus phase is called and may start up to ``tsp_max_early_s`` before
  its ring's coordinated force-off point (the coordinated strategy's permissive period
  otherwise opens there) and is held from then into its window while the bus is due.

Nothing is adjusted while the cycle clock is in a transition, while an emergency priority is
active (:attr:`~edgectl.control.priority.PriorityPlanner.busy`, which includes its recovery),
outside normal operation, in manual or flash mode, or when the plan in force has
``tsp_enabled`` false (requests stay held until they check out).

Each approach (the request's phases) is adjusted **at most once per** ``tsp_lockout_cycles``
cycles, counted in each phase's ring (a ring beginning a green on a phase not after the
previous one in its sequence starts a cycle). One *episode* (early green and the extension
that may follow in the same green) counts once; an episode ends when the bus phase's green
ends; a bus that missed it (not checked out) may have a new one once the lockout has passed.

Events (Indiana hi-res enumeration), the parameter being the request's first phase: 112
check-in, 113 early green, 114 extend green, 115 check-out.

Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from edgectl.config.model import Config, Plan
from edgectl.control.strategies.base import SplitWindow, in_window, split_windows
from edgectl.control.types import (
    Event,
    EventCode,
    Interval,
    OperatingState,
    Outputs,
    Requests,
)

__all__ = [
    "ETA_PAST_S",
    "EXTEND_GRACE_S",
    "MAX_ETA_AHEAD_S",
    "TransitAnswer",
    "TransitPlanner",
    "TransitRequest",
    "coordinated_extend_bound",
    "early_horizon",
]

EXTEND_GRACE_S = 3.0
"""A green extension ends this long after the bus's ETA (the bus has had time to pass)."""

MAX_ETA_AHEAD_S = 600.0
"""A check-in's ETA at most this far ahead."""

ETA_PAST_S = 5.0
"""A check-in's ETA at most this far in the past (clock skew)."""

EARLY_GIVE_UP_S = 120.0
"""Free modes: an early green episode whose bus phase has not come green this long after the
early horizon is over (its lockout counts from its start). Cycle modes: after one cycle."""


@dataclass(frozen=True, slots=True)
class TransitRequest:
    """One bus's check-in. A new check-in with the same ``id`` replaces the old one."""

    id: str
    phases: tuple[int, ...]  # the bus's movement (phases that can be green together)
    eta: float | None = None  # controller time of the expected arrival at the stop line
    timeout_s: float | None = None  # check out this long after the ETA (default: the plan)
    checkout_detector: int | None = None  # check out on this detector's actuation (green)


@dataclass(frozen=True, slots=True)
class TransitAnswer:
    """What the junction does with a check-in. ``accepted`` false: refused (``code`` and
    ``reason`` say why) and nothing is held; true: held until check-out, ``reason`` says what
    may stand in its way now (an emergency priority, the approach's lockout)."""

    id: str
    accepted: bool
    code: str = ""  # "" | "disabled" | "phase_not_enabled" | "eta_out_of_range"
    reason: str = ""


@dataclass(slots=True)
class _Held:
    request: TransitRequest
    since: float  # checked in at
    # "" (no episode) | "early" (bus phase red: early green) | "served" (bus phase green after
    # the episode began: kept / extended) | "done" (over; a new one after the lockout)
    episode: str = ""
    started: float = 0.0  # the episode's start
    extend_from: float | None = None  # when the extension began (event 114)
    detector_seen: bool = False  # the check-out detector was on at the last tick


def _timeout(plan: Plan, req: TransitRequest) -> float:
    return req.timeout_s if req.timeout_s is not None else plan.tsp_timeout_s


def early_horizon(plan: Plan) -> float:
    """How long before its ETA a bus on a red phase gets early green: the conflicting greens
    can lose at most ``tsp_max_early_s`` each, and the extension covers what follows."""
    return plan.tsp_max_early_s + plan.tsp_max_extend_s + 10.0


def _ring_after(windows: Mapping[int, SplitWindow], seq: list[int], p: int) -> list[int]:
    """The ring's phases (rotated sequence) after ``p`` up to (not including) the next
    coordinated phase; with splits only."""
    k = seq.index(p)
    out: list[int] = []
    for q in seq[k + 1 :] + seq[:k]:
        w = windows.get(q)
        if w is None or w.split <= 0:
            continue
        if w.coordinated:
            break
        out.append(q)
    return out


def coordinated_extend_bound(config: Config, plan: Plan, phase: int) -> float:
    """How far (s) ``phase``'s force-off point may move later in a coordinated plan so that the
    next phase of its ring, and the first phase after the barrier of every other ring, still
    time their minimum green before their own force-off points (the coordinated phases then
    start at cycle zero). 0 when the next phase is the coordinated one."""
    windows = split_windows(config, plan)
    if phase not in windows:
        return 0.0

    def slack(q: int) -> float:
        w = windows[q]
        t = plan.timing.get(q)
        need = t.min_green if t is not None else 0.0
        if t is not None and config.phase(q).pedestrian and t.walk + t.ped_clear > 0:
            need = max(need, t.walk + t.ped_clear)
        return max(0.0, (w.force_off - w.start) - need)

    group_of = _groups(config)
    rings = [_rotated(config, windows, r.sequence) for r in config.rings]
    own = next(seq for seq in rings if phase in seq)
    after = _ring_after(windows, own, phase)
    if not after:
        return 0.0
    bound = slack(after[0])
    crosses = any(group_of.get(q) != group_of.get(phase) for q in after) or (
        len(after) < len(own) - 1
    )
    if crosses:
        cycle = plan.coordination.cycle if plan.coordination is not None else 0.0
        here = windows[phase].start
        for seq in rings:
            if seq is own:
                continue
            # that ring's first phase after the barrier, in cycle order from this phase
            nxt = [
                q for q in seq if windows[q].split > 0 and group_of.get(q) != group_of.get(phase)
            ]
            first = min(nxt, key=lambda q: (windows[q].start - here) % cycle, default=None)
            if first is None:
                continue
            if windows[first].coordinated:
                return 0.0  # it would start late: no extension at all
            bound = min(bound, slack(first))
    return bound


def _groups(config: Config) -> dict[int, int]:
    from edgectl.config.junction import barrier_groups

    return barrier_groups(config)


def _rotated(config: Config, windows: Mapping[int, SplitWindow], seq: tuple[int, ...]) -> list[int]:
    ordered = [p for p in seq if p in windows]
    return sorted(ordered, key=lambda p: windows[p].start)


class TransitPlanner:
    """Holds the check-ins and adjusts each tick's requests for them (see the module)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.held: dict[str, _Held] = {}
        self.cycles: dict[int, int] = {}  # ring id -> cycles begun
        self._last_green: dict[int, int] = {}  # ring id -> the last phase that began green
        self._locked: dict[int, tuple[int, int]] = {}  # phase -> (ring, cycle of the episode)
        self._events: list[Event] = []
        self._seq_idx: dict[int, int] = {}
        self._ring_of: dict[int, int] = {}
        for ring in config.rings:
            for i, p in enumerate(ring.sequence):
                self._seq_idx[p] = i
                self._ring_of[p] = ring.id
        self._group_of = _groups(config)
        self._bounds_for: Plan | None = None
        self._bounds: dict[int, float] = {}
        self.log: list[tuple[float, str, str]] = []  # (t, request id, what): for diagnosis

    @property
    def busy(self) -> bool:
        return bool(self.held)

    # --- check-in / check-out ---

    def check(self, now: float, req: TransitRequest, plan: Plan) -> TransitAnswer:
        """Refusals that depend on the plan and the time (not on the structure)."""
        if not plan.tsp_enabled:
            return TransitAnswer(req.id, False, "disabled", f"TSP is disabled in plan {plan.id}")
        allowed = set(plan.tsp_phases)
        if allowed and not set(req.phases) <= allowed:
            bad = sorted(set(req.phases) - allowed)
            return TransitAnswer(
                req.id, False, "phase_not_enabled", f"TSP is not enabled on phase(s) {bad}"
            )
        if req.eta is not None and not (now - ETA_PAST_S <= req.eta <= now + MAX_ETA_AHEAD_S):
            return TransitAnswer(
                req.id,
                False,
                "eta_out_of_range",
                f"eta {req.eta - now:+.0f} s from now (allowed −{ETA_PAST_S:g} … "
                f"+{MAX_ETA_AHEAD_S:g} s)",
            )
        return TransitAnswer(req.id, True)

    def checkin(
        self, now: float, req: TransitRequest, plan: Plan, *, emergency: bool = False
    ) -> TransitAnswer:
        answer = self.check(now, req, plan)
        if not answer.accepted:
            return answer
        old = self.held.get(req.id)
        if old is not None and set(old.request.phases) == set(req.phases):
            old.request = req  # an update (a new ETA): the episode goes on
        else:
            self.held[req.id] = _Held(req, now)
            self._events.append(Event(now, EventCode.TSP_CHECK_IN, req.phases[0]))
            self.log.append((now, req.id, "check-in"))
        reason = ""
        if emergency:
            reason = "an emergency priority is active: no TSP until it ends"
        elif self._locked_out(req.phases, plan):
            reason = f"approach locked out for {plan.tsp_lockout_cycles} cycle(s)"
        return replace(answer, reason=reason)

    def checkout(self, now: float, request_id: str, why: str = "centre") -> bool:
        held = self.held.pop(request_id, None)
        if held is None:
            return False
        self._events.append(Event(now, EventCode.TSP_CHECK_OUT, held.request.phases[0]))
        self.log.append((now, request_id, f"check-out ({why})"))
        return True

    # --- lockout ---

    def _locked_out(self, phases: tuple[int, ...], plan: Plan) -> bool:
        n = plan.tsp_lockout_cycles
        for p in phases:
            lock = self._locked.get(p)
            if lock is None:
                continue
            ring, cycle = lock
            if self.cycles.get(ring, 0) - cycle < n:
                return True
        return False

    def _lock(self, phases: tuple[int, ...]) -> None:
        for p in phases:
            ring = self._ring_of.get(p, 0)
            self._locked[p] = (ring, self.cycles.get(ring, 0))

    def observe(self, last: Outputs | None) -> None:
        """Count the cycles (for the lockout) from the last tick's events; the controller
        calls it every tick, whether a bus is checked in or not."""
        if last is None:
            return
        for ev in last.events:
            if ev.code != EventCode.PHASE_BEGIN_GREEN:
                continue
            ring = self._ring_of.get(ev.param)
            if ring is None:
                continue
            prev = self._last_green.get(ring)
            if prev is None or self._seq_idx[ev.param] <= self._seq_idx[prev]:
                self.cycles[ring] = self.cycles.get(ring, 0) + 1
            self._last_green[ring] = ev.param

    # --- the tick ---

    def events(self) -> tuple[Event, ...]:
        """The events since the last call (check-ins/-outs between ticks, this tick's)."""
        out = tuple(self._events)
        self._events.clear()
        return out

    def step(
        self,
        now: float,
        requests: Requests,
        *,
        plan: Plan,
        last: Outputs | None,
        presence: frozenset[int],
        cycle_time: float | None,
        in_step: bool,
        suspended: bool,
    ) -> Requests:
        """This tick's requests with the TSP adjustments applied to ``requests`` (the
        strategy's). ``cycle_time``: the local cycle position in a coordinated mode (None in
        the free modes); ``in_step``: the cycle clock is not in a transition; ``suspended``:
        an emergency priority is active or the engine is not in normal operation."""
        greens, shown = _greens(last)
        self._check_out(now, presence, shown, plan)
        if not self.held:
            return requests
        coord = plan.coordination
        cycle = coord.cycle if coord is not None and cycle_time is not None else 0.0
        if (
            suspended
            or not plan.tsp_enabled  # a plan change turned it off: held, nothing done
            or (cycle_time is not None and (not in_step or cycle <= 0))
        ):
            for held in self.held.values():
                if held.episode in ("early", "served"):
                    held.episode = "done"  # an interrupted episode is over (lockout kept)
            return requests
        k = _Tick(
            now,
            plan,
            greens,
            last,
            cycle_time if cycle_time is not None else 0.0,
            cycle,
            split_windows(self.config, plan) if cycle_time is not None else {},
        )
        for held in sorted(self.held.values(), key=_order):
            if cycle_time is None:
                self._free(held, k)
            else:
                self._cycle(held, k)
        if not (k.calls or k.hold or k.force or k.unomit):
            return requests
        return Requests(
            calls=requests.calls | k.calls,
            ped_calls=requests.ped_calls,
            hold=(requests.hold | k.hold) - k.force,
            force_off=(requests.force_off | k.force) - k.hold,
            omit=requests.omit - k.unomit,
            ped_omit=requests.ped_omit,
            next_phase=requests.next_phase,
            max2=requests.max2,
        )

    # --- episodes ---

    def _start(self, held: _Held, k: _Tick, episode: str, code: EventCode) -> None:
        req = held.request
        if held.episode == "":
            self._lock(req.phases)
        held.episode = episode
        held.started = k.now
        self._events.append(Event(k.now, code, req.phases[0]))
        what = "extend" if code == EventCode.TSP_EXTEND_GREEN else episode
        self.log.append((k.now, req.id, what))

    def _extending(self, held: _Held, k: _Tick) -> None:
        """The extension begins now (event 114 once per episode)."""
        if held.extend_from is not None:
            return
        held.extend_from = k.now
        if held.episode == "served" and held.started == k.now:
            return  # _start emitted it
        self._events.append(Event(k.now, EventCode.TSP_EXTEND_GREEN, held.request.phases[0]))
        self.log.append((k.now, held.request.id, "extend"))

    def _free(self, held: _Held, k: _Tick) -> None:
        """Actuated, adaptive, max pressure: hold / force-off / call requests."""
        req, plan, now = held.request, k.plan, k.now
        phases = frozenset(req.phases)
        green = phases & k.greens
        if not self._ready(held, green, plan):
            return
        if held.episode == "":
            if green:
                if plan.tsp_max_extend_s <= 0 or not _within(req, now, plan.tsp_max_extend_s):
                    return
                self._start(held, k, "served", EventCode.TSP_EXTEND_GREEN)
                self._extending(held, k)
            elif plan.tsp_max_early_s > 0 and _within(req, now, early_horizon(plan)):
                self._start(held, k, "early", EventCode.TSP_EARLY_GREEN)
            else:
                return
        if held.episode == "early":
            if not green:
                if now - held.started > early_horizon(plan) + EARLY_GIVE_UP_S:
                    held.episode = "done"  # the bus never came green: the episode is over
                    return
                k.calls |= phases
                k.unomit |= phases
                k.force |= self._free_force_offs(phases, k)
                return
            held.episode = "served"
        if held.episode != "served":
            return
        if not green:
            held.episode = "done"
            return
        if held.extend_from is None:
            if plan.tsp_max_extend_s <= 0 or not _within(req, now, plan.tsp_max_extend_s):
                return  # green early for a bus still far: the strategy carries on
            self._extending(held, k)
        assert held.extend_from is not None
        deadline = held.extend_from + plan.tsp_max_extend_s
        if req.eta is not None:
            deadline = min(deadline, max(req.eta, held.extend_from) + EXTEND_GRACE_S)
        if now >= deadline:
            held.episode = "done"
            return
        k.hold |= green

    def _cycle(self, held: _Held, k: _Tick) -> None:
        """Fixed and coordinated: force-off points moved within the cycle."""
        req, plan, now, c, windows = held.request, k.plan, k.now, k.c, k.windows
        phases = frozenset(p for p in req.phases if p in windows and windows[p].split > 0)
        if not phases:
            return
        green = phases & k.greens
        if not self._ready(held, green, plan):
            return
        if held.episode == "":
            if green:
                for p in green:  # a bus due within the green's own window: no gap-out
                    w = windows[p]
                    if in_window(c, w.start, w.force_off, k.cycle) and _due(req, k, w.force_off):
                        k.hold.add(p)
                if not any(self._extension(p, req, k) for p in green):
                    return
                self._start(held, k, "served", EventCode.TSP_EXTEND_GREEN)
                self._extending(held, k)
            else:
                until = min(_until(c, windows[p].start, k.cycle) for p in phases)
                if plan.tsp_max_early_s <= 0 or not (
                    req.eta is None
                    or (req.eta - now < until and req.eta - now <= early_horizon(plan))
                ):
                    return
                self._start(held, k, "early", EventCode.TSP_EARLY_GREEN)
        if held.episode == "early":
            if not green:
                if now - held.started > k.cycle:
                    held.episode = "done"  # a whole cycle without the green: over
                    return
                k.calls |= phases
                k.force |= self._cycle_force_offs(phases, k)
                k.unomit |= self._cycle_unomit(phases, k)
                return
            held.episode = "served"
        if held.episode != "served":
            return
        if not green:
            held.episode = "done"
            return
        keep = False
        for p in green:
            w = windows[p]
            if in_window(c, w.start, w.force_off, k.cycle):
                keep = True  # its own window: held while the bus is due in it
                if _due(req, k, w.force_off):
                    k.hold.add(p)
            elif in_window(c, self._early_start(p, k), w.start, k.cycle):
                keep = True  # started early: kept green into its window for the bus
                if _due(req, k, w.force_off):
                    k.hold.add(p)
            elif self._extension(p, req, k):
                self._extending(held, k)
                k.hold.add(p)
                keep = True
        if not keep:
            held.episode = "done"

    def _ready(self, held: _Held, green: frozenset[int], plan: Plan) -> bool:
        """May this request act (start or go on with an episode)?"""
        if held.episode == "done":
            if not green and not self._locked_out(held.request.phases, plan):
                held.episode = ""  # the bus missed its green: a new episode may start
                held.extend_from = None
            return False
        return not (held.episode == "" and self._locked_out(held.request.phases, plan))

    # --- the pieces ---

    def _extend_bound(self, plan: Plan, phase: int) -> float:
        if plan is not self._bounds_for:
            self._bounds = {}
            self._bounds_for = plan
        if phase not in self._bounds:
            self._bounds[phase] = coordinated_extend_bound(self.config, plan, phase)
        return self._bounds[phase]

    def _extension(self, p: int, req: TransitRequest, k: _Tick) -> bool:
        """Coordinated: is ``p`` past its force-off point but within the extension (its
        force-off moved later by at most the bound), with the bus still to come in it?"""
        w = k.windows[p]
        ext = min(k.plan.tsp_max_extend_s, self._extend_bound(k.plan, p))
        if ext <= 0 or not in_window(k.c, w.force_off, w.force_off + ext, k.cycle):
            return False
        return _due(req, k, w.force_off + ext)

    def _coord_window(self, p: int, windows: Mapping[int, SplitWindow]) -> SplitWindow | None:
        ring = self._ring_of.get(p)
        return next(
            (w for q, w in windows.items() if w.coordinated and self._ring_of.get(q) == ring),
            None,
        )

    def _early_start(self, p: int, k: _Tick) -> float:
        """Where an early green of ``p`` may begin: ``tsp_max_early_s`` before its ring's
        coordinated phase's force-off point (the coordinated strategy's permissive period
        opens there); for a coordinated phase (or a ring without one), the start of the
        window before it in its ring (its early return)."""
        windows = k.windows
        w = windows[p]
        coord = self._coord_window(p, windows)
        if coord is not None and not w.coordinated:
            return coord.force_off - k.plan.tsp_max_early_s
        ring = self._ring_of.get(p)
        mine = [
            x for q, x in windows.items() if q != p and x.split > 0 and self._ring_of.get(q) == ring
        ]
        before = [x for x in mine if x.start < w.start]
        prev = max(before or mine, key=lambda x: x.start, default=None)
        return w.start if prev is None else prev.start

    def _cycle_force_offs(self, phases: frozenset[int], k: _Tick) -> set[int]:
        """Conflicting greens within ``tsp_max_early_s`` of their force-off point."""
        early = k.plan.tsp_max_early_s
        out: set[int] = set()
        for q in k.greens - phases:
            w = k.windows.get(q)
            if w is None or w.split <= 0 or not self._conflicts(q, phases):
                continue
            if in_window(k.c, w.force_off - early, w.force_off, k.cycle):
                out.add(q)
        return out

    def _cycle_unomit(self, phases: frozenset[int], k: _Tick) -> set[int]:
        """The bus phases may start from :meth:`_early_start` on (the coordinated strategy
        omits a phase before its ring's coordinated phase's force-off point)."""
        out: set[int] = set()
        for p in phases:
            w = k.windows[p]
            coord = self._coord_window(p, k.windows)
            if w.coordinated or coord is None:
                continue
            if in_window(k.c, self._early_start(p, k), coord.force_off, k.cycle):
                out.add(p)
        return out

    def _free_force_offs(self, phases: frozenset[int], k: _Tick) -> set[int]:
        """Conflicting greens that have run ``max1 − tsp_max_early_s`` (and their minimum)."""
        out: set[int] = set()
        early = k.plan.tsp_max_early_s
        if k.last is None:
            return out
        for q in k.greens - phases:
            if not self._conflicts(q, phases):
                continue
            t = k.plan.timing.get(q)
            ring = next((r for r in k.last.rings if r.phase == q), None)
            if t is None or ring is None or ring.interval is not Interval.GREEN:
                continue
            if ring.elapsed >= max(t.min_green, t.max1 - early):
                out.add(q)
        return out

    def _conflicts(self, q: int, phases: frozenset[int]) -> bool:
        group_of = self._group_of
        for p in phases:
            if self._ring_of.get(p) == self._ring_of.get(q) or group_of.get(p) != group_of.get(q):
                return True
        return False

    def _check_out(
        self, now: float, presence: frozenset[int], shown: frozenset[int], plan: Plan
    ) -> None:
        for rid, held in list(self.held.items()):
            req = held.request
            base = req.eta if req.eta is not None else held.since
            if now >= base + _timeout(plan, req):
                self.checkout(now, rid, "timeout")
                continue
            d = req.checkout_detector
            if d is None:
                continue
            on = d in presence
            if on and not held.detector_seen and set(req.phases) & shown:
                self.checkout(now, rid, "detector")
                continue
            held.detector_seen = on


@dataclass(slots=True)
class _Tick:
    """One tick's context, and what the planner adds to (or takes from) the requests."""

    now: float
    plan: Plan
    greens: frozenset[int]
    last: Outputs | None
    c: float  # cycle position (cycle modes)
    cycle: float  # cycle length; 0 in the free modes
    windows: Mapping[int, SplitWindow]
    calls: set[int] = field(default_factory=set)
    hold: set[int] = field(default_factory=set)
    force: set[int] = field(default_factory=set)
    unomit: set[int] = field(default_factory=set)


def _within(req: TransitRequest, now: float, horizon: float) -> bool:
    """The bus is expected within ``horizon`` (always, without an ETA)."""
    return req.eta is None or req.eta - now <= horizon


def _due(req: TransitRequest, k: _Tick, point: float) -> bool:
    """The bus is due before cycle point ``point`` and has not passed (always, without an
    ETA: until it checks out)."""
    if req.eta is None:
        return True
    return req.eta + EXTEND_GRACE_S > k.now and req.eta - k.now <= _until(k.c, point, k.cycle)


def _until(c: float, point: float, cycle: float) -> float:
    """Cycle seconds from ``c`` forward to ``point``."""
    return (point - c) % cycle


def _order(held: _Held) -> tuple[float, float, str]:
    req = held.request
    return (req.eta if req.eta is not None else held.since, held.since, req.id)


def _greens(last: Outputs | None) -> tuple[frozenset[int], frozenset[int]]:
    """Phases green, and phases green or yellow (a bus may pass on yellow), at the last tick."""
    if last is None or last.state is not OperatingState.NORMAL:
        return frozenset(), frozenset()
    green = frozenset(
        r.phase for r in last.rings if r.phase is not None and r.interval is Interval.GREEN
    )
    shown = green | frozenset(
        r.phase for r in last.rings if r.phase is not None and r.interval is Interval.YELLOW
    )
    return green, shown
