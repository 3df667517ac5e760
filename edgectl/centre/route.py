"""A green wave along a route, from the centre's side: a pure planner, no clock, no I/O.

An emergency vehicle drives a known :class:`Route` — the signalised junctions it crosses, in
order, each with the phases that serve it and its stop line's distance along the route. The
centre feeds :meth:`GreenWave.update` the vehicle's position along the route and its speed
(from its GPS feed, with the time of the fix); the wave answers what to send to which
junction:

- a :class:`Send` (the ``priority`` command of docs/mqtt.md) to each of the next ``ahead``
  junctions whose ETA is within ``horizon_s``, so that the next two or three junctions clear
  their queues before the vehicle is there;
- the same :class:`Send` again (same request id: it replaces the junction's request) when the
  predicted arrival has moved earlier by more than ``resend_s`` (the junction must start
  sooner), or later by more than ``resend_s`` and ``resend_fraction`` of the ETA (a far
  junction is not updated for every wobble of the speed);
- a :class:`Cancel` (``priority_cancel``: the centre checks the vehicle out) as soon as the
  vehicle has passed a stop line, or when a sent ETA can no longer be expressed (more than
  :data:`MAX_ETA_S` ahead: the vehicle stopped far away; it is sent again once it is back
  within the horizon);
- :meth:`GreenWave.finish` cancels everything still held (the vehicle left the route, the run
  was aborted).

The ETA of a stop is its distance ahead over an effective speed: the vehicle's speed smoothed
with a time constant (``speed_tau_s``), never below ``min_speed_mps`` (so a stopped vehicle
gives a long but finite ETA — beyond the horizon nothing is sent). A vehicle slower than
``min_speed_mps`` is taken as stopped or queued; with ``free_flow_mps`` its ETAs are then
computed at that speed instead (it waits in a queue the junctions are about to flush). It
counts as moving again once its smoothed speed exceeds 1.5 × ``min_speed_mps`` — with
``free_flow_mps``, 0.8 × that speed (while it accelerates the free-flow ETA is the closer
one; ``bench/green_wave.py`` measures both).

Request ids are stable per (route id, junction) — :func:`request_id` — so a re-send replaces
the junction's request and a cancel names it; a junction the route crosses twice gets a
``#2`` suffix for its second visit.

:func:`parse_route` / :func:`load_route` read a route file (TOML) and name every problem::

    id = "amb-17"
    level = 1
    [[stops]]
    junction = "hz-0001"
    phases = [4, 8]        # or phase = 4
    position_m = 350.0     # the stop line's distance along the route
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgectl.errors import ConfigError, Problem

__all__ = [
    "MAX_ETA_S",
    "MAX_REQUEST_ID",
    "Cancel",
    "GreenWave",
    "Route",
    "RouteError",
    "RouteStop",
    "Send",
    "load_route",
    "parse_route",
    "request_id",
    "route_problems",
]

MAX_ETA_S = 600.0
"""The furthest ETA a junction accepts (``eta_s`` ≤ 600 in the ``priority`` command)."""
MAX_REQUEST_ID = 64
"""The longest request id a junction accepts."""
MAX_PHASES = 4
QUEUE_EXIT_FREE_FLOW = 0.8  # with free_flow_mps: queued until back at this share of it
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 5.0, 600.0  # the command's checkout.timeout_s bounds
_BAD_TOPIC_CHARS = ("+", "#", "/", "\0")


# --- the route -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteStop:
    """One signalised junction on the route: the phases serving the vehicle's movement and
    its stop line's distance along the route (metres from the route's start)."""

    junction: str
    phases: tuple[int, ...]
    position_m: float


@dataclass(frozen=True, slots=True)
class Route:
    """A vehicle's route: its stops in driving order and the requests' level (1 = highest)."""

    id: str
    stops: tuple[RouteStop, ...]
    level: int = 1


class RouteError(ConfigError):
    """A route (file or object) is invalid; ``problems`` names every one."""


def _topic_level_problem(value: str) -> str | None:
    if not value:
        return "empty"
    if any(c in value for c in _BAD_TOPIC_CHARS):
        return f"{value!r} is not a valid MQTT topic level (no '+', '#', '/' or NUL)"
    return None


def route_problems(route: Route) -> list[Problem]:
    """Every problem of a :class:`Route` (empty when it is valid)."""
    return _problems(route.id, route.level, list(enumerate(route.stops)), len(route.stops))


def _problems(
    route_id: str,
    level: object,
    stops: Sequence[tuple[int, RouteStop]],
    n_stops: int,
    *,
    stops_missing: bool = False,
) -> list[Problem]:
    """The checks of a route; ``stops`` keeps each stop's index in the file."""
    problems: list[Problem] = []
    if not route_id:
        problems.append(Problem("id", "empty"))
    elif not route_id.isprintable():
        problems.append(Problem("id", f"{route_id!r} holds control characters"))
    if isinstance(level, bool) or not isinstance(level, int):
        problems.append(Problem("level", f"{level!r} is not an integer 1-9"))
    elif not 1 <= level <= 9:
        problems.append(Problem("level", f"{level} is not in 1-9 (1 = highest)"))
    if n_stops == 0 and not stops_missing:
        problems.append(Problem("stops", "a route needs at least one stop"))
    previous: float | None = None
    for i, stop in stops:
        where = f"stops[{i}]"
        if bad := _topic_level_problem(stop.junction):
            problems.append(Problem(f"{where}.junction", bad))
        phases = stop.phases
        if not phases or len(phases) > MAX_PHASES:
            problems.append(Problem(f"{where}.phases", f"1-{MAX_PHASES} phases, not {len(phases)}"))
        for p in phases:
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 16:
                problems.append(Problem(f"{where}.phases", f"{p!r} is not a phase number 1-16"))
        if len(set(phases)) != len(phases):
            problems.append(Problem(f"{where}.phases", f"{list(phases)} names a phase twice"))
        pos = stop.position_m
        if (
            isinstance(pos, bool)
            or not isinstance(pos, int | float)
            or not math.isfinite(pos)
            or pos < 0
        ):
            problems.append(Problem(f"{where}.position_m", f"{pos!r} is not a distance >= 0"))
            continue
        if previous is not None and pos <= previous:
            problems.append(
                Problem(
                    f"{where}.position_m",
                    f"{pos:g} m is not after the previous stop ({previous:g} m): "
                    "stops go in driving order",
                )
            )
        previous = pos
    return problems


