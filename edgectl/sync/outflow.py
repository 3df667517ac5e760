"""Neighbour coordination over MQTT: stop-bar departures out, projected arrivals in.

A vehicle that leaves an upstream junction's stop bar reaches the next junction's stop bar
about one link travel time later. The upstream daemon publishes its departures; the
downstream daemon turns them into projected arrivals on one of its phases for a strategy that
plans with them (``adaptive``: :meth:`edgectl.control.controller.Controller.expect`).

``{prefix}/{id}/outflow`` — QoS 0, not retained, never through the outbox: this is perishable
real-time data, and a departure delivered late or twice is worth nothing, so it is neither
stored nor replayed::

    {"ts": "2026-11-21T06:00:01.020Z", "seq": 17,
     "departures": [{"detector": 2, "at": "2026-11-21T06:00:00.412Z"}, …]}

Each departure is a falling edge (the vehicle leaving) of a stop-bar detector that was not
failed, stamped in UTC wall time: the controller clocks of two junctions are not shared,
their NTP-synchronised wall clocks are.

- Upstream: :class:`OutflowBuffer` collects departures from the control loop; the sync
  service publishes what is new every ``[outflow] period_s`` and nothing when there is none.
  A departure older than :data:`MAX_DEPARTURE_AGE_S` is not sent; at most
  :data:`MAX_DEPARTURES` (the newest) wait while the broker is away.
- Signatures (``[mqtt] outflow_key_file``, a key shared by the neighbours of one arterial):
  a junction with the setting signs its messages (``kid``, ``sig`` over everything else, as
  commands are signed: :func:`edgectl.sync.signing.sign_with`) and refuses neighbour messages
  that are unsigned (``unsigned``) or badly signed (``bad_signature``); without it, messages
  go out unsigned and a ``sig`` that comes in is not looked at.
- Downstream: :func:`parse_outflow` checks a message, cheapest first, and either accepts all
  of it or none: size (:data:`MAX_OUTFLOW_BYTES`) → JSON → signature (with keys) → schema
  (``ts``, ``seq``, ``departures``: ``detector`` 1..64 and ``at`` ISO 8601 with a zone;
  unknown keys ignored) → count (:data:`MAX_DEPARTURES`) → ``ts`` not older than
  :data:`MAX_MESSAGE_AGE_S` nor more than :data:`FUTURE_SKEW_S` ahead of our clock → every
  ``at`` within [``ts`` − :data:`MAX_DEPARTURE_AGE_S`, ``ts`` + :data:`FUTURE_SKEW_S`]. A
  refusal has a code (:class:`OutflowCode`), is logged and counted, and changes nothing.
  :class:`NeighbourInbox` keeps the accepted departures of the configured detectors
  (duplicates ignored; the others are for another neighbour and are not an error) and
  :meth:`NeighbourInbox.projections` turns them into controller time::

      arrival = controller_now + (at + travel_s − wall_now)

  keeping only arrivals in (now, now + travel_s + :data:`HORIZON_MARGIN_S`]. A silent
  neighbour's departures age out, and the junction runs on its own loops.
"""

from __future__ import annotations

import enum
import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

import structlog
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from edgectl.config.model import Neighbour
from edgectl.sync.clock import iso_ms
from edgectl.sync.signing import Key, verifying_key

__all__ = [
    "FUTURE_SKEW_S",
    "HORIZON_MARGIN_S",
    "MAX_DEPARTURES",
    "MAX_DEPARTURE_AGE_S",
    "MAX_MESSAGE_AGE_S",
    "MAX_OUTFLOW_BYTES",
    "Departure",
    "NeighbourInbox",
    "OutflowBuffer",
    "OutflowCode",
    "OutflowVerdict",
    "outflow_body",
    "parse_outflow",
]

log = structlog.get_logger("edgectl.sync.outflow")

MAX_OUTFLOW_BYTES = 64 * 1024
"""Larger outflow payloads are refused (``too_large``) before they are parsed."""

MAX_DEPARTURES = 256
"""Departures in one message (and waiting at the publisher); more is refused (``too_many``)."""

MAX_MESSAGE_AGE_S = 10.0
"""A message whose ``ts`` is older than this is refused (``stale``): it sat somewhere."""

FUTURE_SKEW_S = 5.0
"""Clock skew tolerated between two junctions (``ts`` or ``at`` ahead → ``future``/``bad_time``)."""

MAX_DEPARTURE_AGE_S = 60.0
"""A departure older than this (at publishing) is not published, and refused when received."""

