"""Remote commands (SPEC §7): models, signatures, and the validation pipeline.

A command on ``…/cmd``::

    {"id": "c-17", "type": "hold", "issued_at": "2026-11-21T05:00:00.000Z",
     "expires_at": "2026-11-21T05:01:00.000Z", "params": {"phases": [2, 6]}, "sig": "9f…"}

Every type is one pydantic model in the :data:`Command` discriminated union on ``type``.
``sig`` is the hex HMAC-SHA256, with the configured key, of :func:`canonical_json` of the
command object *without* ``sig`` (sorted keys, no spaces, UTF-8, as Python's ``json`` writes
it), computed over the object as received.

:class:`CommandProcessor` runs the pipeline, cheapest check first, and stops at the first
failure: size limit → JSON → schema → signature (when a key is configured: unsigned or bad →
refused) → expiry (``expires_at`` passed, ``issued_at`` older than ``command_max_age_s`` or
more than :data:`FUTURE_SKEW_S` ahead) → duplicate ``id`` (the original answer again, never a
second execution; remembered in SQLite across restarts) → the handler. The handler (the
daemon) applies the command through the safety kernel and may refuse it by raising
:class:`edgectl.errors.CommandError` (``unsafe``, ``not_allowed`` …). Nothing is changed by a
command that is refused anywhere in the pipeline, and no input makes it raise.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Protocol

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from edgectl.config.model import Mode, PhaseId, Plan
from edgectl.errors import CommandError, EdgectlError
from edgectl.sync.clock import iso_ms

log = structlog.get_logger("edgectl.sync.commands")

MAX_COMMAND_BYTES = 64 * 1024
"""Larger command payloads are refused with ``too_large`` before they are parsed."""

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


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1, max_length=128)
    issued_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    sig: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


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
    | MmuResetCommand,
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


# --- canonical form and signatures ---


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes that are signed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(obj: Mapping[str, object], key: bytes) -> str:
    """Hex HMAC-SHA256 of the canonical JSON of ``obj`` without its ``sig``."""
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    return hmac.new(key, canonical_json(unsigned), hashlib.sha256).hexdigest()


def verify(obj: Mapping[str, object], key: bytes) -> bool:
    sig = obj.get("sig")
    return isinstance(sig, str) and hmac.compare_digest(sign(obj, key), sig.lower())


def build_command(
    command_type: str,
    params: Mapping[str, object],
    *,
    now: datetime,
    key: bytes | None = None,
    command_id: str | None = None,
    expires_in_s: float | None = 60.0,
) -> dict[str, object]:
    """A command object ready to publish (signed when ``key`` is given)."""
    obj: dict[str, object] = {
        "id": command_id or uuid.uuid4().hex,
        "type": command_type,
        "issued_at": iso_ms(now),
        "params": dict(params),
    }
    if expires_in_s is not None:
        obj["expires_at"] = iso_ms(now + timedelta(seconds=expires_in_s))
    if key is not None:
        obj["sig"] = sign(obj, key)
    return obj


def read_key(path: Path) -> bytes:
    """A key file's bytes without trailing whitespace (so ``echo secret > key`` works)."""
    try:
        data = path.read_bytes().rstrip()
    except OSError as exc:
        raise EdgectlError(f"cannot read key file {path}: {exc}") from exc
    if not data:
        raise EdgectlError(f"key file {path} is empty")
    return data


