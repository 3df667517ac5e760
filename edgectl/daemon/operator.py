"""Remote commands applied to a running daemon, through its operator port.

The sync layer has already checked schema, signature, expiry and duplicates; this handler
checks a command against the junction (phases exist, the plan passes the safety kernel, the
mode is possible) and turns it into *requests* and *directives* for the next control tick.
Nothing here changes an output: the engine decides when, if ever, a request is safe.

The handler sees the daemon only through its :class:`~edgectl.daemon.port.OperatorPort`,
built before the handler, the sync service and the daemon, and handed to the daemon.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from edgectl.config.model import Mode, Plan
from edgectl.control.priority import PriorityRequest
from edgectl.control.transit import ETA_PAST_S, MAX_ETA_AHEAD_S, TransitRequest
from edgectl.control.types import EventCode, ExitFlash, OperatingState, Preempt, SetMode, SetPlan
from edgectl.daemon.port import OperatorPort
from edgectl.daemon.publish import state_payload
from edgectl.errors import CommandError
from edgectl.sync.commands import (
    COMMAND_TYPES,
    MAX_PRIORITY_ETA_S,
    Command,
    CommandResult,
    ExitFlashCommand,
    ForceOffCommand,
    HoldCommand,
    MmuResetCommand,
    OmitCommand,
    PlaceCallCommand,
    PreemptCommand,
    PriorityCancelCommand,
    PriorityCommand,
    RequestStateCommand,
    SetModeCommand,
    SetPlanCommand,
    TspCheckinCommand,
    TspCheckoutCommand,
)

log = structlog.get_logger("edgectl.sync")

DEFAULT_HOLD_S = 60.0
DEFAULT_OMIT_S = 3600.0
FORCE_OFF_TTL_S = 120.0
COORDINATED_MODES = (Mode.FIXED, Mode.COORDINATED)
PRIORITY_PAST_S = 5.0  # an ETA further in the past is refused (clock skew allowance)


class DaemonCommandHandler:
    """:class:`edgectl.sync.commands.CommandHandler` on a daemon's :class:`OperatorPort`."""

    def __init__(self, port: OperatorPort, *, metrics: Any = None) -> None:
        self.port = port
        self.metrics = metrics

    # --- helpers -----------------------------------------------------------------------

    @property
    def _t(self) -> float:
        last = self.port.last
        return last.t if last is not None else 0.0

    def _phases(self, phases: Iterable[int]) -> tuple[int, ...]:
        known = {p.id for p in self.port.config.phases}
        wanted = tuple(sorted(set(phases)))
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise CommandError(
                "not_allowed", f"no such phase(s) {unknown}; phases are {sorted(known)}"
            )
        return wanted

    def _greens(self) -> set[int]:
        last = self.port.last
        if last is None:
            return set()
        return {r.phase for r in last.rings if r.phase is not None and r.interval.value == "green"}

    def _applied(
        self, command: Command, message: str, data: dict[str, object] | None = None
    ) -> CommandResult:
        self.port.emit(EventCode.COMMAND_APPLIED, COMMAND_TYPES.index(command.type) + 1)
        log.info("command_applied", id=command.id, type=command.type, detail=message)
        return CommandResult(message=message, data=data)

    # --- the handler -------------------------------------------------------------------

    def apply(self, command: Command) -> CommandResult:
        match command:
            case SetModeCommand():
                return self._set_mode(command)
            case SetPlanCommand():
                return self._set_plan(command)
            case PlaceCallCommand():
                phases = self._phases(command.params.phases)
                if command.params.ped:
                    no_ped = [p for p in phases if not self.port.config.phase(p).pedestrian]
                    if no_ped:
                        raise CommandError(
                            "not_allowed", f"phase(s) {no_ped} have no pedestrian movement"
                        )
                    self.port.requests.ped_calls.update(phases)
                else:
                    self.port.requests.calls.update(phases)
                return self._applied(command, f"call placed on {list(phases)}")
            case HoldCommand():
                phases = self._phases(command.params.phases)
                holds = self.port.requests.hold
                if not phases:
                    holds.clear()
                    return self._applied(command, "holds released")
                until = self._t + (command.params.duration_s or DEFAULT_HOLD_S)
                for p in phases:
                    holds[p] = until
                return self._applied(command, f"hold on {list(phases)} until t={until:.1f}")
            case ForceOffCommand():
                phases = self._phases(command.params.phases)
                not_green = [p for p in phases if p not in self._greens()]
                if not_green:
                    raise CommandError("not_allowed", f"phase(s) {not_green} not green")
                for p in phases:
                    self.port.requests.force_off[p] = self._t + FORCE_OFF_TTL_S
                    self.port.requests.hold.pop(p, None)
                return self._applied(command, f"force-off requested on {list(phases)}")
            case OmitCommand():
                phases = self._phases(command.params.phases)
                omits = self.port.requests.omit
                if not phases:
                    omits.clear()
                    return self._applied(command, "omits cleared")
                if set(phases) >= {p.id for p in self.port.config.phases}:
                    raise CommandError("unsafe", "cannot omit every phase")
                until = self._t + (command.params.duration_s or DEFAULT_OMIT_S)
                for p in phases:
                    omits[p] = until
                return self._applied(command, f"omit {list(phases)} until t={until:.1f}")
            case PreemptCommand():
                phases = self._phases(command.params.phases) or tuple(
                    p.id for p in self.port.config.phases if p.main_street or p.startup
                )
                self.port.directives.append(
                    Preempt(command.params.input, command.params.active, phases)
                )
                on_off = "on" if command.params.active else "off"
                return self._applied(
                    command, f"preempt {command.params.input} {on_off} {list(phases)}"
                )
            case RequestStateCommand():
                last = self.port.last
                if last is None:
                    raise CommandError("not_allowed", "no state yet: the control loop is starting")
                state = state_payload(last, self.port.reports)
                self.port.state = state  # published after the tick
                return self._applied(command, "state published", state)
            case ExitFlashCommand():
                last = self.port.last
                if last is None or last.state is not OperatingState.FLASH:
                    raise CommandError("not_allowed", "the junction is not in flash")
                if self.port.field_fault:
                    raise CommandError(
                        "not_allowed", f"field fault still present: {self.port.field_fault}"
                    )
                self.port.directives.append(ExitFlash())
                return self._applied(command, "leaving flash through all-red")
            case MmuResetCommand():
                self.port.mmu_reset = True  # sent to the output devices at the next tick
                # the junction stays in flash after a conflict latch: exit_flash ends it
                return self._applied(
                    command, "MMU reset requested; leave a conflict flash with exit_flash"
                )
            case PriorityCommand():
                return self._priority(command)
            case PriorityCancelCommand():
                rid = command.params.request
                if not self.port.controller.cancel_priority(rid):
                    raise CommandError("not_allowed", f"no priority request {rid!r} is held")
                return self._applied(command, f"priority {rid!r} checked out")
            case TspCheckinCommand():
                return self._tsp_checkin(command)
            case TspCheckoutCommand():
                rid = command.params.request
                if not self.port.controller.transit_checkout(rid):
                    raise CommandError("not_allowed", f"no bus {rid!r} is checked in")
                return self._applied(command, f"bus {rid!r} checked out")
        raise CommandError("unknown_type", f"unsupported command {command.type!r}")

    def _priority(self, command: PriorityCommand) -> CommandResult:
        """A vehicle's request: its ETA turned into controller time, planned by the
        controller's priority planner; the answer says whether the ETA can be honoured."""
        params = command.params
        phases = self._phases(params.movement)
        engine = self.port.controller.engine
        if len({engine.phase_group(p) for p in phases}) > 1 or len(
            {engine.phase_ring(p) for p in phases}
        ) < len(phases):
            raise CommandError(
                "not_allowed", f"phases {list(phases)} cannot be green together (one movement)"
            )
        now = datetime.now(UTC)
        eta_in = (params.eta - now).total_seconds() if params.eta is not None else params.eta_s
        assert eta_in is not None  # the model requires one of eta and eta_s
        if eta_in < -PRIORITY_PAST_S:
            raise CommandError("not_allowed", f"eta is {-eta_in:.0f} s in the past")
        if eta_in > MAX_PRIORITY_ETA_S:
            raise CommandError(
                "not_allowed", f"eta is {eta_in:.0f} s ahead (at most {MAX_PRIORITY_ETA_S:.0f})"
            )
        t = self._t
        checkout = params.checkout
        request = PriorityRequest(
            params.request,
            phases,
            eta=t + eta_in,
            level=params.level,
            checkout_detector=checkout.detector,
            timeout_s=checkout.timeout_s,
        )
        try:
            answer = self.port.controller.request_priority(request)
        except ValueError as exc:
            raise CommandError("not_allowed", str(exc)) from exc
        green_at = now + timedelta(seconds=answer.green_at - t)
        data: dict[str, object] = {
            "request": params.request,
            "honoured": answer.honoured,
            "green_at": green_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "green_in_s": round(answer.green_at - t, 1),
            "lead_s": round(answer.lead, 1),
            "reason": answer.reason,
        }
        verdict = "honoured" if answer.honoured else f"late ({answer.reason})"
        return self._applied(
            command, f"priority {params.request!r} on {list(phases)}: {verdict}", data
        )

    def _tsp_checkin(self, command: TspCheckinCommand) -> CommandResult:
        """A bus checks in: refused with ``unknown_phase``, ``tsp_disabled`` (the plan in
        force) or ``eta_out_of_range``; else held by the controller's TSP planner until it
        checks out (docs/priority.md#transit-signal-priority)."""
        params = command.params
        known = {p.id for p in self.port.config.phases}
        unknown = sorted(set(params.movement) - known)
        if unknown:
            raise CommandError("unknown_phase", f"no such phase(s) {unknown}")
        phases = tuple(sorted(set(params.movement)))
        engine = self.port.controller.engine
        if len({engine.phase_group(p) for p in phases}) > 1 or len(
            {engine.phase_ring(p) for p in phases}
        ) < len(phases):
            raise CommandError(
                "not_allowed", f"phases {list(phases)} cannot be green together (one movement)"
            )
        t = self._t
        eta: float | None = None
        if params.eta is not None or params.eta_s is not None:
            eta_in = (
                (params.eta - datetime.now(UTC)).total_seconds()
                if params.eta is not None
                else params.eta_s
            )
            assert eta_in is not None
            if not -ETA_PAST_S <= eta_in <= MAX_ETA_AHEAD_S:
                raise CommandError(
                    "eta_out_of_range",
                    f"eta {eta_in:+.0f} s from now (allowed -{ETA_PAST_S:g} … "
                    f"+{MAX_ETA_AHEAD_S:g} s)",
                )
            eta = t + eta_in
        request = TransitRequest(
            params.request,
            phases,
            eta=eta,
            timeout_s=params.checkout.timeout_s,
            checkout_detector=params.checkout.detector,
        )
        try:
            answer = self.port.controller.transit_checkin(request)
        except ValueError as exc:
            raise CommandError("not_allowed", str(exc)) from exc
        if not answer.accepted:
            code = "eta_out_of_range" if answer.code == "eta_out_of_range" else "tsp_disabled"
            raise CommandError(code, answer.reason)
        data: dict[str, object] = {"request": params.request, "reason": answer.reason}
        verdict = answer.reason or "checked in"
        return self._applied(command, f"bus {params.request!r} on {list(phases)}: {verdict}", data)

    def _set_mode(self, command: SetModeCommand) -> CommandResult:
        from edgectl.control.strategies import registered

        mode = command.params.mode
        port = self.port
        if mode in COORDINATED_MODES:
            plan = port.controller.plan
            if plan.coordination is None or plan.coordination.cycle <= 0:
                raise CommandError(
                    "not_allowed",
                    f"mode {mode.value} needs a plan with a cycle; plan {plan.id} is free",
                )
        if mode not in (Mode.FLASH, *registered()):
            raise CommandError("not_allowed", f"mode {mode.value} is not available in this build")
        port.directives.append(SetMode(mode))
        return self._applied(command, f"mode {mode.value} requested")

    def _set_plan(self, command: SetPlanCommand) -> CommandResult:
        from edgectl.config.plans import validate_plan

        port = self.port
        raw = command.params.plan
        if isinstance(raw, int):
            try:
                plan: Plan = port.config.plan(raw)
            except KeyError:
                raise CommandError(
                    "not_allowed", f"no plan {raw}; plans are {[p.id for p in port.config.plans]}"
                ) from None
        else:
            plan = raw
        problems = [p for p in validate_plan(plan, port.config) if p.severity == "error"]
        if problems:
            raise CommandError("unsafe", "; ".join(str(p) for p in problems))
        port.directives.append(SetPlan(plan))
        return self._applied(command, f"plan {plan.id} accepted; applied at the next barrier")
