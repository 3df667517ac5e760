"""Remote commands (SPEC §7): the models and error codes. The canonical form and the
signatures are :mod:`edgectl.sync.signing`; the pipeline is :mod:`edgectl.sync.processor`.

A command on ``…/cmd``::

    {"id": "c-17", "type": "hold", "issued_at": "2026-11-21T05:00:00.000Z",
     "expires_at": "2026-11-21T05:01:00.000Z", "params": {"phases": [2, 6]}, "sig": "9f…"}

Every type is one pydantic model in the :data:`Command` discriminated union on ``type``. ``sig``
is the hex HMAC-SHA256, with the configured key, of :func:`~edgectl.sync.signing.canonical_json`
— RFC 8785 (JCS), so a centre in any language can sign — of the command object *without*
``sig``, computed over the object as received. ``target`` names the junction the command is for
and is signed with it, so a command captured at one junction does not replay at another.

:class:`~edgectl.sync.processor.CommandProcessor` runs the pipeline, cheapest check first, and
stops at the first failure: size limit (``[mqtt] max_command_bytes``) → JSON, with arrays and
objects of at most :data:`MAX_CONTAINER_ITEMS` items, :data:`MAX_DEPTH` deep, no duplicate keys,
valid Unicode → signature (when a key is configured: unsigned or bad → refused; nothing else of
an unsigned payload is looked at) → ``target`` (another junction → ``wrong_target``; none, when
signed) → schema → expiry (``expires_at`` passed, ``issued_at`` older than ``command_max_age_s``
or more than :data:`FUTURE_SKEW_S` ahead) → duplicate ``id`` (the original answer again, never a
second execution; remembered until the command could no longer be accepted, in SQLite across
restarts) → the handler. The handler (the daemon) applies the command through the safety kernel
and may refuse it by raising :class:`edgectl.errors.CommandError` (``unsafe``, ``not_allowed``
…). Nothing is changed by a command that is refused anywhere in the pipeline, and no input makes
it raise.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from edgectl.config.model import DetectorId, Mode, PhaseId, Plan

MAX_COMMAND_BYTES = 16 * 1024
"""Larger command payloads are refused with ``too_large`` before they are parsed (the
default of ``[mqtt] max_command_bytes``)."""

MAX_CONTAINER_ITEMS = 256
"""A JSON array or object with more items than this is refused (``too_large``) before the
schema is looked at: no command needs more (a whole plan has at most 16 phases)."""

MAX_DEPTH = 16
"""Nesting deeper than this is refused (``too_large``)."""

COMMAND_MEMORY_MAX = 100_000
"""Ids remembered at most; beyond it (a flood within ``command_max_age_s``) new commands are
refused (``not_allowed``) rather than forgetting ids a replay could reuse."""

FUTURE_SKEW_S = 30.0
"""A command issued further in the future than this (clock skew) is refused with ``future``."""


class ErrorCode(enum.StrEnum):
    """The ``error.code`` of a refused command (``…/cmd/response``)."""

    MALFORMED_JSON = "malformed_json"
    TOO_LARGE = "too_large"
    INVALID_SCHEMA = "invalid_schema"
    UNKNOWN_TYPE = "unknown_type"
    BAD_SIGNATURE = "bad_signature"
    UNSIGNED = "unsigned"
    EXPIRED = "expired"
    STALE = "stale"
    FUTURE = "future"
    UNSAFE = "unsafe"  # the safety kernel refused (e.g. an invalid plan)
    NOT_ALLOWED = "not_allowed"  # not possible in the current state / by policy
    INTERNAL = "internal"
    # appended (the COMMAND_REJECTED event's param is the position here)
    WRONG_TARGET = "wrong_target"  # signed for another junction, or for none
    BAD_RESPONSE_TOPIC = "bad_response_topic"  # MQTT 5 response topic refused
    # appended: transit signal priority refusals (tsp_checkin)
    UNKNOWN_PHASE = "unknown_phase"  # a phase the junction does not have
    TSP_DISABLED = "tsp_disabled"  # TSP off in the plan in force, or not on these phases
    ETA_OUT_OF_RANGE = "eta_out_of_range"  # more than 5 s past or 600 s ahead


# The param of the COMMAND_REJECTED (201) event: which check refused it.
REJECT_EVENT_PARAM: dict[str, int] = {code.value: i + 1 for i, code in enumerate(ErrorCode)}


# --- models ---


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class EmptyParams(_Strict):
    pass


class SetModeParams(_Strict):
    mode: Mode


class SetPlanParams(BaseModel):
    """Either a full plan (validated by the safety kernel like one loaded from a file) or the
    id of a plan the junction already has."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    plan: Plan | Annotated[int, Field(ge=1, le=255, strict=True)]