def _phases_of(raw: Mapping[str, object], where: str, problems: list[Problem]) -> tuple[int, ...]:
    has_phase, has_phases = "phase" in raw, "phases" in raw
    if has_phase == has_phases:
        problems.append(Problem(where, "give exactly one of phase and phases"))
        return ()
    value = raw["phase"] if has_phase else raw["phases"]
    items = [value] if has_phase else value
    if not isinstance(items, list):
        problems.append(Problem(f"{where}.phases", f"{value!r} is not a list of phase numbers"))
        return ()
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            problems.append(Problem(f"{where}.phases", f"{item!r} is not a phase number"))
        else:
            out.append(item)
    return tuple(out)


def parse_route(text: str, *, source: str = "route") -> Route:
    """A :class:`Route` from the TOML text of a route file; :class:`RouteError` names every
    problem (syntax, unknown keys, missing or wrong values, stops out of order)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RouteError([Problem("", f"not TOML: {exc}")], source) from None
    problems: list[Problem] = []
    for key in sorted(set(data) - {"id", "level", "stops"}):
        problems.append(Problem(key, "unknown key (keys: id, level, stops)"))
    route_id = data.get("id")
    if not isinstance(route_id, str):
        problems.append(Problem("id", "missing" if route_id is None else "not a string"))
        route_id = "?"
    level = data.get("level", 1)
    raw_stops = data.get("stops")
    if not isinstance(raw_stops, list):
        problems.append(
            Problem("stops", "missing ([[stops]] tables)" if raw_stops is None else "not a list")
        )
        raw_stops = []
    stops: list[tuple[int, RouteStop]] = []
    for i, raw in enumerate(raw_stops):
        where = f"stops[{i}]"
        if not isinstance(raw, dict):
            problems.append(Problem(where, "not a table"))
            continue
        for key in sorted(set(raw) - {"junction", "phase", "phases", "position_m"}):
            problems.append(
                Problem(f"{where}.{key}", "unknown key (keys: junction, phase(s), position_m)")
            )
        junction = raw.get("junction")
        if not isinstance(junction, str):
            problems.append(
                Problem(f"{where}.junction", "missing" if junction is None else "not a string")
            )
        phases = _phases_of(raw, where, problems)
        position = raw.get("position_m")
        if position is None:
            problems.append(Problem(f"{where}.position_m", "missing"))
        elif isinstance(position, bool) or not isinstance(position, int | float):
            problems.append(Problem(f"{where}.position_m", f"{position!r} is not a number"))
            position = None
        if isinstance(junction, str) and phases and position is not None:
            stops.append((i, RouteStop(junction, phases, float(position))))
    missing = any(p.path == "stops" for p in problems)
    problems += _problems(route_id, level, stops, len(raw_stops), stops_missing=missing)
    if problems:
        raise RouteError(problems, source)
    assert isinstance(level, int)
    return Route(route_id, tuple(stop for _, stop in stops), level)


def load_route(path: Path) -> Route:
    """:func:`parse_route` of a file; :class:`RouteError` when it cannot be read too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RouteError([Problem("", f"cannot read: {exc}")], str(path)) from None
    return parse_route(text, source=str(path))