HORIZON_MARGIN_S = 5.0
"""Projected arrivals are kept up to ``travel_s`` + this ahead (clock skew between junctions)."""

MAX_STORED = 4096
"""Departures kept per upstream junction (the oldest go first; they age out long before)."""


class OutflowCode(enum.StrEnum):
    """Why an outflow message was refused (the ``result`` of its counter)."""

    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_SCHEMA = "invalid_schema"
    TOO_MANY = "too_many"
    STALE = "stale"
    FUTURE = "future"
    BAD_TIME = "bad_time"  # a departure far from the message's own ts
    UNSIGNED = "unsigned"  # we have an outflow key; the message has no sig
    BAD_SIGNATURE = "bad_signature"  # signed with no key of ours


@dataclass(frozen=True, slots=True, order=True)
class Departure:
    """A vehicle leaving stop-bar detector ``detector`` at ``at`` (UTC wall time)."""

    at: datetime
    detector: int


@dataclass(frozen=True, slots=True)
class OutflowVerdict:
    """What :func:`parse_outflow` made of a message: departures, or a refusal code."""

    departures: tuple[Departure, ...] = ()
    code: OutflowCode | None = None
    message: str = ""
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


# --- the message schema ---


def _iso_text(value: object) -> object:
    """Timestamps are ISO 8601 text; a bare number would be read as Unix time."""
    if not isinstance(value, str):
        raise ValueError("a timestamp is an ISO 8601 string")  # noqa: TRY004 - pydantic wants ValueError
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class _DepartureModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    detector: Annotated[int, Field(ge=1, le=64, strict=True)]
    at: Timestamp


class _OutflowModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    ts: Timestamp
    seq: Annotated[int, Field(ge=0, strict=True)]
    departures: list[_DepartureModel]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _refused(code: OutflowCode, message: str, seq: int | None = None) -> OutflowVerdict:
    return OutflowVerdict(code=code, message=message[:200], seq=seq)


