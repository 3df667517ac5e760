"""The command pipeline: size → parse → signature → target → schema → replay → execute.

One bad message is answered, logged and counted; it never drops the session.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from pydantic import ValidationError

from edgectl.errors import CommandError, EdgectlError
from edgectl.sync.clock import iso_ms
from edgectl.sync.commands import (
    COMMAND_ADAPTER,
    COMMAND_MEMORY_MAX,
    COMMAND_TYPES,
    FUTURE_SKEW_S,
    MAX_COMMAND_BYTES,
    MAX_CONTAINER_ITEMS,
    MAX_DEPTH,
    Command,
    CommandHandler,
    CommandStore,
    ErrorCode,
)
from edgectl.sync.signing import Key, verifying_key

log = structlog.get_logger("edgectl.sync.commands")


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
    key: Key | None = None  # the key the command was verified with (its answer is signed so)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


def _echo_id(command_id: object) -> str | None:
    """The id to echo in a refusal: a string that can be encoded (lone surrogates and other
    unencodable characters replaced), or None."""
    if not isinstance(command_id, str) or len(command_id) > 128:
        return None
    return command_id.encode("utf-8", "replace").decode("utf-8")


def _refusal(
    command_id: object, code: str, message: str, command: Command | None = None
) -> Verdict:
    return Verdict(
        response={
            "id": _echo_id(command_id),
            "ok": False,
            "error": {"code": str(code), "message": message},
        },
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


class _TooBig(ValueError):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``json.loads``' object hook: bounded size, no duplicate keys (the signed object and
    the validated one must be the same object)."""
    if len(pairs) > MAX_CONTAINER_ITEMS:
        raise _TooBig(f"an object has {len(pairs)} members > {MAX_CONTAINER_ITEMS}")
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in an object")
    return obj