Phases = tuple[PhaseId, ...]


class PlaceCallParams(_Strict):
    phases: Phases = Field(min_length=1, max_length=16)
    ped: bool = Field(default=False, description="Pedestrian call instead of a vehicle call")


class HoldParams(_Strict):
    phases: Phases = Field(max_length=16, description="Phases to hold; empty releases all holds")
    duration_s: float | None = Field(
        default=None, gt=0.0, le=3600.0, description="Release after this; None = until released"
    )


class ForceOffParams(_Strict):
    phases: Phases = Field(min_length=1, max_length=16)


class OmitParams(_Strict):
    phases: Phases = Field(max_length=16, description="Phases to omit; empty clears the omits")
    duration_s: float | None = Field(default=None, gt=0.0, le=86400.0)


class PreemptParams(_Strict):
    input: int = Field(ge=1, le=6, description="Preempt input number")
    active: bool = True
    phases: Phases = Field(default=(), max_length=16, description="Dwell phases")


MAX_PRIORITY_ETA_S = 600.0
"""A priority request's ETA at most this far ahead (further is refused: no plan is that sure)."""


class PriorityCheckout(_Strict):
    """How the vehicle checks out besides ``priority_cancel``: the first actuation of
    ``detector`` once its movement is green, or ``timeout_s`` after the ETA (default
    ``[control] priority_timeout_s``); whichever comes first."""

    detector: DetectorId | None = None
    timeout_s: float | None = Field(default=None, ge=5.0, le=600.0)