# --- the pipeline ---


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one command message.

    ``response`` is the body of ``…/cmd/response`` without ``ts``/``seq``; ``code`` is the
    refusal code (None when ``ok``); ``executed`` says the handler applied it now.
    """

    response: dict[str, object]
    command: Command | None = None
    code: str | None = None
    executed: bool = False
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


def _refusal(
    command_id: object, code: str, message: str, command: Command | None = None
) -> Verdict:
    cid = command_id if isinstance(command_id, str) and len(command_id) <= 128 else None
    return Verdict(
        response={"id": cid, "ok": False, "error": {"code": str(code), "message": message}},
        command=command,
        code=str(code),
    )


def _schema_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or '<root>'}: {err.get('msg', '')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@dataclass
class CommandProcessor:
    """Runs the validation pipeline and hands valid commands to the handler."""

    handler: CommandHandler
    store: CommandStore
    clock: Callable[[], datetime]
    key: bytes | None = None
    max_age_s: float = 60.0
    max_bytes: int = MAX_COMMAND_BYTES
    lru_size: int = 1000
    _recent: OrderedDict[str, dict[str, object]] = field(default_factory=OrderedDict)

    def process(self, raw: bytes) -> Verdict:
        """Never raises (except ``CancelledError``/``KeyboardInterrupt``)."""
        if len(raw) > self.max_bytes:
            return _refusal(None, ErrorCode.TOO_LARGE, f"{len(raw)} bytes > {self.max_bytes}")
        try:
            obj = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _refusal(None, ErrorCode.MALFORMED_JSON, f"not JSON: {exc}"[:200])
        if not isinstance(obj, dict):
            return _refusal(None, ErrorCode.INVALID_SCHEMA, "a command is a JSON object")
        cid = obj.get("id")
        ctype = obj.get("type")
        if isinstance(ctype, str) and ctype not in COMMAND_TYPES:
            return _refusal(cid, ErrorCode.UNKNOWN_TYPE, f"unknown command type {ctype[:64]!r}")
        try:
            command = COMMAND_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            return _refusal(cid, ErrorCode.INVALID_SCHEMA, _schema_message(exc))
        except (ValueError, RecursionError) as exc:
            return _refusal(cid, ErrorCode.INVALID_SCHEMA, str(exc)[:200])
        if self.key is not None:
            if command.sig is None:
                return _refusal(cid, ErrorCode.UNSIGNED, "commands must be signed", command)
            if not verify(obj, self.key):
                return _refusal(cid, ErrorCode.BAD_SIGNATURE, "signature does not match", command)
        now = self.clock()
        if command.expires_at is not None and command.expires_at <= now:
            return _refusal(
                cid, ErrorCode.EXPIRED, f"expired at {iso_ms(command.expires_at)}", command
            )
        age = (now - command.issued_at).total_seconds()
        if age > self.max_age_s:
            return _refusal(
                cid, ErrorCode.STALE, f"issued {age:.1f} s ago (max {self.max_age_s:g} s)", command
            )
        if -age > FUTURE_SKEW_S:
            return _refusal(cid, ErrorCode.FUTURE, f"issued {-age:.1f} s in the future", command)
        original = self._lookup(command.id)
        if original is not None:
            return Verdict(
                response=original,
                command=command,
                duplicate=True,
                code=None if original.get("ok") else _code_of(original),
            )
        response = self._execute(command)
        self._remember(command.id, response, now)
        code = None if response.get("ok") else _code_of(response)
        return Verdict(response=response, command=command, code=code, executed=code is None)

    def _execute(self, command: Command) -> dict[str, object]:
        try:
            result = self.handler.apply(command)
        except CommandError as exc:
            return {
                "id": command.id,
                "ok": False,
                "error": {"code": exc.code, "message": exc.message},
            }
        except Exception as exc:
            log.exception("command_handler_failed", id=command.id, type=command.type)
            return {
                "id": command.id,
                "ok": False,
                "error": {"code": ErrorCode.INTERNAL.value, "message": str(exc)[:200]},
            }
        response: dict[str, object] = {"id": command.id, "ok": True}
        if result.message:
            response["message"] = result.message
        if result.data is not None:
            response["result"] = dict(result.data)
        return response

    def _lookup(self, command_id: str) -> dict[str, object] | None:
        if command_id in self._recent:
            self._recent.move_to_end(command_id)
            return self._recent[command_id]
        try:
            stored = self.store.command_response(command_id)
        except EdgectlError as exc:
            log.warning("command_log_read_failed", error=str(exc))
            return None
        if stored is not None:
            self._cache(command_id, stored)
        return stored

    def _remember(self, command_id: str, response: dict[str, object], now: datetime) -> None:
        self._cache(command_id, response)
        try:
            self.store.remember_command(command_id, response, now=now)
        except EdgectlError as exc:
            log.warning("command_log_write_failed", error=str(exc))

    def _cache(self, command_id: str, response: dict[str, object]) -> None:
        self._recent[command_id] = response
        self._recent.move_to_end(command_id)
        while len(self._recent) > self.lru_size:
            self._recent.popitem(last=False)


def _code_of(response: Mapping[str, object]) -> str | None:
    err = response.get("error")
    if isinstance(err, Mapping):
        code = err.get("code")
        return code if isinstance(code, str) else None
    return None