def _check_shape(value: object, depth: int = 0) -> None:
    """Raise :class:`_TooBig` for an array over :data:`MAX_CONTAINER_ITEMS` or nesting over
    :data:`MAX_DEPTH` (objects were bounded while parsing)."""
    if depth > MAX_DEPTH:
        raise _TooBig(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, list):
        if len(value) > MAX_CONTAINER_ITEMS:
            raise _TooBig(f"an array has {len(value)} items > {MAX_CONTAINER_ITEMS}")
        for item in value:
            _check_shape(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_shape(item, depth + 1)


def _unencodable(value: object) -> bool:
    """True when a string anywhere in ``value`` cannot be encoded as UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(_unencodable(v) for v in value)
    if isinstance(value, dict):
        return any(_unencodable(k) or _unencodable(v) for k, v in value.items())
    return False


@dataclass(slots=True)
class _Remembered:
    response: dict[str, object]
    until: datetime  # forgotten after this (the command can no longer be accepted)


@dataclass
class CommandProcessor:
    """Runs the validation pipeline and hands valid commands to the handler.

    ``target`` is this junction's id: a command naming another junction is refused, and
    when signatures are in use (``keys``, or one raw ``key`` with id ``""``) one naming none
    is refused too. A command's ``kid`` picks its key; without one every key is tried.
    :meth:`set_keys` replaces the keys (a reload that re-read the key file). Answered ids are
    remembered until the command could no longer be accepted anyway (its ``expires_at`` or
    ``issued_at`` + ``max_age_s``, whichever is earlier, plus the clock skew allowed), not
    for a number of commands.
    """

    handler: CommandHandler
    store: CommandStore
    clock: Callable[[], datetime]
    key: bytes | None = None
    keys: tuple[Key, ...] = ()
    max_age_s: float = 60.0
    max_bytes: int = MAX_COMMAND_BYTES
    target: str | None = None
    memory_max: int = COMMAND_MEMORY_MAX
    _recent: dict[str, _Remembered] = field(default_factory=dict)
    _expiry: list[tuple[datetime, str]] = field(default_factory=list)  # a heap on ``until``

    def __post_init__(self) -> None:
        if not self.keys and self.key is not None:
            self.keys = (Key("", self.key),)

    @property
    def signed(self) -> bool:
        """Signatures are checked (a key is configured)."""
        return bool(self.keys)

    def set_keys(self, keys: tuple[Key, ...]) -> None:
        """Verify with ``keys`` from the next command on (a rotation); never none once some."""
        if not keys:
            raise ValueError("a junction that checks signatures keeps at least one key")
        self.keys = keys
        self.key = None

    def process(self, raw: bytes, *, refuse: tuple[str, str] | None = None) -> Verdict:
        """Never raises (except ``CancelledError``/``KeyboardInterrupt``).

        ``refuse`` (code, message): refuse the command with it once its id is known (the
        transport found something wrong, e.g. its response topic); nothing is executed.
        """
        if len(raw) > self.max_bytes:
            return _refusal(None, ErrorCode.TOO_LARGE, f"{len(raw)} bytes > {self.max_bytes}")
        try:
            obj = json.loads(
                raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object
            )
            _check_shape(obj)
        except _TooBig as exc:
            return _refusal(None, ErrorCode.TOO_LARGE, str(exc)[:200])
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _refusal(None, ErrorCode.MALFORMED_JSON, f"not JSON: {exc}"[:200])
        if not isinstance(obj, dict):
            return _refusal(None, ErrorCode.INVALID_SCHEMA, "a command is a JSON object")
        cid = obj.get("id")
        if refuse is not None:
            return _refusal(cid, refuse[0], refuse[1])
        if _unencodable(obj):
            # a lone surrogate (\ud800): no valid Unicode, no canonical form, no signature
            return _refusal(cid, ErrorCode.MALFORMED_JSON, "a string is not valid Unicode")
        # the signature first: an unsigned or forged payload costs no schema validation
        key: Key | None = None
        if self.keys:
            if obj.get("sig") is None:
                return _refusal(cid, ErrorCode.UNSIGNED, "commands must be signed")
            key = verifying_key(obj, self.keys)
            if key is None:
                return _refusal(cid, ErrorCode.BAD_SIGNATURE, self._no_key(obj.get("kid")))
        verdict = self._checked(obj, cid, raw)
        return dataclasses.replace(verdict, key=key) if key is not None else verdict

    def _no_key(self, kid: object) -> str:
        if kid is None or any(k.kid == kid for k in self.keys):
            return "signature does not match"
        shown = kid[:64] if isinstance(kid, str) else kid
        return f"no key with id {shown!r}: signature not checked"

    def _checked(self, obj: dict[str, object], cid: object, raw: bytes) -> Verdict:
        """The checks after the signature's: target, schema, expiry, replay, then execute."""
        target = obj.get("target")
        if (target is not None or self.keys) and target != self.target:
            shown = target[:64] if isinstance(target, str) else target
            return _refusal(cid, ErrorCode.WRONG_TARGET, f"target {shown!r} is not this junction")
        ctype = obj.get("type")
        if isinstance(ctype, str) and ctype not in COMMAND_TYPES:
            return _refusal(cid, ErrorCode.UNKNOWN_TYPE, f"unknown command type {ctype[:64]!r}")
        try:
            command = COMMAND_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            return _refusal(cid, ErrorCode.INVALID_SCHEMA, _schema_message(exc))
        except (ValueError, RecursionError) as exc:
            return _refusal(cid, ErrorCode.INVALID_SCHEMA, str(exc)[:200])
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
        original = self._lookup(command.id, now)
        if original is not None:
            return Verdict(
                response=original,
                command=command,
                duplicate=True,
                code=None if original.get("ok") else _code_of(original),
            )
        if len(self._recent) >= self.memory_max:
            return _refusal(
                cid,
                ErrorCode.NOT_ALLOWED,
                f"{len(self._recent)} commands within {self.max_age_s:g} s: try later",
                command,
            )
        response = self._execute(command)
        self._remember(command.id, response, now, self._accepted_until(command))
        code = None if response.get("ok") else _code_of(response)
        return Verdict(response=response, command=command, code=code, executed=code is None)

    def _accepted_until(self, command: Command) -> datetime:
        """The last moment this command could pass the expiry checks (plus the skew)."""
        until = command.issued_at + timedelta(seconds=self.max_age_s)
        if command.expires_at is not None:
            until = min(until, command.expires_at)
        return until + timedelta(seconds=FUTURE_SKEW_S)

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

    def _lookup(self, command_id: str, now: datetime) -> dict[str, object] | None:
        self._forget(now)
        remembered = self._recent.get(command_id)
        if remembered is not None:
            return remembered.response
        try:
            stored = self.store.command_response(command_id)
        except EdgectlError as exc:
            log.warning("command_log_read_failed", error=str(exc))
            return None
        if stored is not None:
            # remembered before a restart: keep it for as long as any command may be accepted
            until = now + timedelta(seconds=self.max_age_s + FUTURE_SKEW_S)
            self._keep(command_id, _Remembered(stored, until))
        return stored

    def _remember(
        self, command_id: str, response: dict[str, object], now: datetime, until: datetime
    ) -> None:
        self._keep(command_id, _Remembered(response, until))
        try:
            self.store.remember_command(command_id, response, now=now)
        except EdgectlError as exc:
            log.warning("command_log_write_failed", error=str(exc))

    def _keep(self, command_id: str, remembered: _Remembered) -> None:
        self._recent[command_id] = remembered
        heapq.heappush(self._expiry, (remembered.until, command_id))

    def _forget(self, now: datetime) -> None:
        """Drop the ids whose commands can no longer be accepted."""
        while self._expiry and self._expiry[0][0] < now:
            until, cid = heapq.heappop(self._expiry)
            remembered = self._recent.get(cid)
            if remembered is not None and remembered.until == until:
                del self._recent[cid]


def _code_of(response: Mapping[str, object]) -> str | None:
    err = response.get("error")
    if isinstance(err, Mapping):
        code = err.get("code")
        return code if isinstance(code, str) else None
    return None