def request_id(route_id: str, junction: str, visit: int = 1) -> str:
    """The request id of a route's (``visit``-th) crossing of ``junction``: stable, at most
    :data:`MAX_REQUEST_ID` characters (a long one ends with a digest of the whole)."""
    rid = f"{route_id}@{junction}" + (f"#{visit}" if visit > 1 else "")
    if len(rid) <= MAX_REQUEST_ID:
        return rid
    digest = hashlib.sha256(rid.encode("utf-8")).hexdigest()[:12]
    return f"{rid[: MAX_REQUEST_ID - 13]}~{digest}"


# --- what the wave sends ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """A ``priority`` command for ``junction``: ``eta_s`` seconds from the update's ``t``."""

    junction: str
    request: str
    phases: tuple[int, ...]
    eta_s: float
    level: int
    timeout_s: float

    def params(self) -> dict[str, object]:
        """The command's ``params`` (docs/mqtt.md, ``priority``), ETA relative to the send."""
        movement: dict[str, object] = (
            {"phase": self.phases[0]} if len(self.phases) == 1 else {"phases": list(self.phases)}
        )
        return {
            "request": self.request,
            **movement,
            "eta_s": round(self.eta_s, 1),
            "level": self.level,
            "checkout": {"timeout_s": self.timeout_s},
        }


@dataclass(frozen=True, slots=True)
class Cancel:
    """A ``priority_cancel`` for ``junction``: the vehicle checked out (passed, or finished)."""

    junction: str
    request: str

    def params(self) -> dict[str, object]:
        return {"request": self.request}


@dataclass(slots=True)
class _Held:
    """A request a junction holds: what was sent, and the arrival it predicted."""

    send: Send
    arrival: float  # t + eta_s of the last send


@dataclass(slots=True)
class _Vehicle:
    t: float | None = None
    position_m: float = 0.0
    speed_mps: float = 0.0  # smoothed
    queued: bool = False