class PriorityParams(BaseModel):
    """An emergency vehicle's request (docs/priority.md). Exactly one of ``phase`` and
    ``phases``, and exactly one of ``eta`` (an ISO 8601 time) and ``eta_s`` (from now)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    request: str = Field(
        min_length=1, max_length=64, description="The request's id: re-sent to update, cancelled"
    )
    phase: Annotated[int, Field(ge=1, le=16, strict=True)] | None = None
    phases: tuple[Annotated[int, Field(ge=1, le=16, strict=True)], ...] | None = Field(
        default=None, min_length=1, max_length=4, description="The vehicle's movement"
    )
    eta: AwareDatetime | None = None
    eta_s: float | None = Field(default=None, ge=0.0, le=MAX_PRIORITY_ETA_S, strict=True)
    level: int = Field(default=1, ge=1, le=9, strict=True, description="1 = highest")
    checkout: PriorityCheckout = PriorityCheckout()

    @model_validator(mode="after")
    def _one_of_each(self) -> PriorityParams:
        if (self.phase is None) == (self.phases is None):
            raise ValueError("exactly one of phase and phases")
        if (self.eta is None) == (self.eta_s is None):
            raise ValueError("exactly one of eta and eta_s")
        return self

    @property
    def movement(self) -> tuple[int, ...]:
        return (self.phase,) if self.phase is not None else tuple(self.phases or ())


class PriorityCancelParams(_Strict):
    request: str = Field(min_length=1, max_length=64)


class TspCheckinParams(BaseModel):
    """A bus checks in (docs/priority.md#transit-signal-priority). Exactly one of ``phase``
    and ``phases``; at most one of ``eta`` (an ISO 8601 time) and ``eta_s`` (from now): none
    when the bus's arrival is not known. The ETA's range is the handler's check
    (``eta_out_of_range``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    request: str = Field(
        min_length=1, max_length=64, description="The bus's id: re-sent to update, checked out"
    )
    phase: Annotated[int, Field(ge=1, le=16, strict=True)] | None = None
    phases: tuple[Annotated[int, Field(ge=1, le=16, strict=True)], ...] | None = Field(
        default=None, min_length=1, max_length=4, description="The bus's movement"
    )
    eta: AwareDatetime | None = None
    eta_s: float | None = Field(default=None, strict=True, allow_inf_nan=False)
    checkout: PriorityCheckout = PriorityCheckout()

    @model_validator(mode="after")
    def _one_movement(self) -> TspCheckinParams:
        if (self.phase is None) == (self.phases is None):
            raise ValueError("exactly one of phase and phases")
        if self.eta is not None and self.eta_s is not None:
            raise ValueError("at most one of eta and eta_s")
        return self

    @property
    def movement(self) -> tuple[int, ...]:
        return (self.phase,) if self.phase is not None else tuple(self.phases or ())


class TspCheckoutParams(_Strict):
    request: str = Field(min_length=1, max_length=64)


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=128)
    target: str | None = Field(default=None, max_length=128, description="The junction's id")
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    sig: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    kid: str | None = Field(
        default=None, max_length=64, description="The id of the key that signed it"
    )


class SetModeCommand(_Command):
    type: Literal["set_mode"]
    params: SetModeParams


class SetPlanCommand(_Command):
    type: Literal["set_plan"]
    params: SetPlanParams


class PlaceCallCommand(_Command):
    type: Literal["place_call"]
    params: PlaceCallParams


class HoldCommand(_Command):
    type: Literal["hold"]
    params: HoldParams


class ForceOffCommand(_Command):
    type: Literal["force_off"]
    params: ForceOffParams


class OmitCommand(_Command):
    type: Literal["omit"]
    params: OmitParams


class PreemptCommand(_Command):
    type: Literal["preempt"]
    params: PreemptParams


class PriorityCommand(_Command):
    type: Literal["priority"]
    params: PriorityParams


class PriorityCancelCommand(_Command):
    type: Literal["priority_cancel"]
    params: PriorityCancelParams


class TspCheckinCommand(_Command):
    type: Literal["tsp_checkin"]
    params: TspCheckinParams


class TspCheckoutCommand(_Command):
    type: Literal["tsp_checkout"]
    params: TspCheckoutParams


class RequestStateCommand(_Command):
    type: Literal["request_state"]
    params: EmptyParams = EmptyParams()


class ExitFlashCommand(_Command):
    type: Literal["exit_flash"]
    params: EmptyParams = EmptyParams()


class MmuResetCommand(_Command):
    type: Literal["mmu_reset"]
    params: EmptyParams = EmptyParams()


Command = Annotated[
    SetModeCommand
    | SetPlanCommand
    | PlaceCallCommand
    | HoldCommand
    | ForceOffCommand
    | OmitCommand
    | PreemptCommand
    | RequestStateCommand
    | ExitFlashCommand
    | MmuResetCommand
    | PriorityCommand
    | PriorityCancelCommand
    | TspCheckinCommand
    | TspCheckoutCommand,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
COMMAND_TYPES: tuple[str, ...] = (
    "set_mode",
    "set_plan",
    "place_call",
    "hold",
    "force_off",
    "omit",
    "preempt",
    "request_state",
    "exit_flash",
    "mmu_reset",
    "priority",  # appended: the COMMAND_APPLIED event's param is the position here
    "priority_cancel",
    "tsp_checkin",
    "tsp_checkout",
)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What the handler returns for an applied command; ``data`` goes into the response."""

    message: str = ""
    data: Mapping[str, object] | None = None


class CommandHandler(Protocol):
    """The daemon's side: apply a validated command. Synchronous, fast, never blocks.

    Raise :class:`edgectl.errors.CommandError` (``code``, ``message``) to refuse it.
    """

    def apply(self, command: Command) -> CommandResult: ...


class CommandStore(Protocol):
    """Durable memory of answered command ids (implemented by the outbox database)."""

    def command_response(self, command_id: str) -> dict[str, object] | None: ...

    def remember_command(
        self, command_id: str, response: Mapping[str, object], *, now: datetime
    ) -> None: ...