def parse_outflow(raw: bytes, *, now: datetime, keys: Sequence[Key] = ()) -> OutflowVerdict:
    """Check an outflow message against our wall clock ``now`` (and, given ``keys``, its
    signature, before anything costlier than JSON). Never raises."""
    if len(raw) > MAX_OUTFLOW_BYTES:
        return _refused(OutflowCode.TOO_LARGE, f"{len(raw)} bytes > {MAX_OUTFLOW_BYTES}")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _refused(OutflowCode.MALFORMED_JSON, f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return _refused(OutflowCode.INVALID_SCHEMA, "an outflow message is a JSON object")
    if keys:
        if obj.get("sig") is None:
            return _refused(OutflowCode.UNSIGNED, "outflow must be signed (outflow_key_file)")
        if verifying_key(obj, keys) is None:
            return _refused(OutflowCode.BAD_SIGNATURE, "signature does not match")
    listed = obj.get("departures")
    if isinstance(listed, list) and len(listed) > MAX_DEPARTURES:
        return _refused(OutflowCode.TOO_MANY, f"{len(listed)} departures > {MAX_DEPARTURES}")
    try:
        msg = _OutflowModel.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
        return _refused(OutflowCode.INVALID_SCHEMA, f"{where}: {first.get('msg', '')}")
    except (ValueError, OverflowError, RecursionError) as exc:
        return _refused(OutflowCode.INVALID_SCHEMA, str(exc))
    age = (now - msg.ts).total_seconds()
    if age > MAX_MESSAGE_AGE_S:
        return _refused(OutflowCode.STALE, f"published {age:.1f} s ago", msg.seq)
    if -age > FUTURE_SKEW_S:
        return _refused(OutflowCode.FUTURE, f"published {-age:.1f} s in the future", msg.seq)
    earliest = msg.ts - timedelta(seconds=MAX_DEPARTURE_AGE_S)
    latest = msg.ts + timedelta(seconds=FUTURE_SKEW_S)
    for d in msg.departures:
        if not earliest <= d.at <= latest:
            return _refused(
                OutflowCode.BAD_TIME,
                f"departure at {iso_ms(d.at)} is far from the message's ts {iso_ms(msg.ts)}",
                msg.seq,
            )
    departures = tuple(Departure(d.at, d.detector) for d in msg.departures)
    return OutflowVerdict(departures=departures, seq=msg.seq)


def outflow_body(departures: Iterable[Departure]) -> dict[str, object]:
    """The message body without ``ts``/``seq`` (the service adds those)."""
    return {"departures": [{"detector": d.detector, "at": iso_ms(d.at)} for d in departures]}


# --- upstream: what the control loop saw leave ---


@dataclass
class OutflowBuffer:
    """Departures waiting for the next outflow message (the newest :data:`MAX_DEPARTURES`)."""

    _pending: deque[Departure] = field(default_factory=lambda: deque(maxlen=MAX_DEPARTURES))
    dropped: int = 0  # overwritten while waiting, or too old when their turn came

    def add(self, departures: Iterable[tuple[datetime, int]]) -> None:
        for at, detector in departures:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(Departure(at, detector))

    def take(self, now: datetime) -> list[Departure]:
        """Everything still worth sending (not older than :data:`MAX_DEPARTURE_AGE_S`)."""
        oldest = now - timedelta(seconds=MAX_DEPARTURE_AGE_S)
        taken = [d for d in self._pending if d.at >= oldest]
        self.dropped += len(self._pending) - len(taken)
        self._pending.clear()
        return taken

    def __len__(self) -> int:
        return len(self._pending)


# --- downstream: the neighbours' departures, as projected arrivals ---


class NeighbourInbox:
    """The departures of the configured upstream junctions, and their projected arrivals.

    Filled by the sync service's message loop (:meth:`receive`); read by the control loop
    (:meth:`projections`), between ticks, on the same event loop.
    """

    def __init__(self, neighbours: Sequence[Neighbour]) -> None:
        self.neighbours = tuple(neighbours)
        self.phases = tuple(sorted({n.phase for n in self.neighbours}))
        self.intersections = tuple(sorted({n.intersection for n in self.neighbours}))
        self._wanted: dict[str, frozenset[int]] = {
            i: frozenset(d for n in self.neighbours if n.intersection == i for d in n.detectors)
            for i in self.intersections
        }
        self._keep_s = max((n.travel_s for n in self.neighbours), default=0.0) + HORIZON_MARGIN_S
        self._stored: dict[str, dict[Departure, None]] = {i: {} for i in self.intersections}
        self.version = 0  # bumped by every message that brought a new departure
        self.results: Counter[tuple[str, str]] = Counter()  # (intersection, accepted | code)
        self.last_seen: dict[str, datetime] = {}
        self.keys: tuple[Key, ...] = ()  # [mqtt] outflow_key_file: signatures required

    def receive(self, intersection: str, raw: bytes, *, now: datetime) -> OutflowVerdict:
        """Check and keep one message of ``intersection``. Never raises."""
        stored = self._stored.get(intersection)
        if stored is None:
            return _refused(OutflowCode.INVALID_SCHEMA, f"{intersection!r} is not a neighbour")
        verdict = parse_outflow(raw, now=now, keys=self.keys)
        if verdict.code is not None:
            self.results[(intersection, verdict.code.value)] += 1
            log.warning(
                "outflow_rejected",
                neighbour=intersection,
                code=verdict.code.value,
                seq=verdict.seq,
                error=verdict.message,
            )
            return verdict
        self.results[(intersection, "accepted")] += 1
        self.last_seen[intersection] = now
        wanted = self._wanted[intersection]
        new = [d for d in verdict.departures if d.detector in wanted and d not in stored]
        if new:
            for d in new:
                stored[d] = None
            while len(stored) > MAX_STORED:
                del stored[next(iter(stored))]
            self.version += 1
        return verdict

    def projections(
        self, *, wall_now: datetime, controller_now: float
    ) -> dict[int, tuple[float, ...]]:
        """Projected stop-bar arrivals per configured phase, in controller time (an empty
        tuple when nothing is coming: the strategy forgets what it was told before)."""
        self._forget(wall_now)
        arrivals: dict[int, list[float]] = {p: [] for p in self.phases}
        for n in self.neighbours:
            stored = self._stored[n.intersection]
            horizon = n.travel_s + HORIZON_MARGIN_S
            for d in stored:
                if d.detector not in n.detectors:
                    continue
                ahead = (d.at - wall_now).total_seconds() + n.travel_s
                if 0.0 < ahead <= horizon:
                    arrivals[n.phase].append(round(controller_now + ahead, 3))
        return {p: tuple(sorted(times)) for p, times in arrivals.items()}

    def _forget(self, wall_now: datetime) -> None:
        oldest = wall_now - timedelta(seconds=self._keep_s)
        for stored in self._stored.values():
            for d in [d for d in stored if d.at < oldest]:
                del stored[d]

    def pending(self) -> Mapping[str, int]:
        """Departures kept per upstream junction (for tests and diagnostics)."""
        return {i: len(s) for i, s in self._stored.items()}