class GreenWave:
    """The requests of one vehicle along one route (see the module docstring).

    ``ahead``: how many junctions ahead hold a request at once; ``horizon_s``: a request is
    first sent when its ETA is at most this; ``resend_s``: the predicted arrival must move by
    more than this for an update (and, when it moved later, by more than ``resend_fraction``
    of the ETA too); ``timeout_s``: the junctions' check-out timeout after the
    ETA should the centre fall silent; ``checkout_m``: how far past the stop line the vehicle
    counts as passed (0: the stop line itself); ``speed_tau_s``: the speed's smoothing time
    constant; ``min_speed_mps`` / ``free_flow_mps``: see the module docstring.
    """

    def __init__(
        self,
        route: Route,
        *,
        ahead: int = 3,
        horizon_s: float = 120.0,
        resend_s: float = 2.0,
        resend_fraction: float = 0.1,
        timeout_s: float = 30.0,
        checkout_m: float = 0.0,
        speed_tau_s: float = 3.0,
        min_speed_mps: float = 2.0,
        free_flow_mps: float | None = None,
    ) -> None:
        problems = route_problems(route)
        if ahead < 1:
            problems.append(Problem("ahead", f"{ahead} is not >= 1"))
        checks: list[tuple[str, float, float, float]] = [
            ("horizon_s", horizon_s, 0.0, MAX_ETA_S),
            ("resend_s", resend_s, 0.0, 3600.0),
            ("resend_fraction", resend_fraction, 0.0, 1.0),
            ("timeout_s", timeout_s, MIN_TIMEOUT_S, MAX_TIMEOUT_S),
            ("checkout_m", checkout_m, 0.0, 1000.0),
            ("speed_tau_s", speed_tau_s, 0.0, 600.0),
            ("min_speed_mps", min_speed_mps, 0.1, 100.0),
        ]
        if free_flow_mps is not None:
            checks.append(("free_flow_mps", free_flow_mps, min_speed_mps, 100.0))
        for name, value, low, high in checks:
            if not (math.isfinite(value) and low <= value <= high):
                problems.append(Problem(name, f"{value!r} is not in [{low:g}, {high:g}]"))
        if problems:
            raise RouteError(problems, f"route {route.id!r}")
        self.route = route
        self.ahead = ahead
        self.horizon_s = horizon_s
        self.resend_s = resend_s
        self.resend_fraction = resend_fraction
        self.timeout_s = timeout_s
        self.checkout_m = checkout_m
        self.speed_tau_s = speed_tau_s
        self.min_speed_mps = min_speed_mps
        self.free_flow_mps = free_flow_mps
        # a queued vehicle is moving again above this: 1.5 × the floor, or (with a free-flow
        # speed) once back near it — while it accelerates the free-flow ETA is the better one
        self._queue_exit_mps = (
            1.5 * min_speed_mps
            if free_flow_mps is None
            else max(1.5 * min_speed_mps, QUEUE_EXIT_FREE_FLOW * free_flow_mps)
        )
        visits: dict[str, int] = {}
        ids: list[str] = []
        for stop in route.stops:
            visits[stop.junction] = visits.get(stop.junction, 0) + 1
            ids.append(request_id(route.id, stop.junction, visits[stop.junction]))
        self.request_ids: tuple[str, ...] = tuple(ids)
        self._next = 0  # index of the first stop not passed
        self._held: dict[int, _Held] = {}
        self._vehicle = _Vehicle()
        self._finished = False
        #: every send and cancel so far, with the ``t`` of the update that made it
        self.log: list[tuple[float, Send | Cancel]] = []

    # --- what the wave knows -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def passed(self) -> int:
        """How many stops the vehicle has passed."""
        return self._next

    @property
    def held(self) -> dict[str, Send]:
        """The requests the junctions hold now (request id → the last send)."""
        return {h.send.request: h.send for h in self._held.values()}

    def held_arrival(self, request: str) -> float:
        """The arrival (in ``t``'s seconds) the junction holding ``request`` was last sent."""
        for held in self._held.values():
            if held.send.request == request:
                return held.arrival
        raise KeyError(request)

    def speed(self) -> float:
        """The effective speed the ETAs use (m/s)."""
        v = self._vehicle
        if v.queued:
            return self.free_flow_mps if self.free_flow_mps is not None else self.min_speed_mps
        return max(v.speed_mps, self.min_speed_mps)

    def etas(self) -> dict[str, float]:
        """Each stop not passed: its ETA (s) from the last update (request id → s)."""
        v = self._vehicle
        speed = self.speed()
        return {
            self.request_ids[i]: max(0.0, stop.position_m - v.position_m) / speed
            for i, stop in enumerate(self.route.stops)
            if i >= self._next
        }

    # --- the updates ---------------------------------------------------------------------

    def update(self, t: float, position_m: float, speed_mps: float) -> list[Send | Cancel]:
        """One fix of the vehicle: ``t`` seconds (any origin, non-decreasing), its distance
        along the route and its speed. Returns what to send now, cancels first. A fix older
        than the last one is ignored (``[]``), as is any fix after :meth:`finish`."""
        for name, value in (("t", t), ("position_m", position_m), ("speed_mps", speed_mps)):
            if not math.isfinite(value):
                raise ValueError(f"{name} {value!r} is not a finite number")
        v = self._vehicle
        if self._finished or (v.t is not None and t < v.t):
            return []
        self._smooth(t, max(0.0, speed_mps))
        v.t, v.position_m = t, position_m
        out: list[Send | Cancel] = []
        stops = self.route.stops
        while self._next < len(stops) and position_m >= stops[self._next].position_m + (
            self.checkout_m
        ):
            held = self._held.pop(self._next, None)
            if held is not None:
                out.append(Cancel(held.send.junction, held.send.request))
            self._next += 1
        speed = self.speed()
        for i in range(self._next, min(self._next + self.ahead, len(stops))):
            stop = stops[i]
            eta = max(0.0, stop.position_m - position_m) / speed
            held = self._held.get(i)
            if held is None:
                if eta <= self.horizon_s:
                    out.append(self._send(i, t, eta))
            elif eta > MAX_ETA_S:  # stopped far away: cannot be said; sent again when near
                del self._held[i]
                out.append(Cancel(stop.junction, held.send.request))
            elif self._moved(t + eta - held.arrival, eta):
                out.append(self._send(i, t, eta))
        self.log.extend((t, item) for item in out)
        return out

    def finish(self) -> list[Cancel]:
        """The vehicle left the route or the run ended: cancel every request still held.
        Later updates are ignored."""
        out = [Cancel(h.send.junction, h.send.request) for _, h in sorted(self._held.items())]
        self._held.clear()
        self._finished = True
        t = self._vehicle.t if self._vehicle.t is not None else 0.0
        self.log.extend((t, item) for item in out)
        return out

    def _moved(self, shift: float, eta: float) -> bool:
        """An update is due: the arrival came earlier by more than ``resend_s``, or went
        later by more than ``resend_s`` and ``resend_fraction`` × the ETA."""
        if shift < 0:
            return -shift > self.resend_s
        return shift > max(self.resend_s, self.resend_fraction * eta)

    def _send(self, index: int, t: float, eta: float) -> Send:
        stop = self.route.stops[index]
        send = Send(
            stop.junction,
            self.request_ids[index],
            stop.phases,
            eta,
            self.route.level,
            self.timeout_s,
        )
        self._held[index] = _Held(send, t + eta)
        return send

    def _smooth(self, t: float, speed: float) -> None:
        v = self._vehicle
        if v.t is None or self.speed_tau_s == 0.0:
            v.speed_mps = speed
        else:
            alpha = 1.0 - math.exp(-(t - v.t) / self.speed_tau_s)
            v.speed_mps += alpha * (speed - v.speed_mps)
        if v.speed_mps < self.min_speed_mps:
            v.queued = True
        elif v.speed_mps > self._queue_exit_mps:
            v.queued = False
