"""The controller: strategy → engine → conflict monitor, one tick at a time.

This is the composition the daemon, the SUMO bench, ``edgectl simulate`` and the property
tests drive::

    controller = Controller(config)
    outputs = controller.step(now, inputs)      # now advances by 0.1 s

Per tick: the current mode's strategy reads the :class:`View` and returns requests; they are
merged with the operator's (``inputs.requests``); the engine steps; the software conflict
monitor checks the frame before anyone can write it (every *changed* frame: the engine reuses
the frame object while nothing changes, and an identical frame can add neither a conflict nor
a transition). Any violation puts the engine into fault
flash *in the same tick* (alarm ``monitor:<kind>``, event 203 per violation) and that tick's
frame is the flash frame.

Modes: ``flash`` is the engine's commanded flash; every other mode is a strategy from the
registry (:func:`edgectl.control.strategies.get_strategy`). A mode with no registered strategy
runs ``actuated`` and raises the alarm ``mode:fallback:<mode>``.

Projected arrivals (neighbour coordination): :meth:`Controller.expect` hands a phase's
projected stop-bar arrivals (controller time) to the current strategy when it plans with them
(:class:`ExpectsArrivals`, e.g. ``adaptive``). The controller keeps the latest list per phase
and hands it again to the strategy of a later mode, so a mode change does not lose what the
neighbours announced. Call it between ticks, from the thread that calls :meth:`step`.

Coordination (fixed and coordinated modes): the controller keeps the junction's own cycle
position (:class:`~edgectl.control.coordination.CycleClock`), walked into step with the
shared clock ``inputs.sync_s`` (the controller's own time when None); strategies read it as
``view.cycle_time()``. ``Outputs.transition`` says how it is walking into step and event 150
(coord cycle state change) marks each change (see :mod:`edgectl.control.coordination`).

Priority: :meth:`Controller.request_priority` (emergency vehicles, a preempt planned for the
ETA; :mod:`edgectl.control.priority`) and :meth:`Controller.transit_checkin` /
:meth:`Controller.transit_checkout` (buses: TSP edits the strategy's requests before the
operator's are merged; :mod:`edgectl.control.transit`; events 112–115 in the tick's outputs).
``config.priority_inputs`` turns a detector's actuation into either (a local receiver).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from edgectl.cabinet.channels import ChannelState
from edgectl.config.junction import ConflictMatrix
from edgectl.config.model import Config, Mode, Plan
from edgectl.control import strategies
from edgectl.control.coordination import (
    COORD_FREE_PARAM,
    COORD_STATE_PARAM,
    CycleClock,
    CycleTerms,
    cycle_terms,
)
from edgectl.control.engine import Engine
from edgectl.control.priority import PriorityAnswer, PriorityPlanner, PriorityRequest
from edgectl.control.strategies.base import Strategy, View
from edgectl.control.transit import TransitAnswer, TransitPlanner, TransitRequest
from edgectl.control.types import (
    NO_REQUESTS,
    Event,
    EventCode,
    FlashReason,
    Inputs,
    OperatingState,
    Outputs,
    Requests,
    SetMode,
    SetPlan,
)
from edgectl.control.zones import ZoneBank

__all__ = ["Controller", "ExpectsArrivals", "FrameMonitor"]

_STRATEGY_STATES = (OperatingState.NORMAL, OperatingState.PREEMPT, OperatingState.ALL_RED)
_CYCLE_MODES = (Mode.FIXED, Mode.COORDINATED)


class _ViolationLike(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def channels(self) -> tuple[int, ...]: ...
    @property
    def detail(self) -> str: ...


class FrameMonitor(Protocol):
    """What the controller needs of a conflict monitor (``safety.ConflictMonitor``)."""

    def check(
        self, t: float, frame: Mapping[int, ChannelState], plan: Plan
    ) -> list[_ViolationLike]: ...
    def reset(self) -> None: ...


@runtime_checkable
class ExpectsArrivals(Protocol):
    """A strategy that plans with projected arrivals (``adaptive``)."""

    def expect(self, phase: int, arrivals: Iterable[float]) -> None: ...


def _default_monitor(config: Config) -> tuple[FrameMonitor, ConflictMatrix]:
    """The kernel's conflict monitor, and its conflict matrix (the engine shares it)."""
    from edgectl.control.monitor import ConflictMonitor

    monitor = ConflictMonitor(config)
    return monitor, monitor.matrix  # type: ignore[return-value]


class Controller:
    """One intersection's pure controller. See the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        mode: Mode | None = None,
        plan_id: int | None = None,
        monitor: FrameMonitor | None = None,
    ) -> None:
        self.config = config
        matrix: ConflictMatrix | None = None
        if monitor is None:
            monitor, matrix = _default_monitor(config)
        self._monitor = monitor
        self.engine = Engine(config, plan_id=plan_id, matrix=matrix)
        start_mode = config.control.mode if mode is None else mode
        self._mode = start_mode
        self.view = View(self.engine, start_mode)
        self.zones = ZoneBank(config.zones)  # zone sensors: diagnostics, healthy readings
        self.view.attach_zones(self.zones)
        self._strategy_mode: Mode | None = None
        self._strategy: Strategy = strategies.get_strategy(Mode.ACTUATED, config, self.engine.plan)
        self._phase_ids = frozenset(p.id for p in config.phases)
        self._expected: dict[int, tuple[float, ...]] = {}  # phase -> projected arrivals
        self._pending: tuple[SetMode, ...] = ()
        if start_mode is Mode.FLASH:
            self._pending = (SetMode(Mode.FLASH),)
        elif start_mode is not self.engine.mode:
            self._pending = (SetMode(start_mode),)
        self._select_strategy(start_mode)
        self._last_frame: tuple[tuple[int, ChannelState], ...] | None = None
        self.counters: dict[str, int] = {
            "ticks": 0,
            "violations": 0,
            "gap_outs": 0,
            "max_outs": 0,
            "force_offs": 0,
            "greens": 0,
        }
        self.violations: list[_ViolationLike] = []  # the last ones found (kept for diagnosis)
        self.last_requests: Requests = NO_REQUESTS  # strategy + operator, as given to the engine
        self.cycle_clock = CycleClock()  # the junction's own cycle (fixed, coordinated)
        self._terms_for: Plan | None = None
        self._terms: CycleTerms | None = None
        self._coord_param: int | None = None  # the last event 150 parameter emitted
        self.priority = PriorityPlanner(config)  # emergency-vehicle requests → one preempt
        self.transit = TransitPlanner(config)  # bus check-ins → holds, force-offs, calls
        self._inputs_on: frozenset[int] = frozenset()  # priority input detectors on last tick

    # --- read side ---

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def plan(self) -> Plan:
        return self.engine.plan

    @property
    def state(self) -> OperatingState:
        return self.engine.state

    @property
    def last(self) -> Outputs | None:
        return self.engine.last

    @property
    def strategy(self) -> Strategy:
        """The current mode's strategy object (a new one after a mode change)."""
        return self._strategy

    # --- projected arrivals ---

    def expect(self, phase: int, arrivals: Iterable[float]) -> bool:
        """Projected stop-bar arrival times on ``phase`` (controller time), e.g. an upstream
        neighbour's departures plus the link travel time; they replace the earlier ones and
        an empty ``arrivals`` clears them. True when the current strategy plans with them;
        kept either way for the strategy of a later mode. ``ValueError`` for an unknown
        phase."""
        if phase not in self._phase_ids:
            raise ValueError(f"phase {phase} is not defined")
        times = tuple(sorted(arrivals))
        if times:
            self._expected[phase] = times
        else:
            self._expected.pop(phase, None)
        if not isinstance(self._strategy, ExpectsArrivals):
            return False
        self._strategy.expect(phase, times)
        return True

    def _hand_expected(self) -> None:
        """Give a new strategy what the neighbours announced (still in the future)."""
        if not self._expected or not isinstance(self._strategy, ExpectsArrivals):
            return
        now = self.view.t
        for phase, times in list(self._expected.items()):
            future = tuple(a for a in times if a >= now)
            if future:
                self._expected[phase] = future
                self._strategy.expect(phase, future)
            else:
                del self._expected[phase]

    # --- priority (emergency vehicles with an ETA; edgectl.control.priority) ---

    def request_priority(self, request: PriorityRequest) -> PriorityAnswer:
        """Add or replace a priority request (``eta`` in controller time); the answer says
        whether its ETA can be honoured. Call it between ticks, like :meth:`expect`.
        ``ValueError`` for an unknown phase or detector."""
        self._known(request.phases, request.checkout_detector)
        return self.priority.request(self.view.t, request, self.engine.plan)

    def cancel_priority(self, request_id: str) -> bool:
        """Check a priority request out (the centre's cancel); False if none was held."""
        return self.priority.cancel(request_id)

    # --- transit signal priority (buses; edgectl.control.transit) ---

    def transit_checkin(self, request: TransitRequest) -> TransitAnswer:
        """A bus checks in (or updates its ETA, same ``id``; ``eta`` in controller time). The
        answer is refused (``accepted`` false, with a ``code``) when the plan in force has TSP
        disabled or not on these phases, or the ETA is out of range. Call it between ticks.
        ``ValueError`` for an unknown phase or detector."""
        self._known(request.phases, request.checkout_detector)
        return self.transit.checkin(
            self.view.t, request, self.engine.plan, emergency=self.priority.busy
        )

    def transit_checkout(self, request_id: str) -> bool:
        """A bus checks out (the centre's check-out); False if it was not checked in."""
        return self.transit.checkout(self.view.t, request_id)

    def _priority_inputs(self, now: float, inputs: Inputs) -> None:
        """Local priority inputs (``[[priority_inputs]]``): an actuation (off → on) of the
        receiver's detector is a priority request or a TSP check-in, id ``input-<detector>``
        (a new actuation updates it), ETA ``now + eta_s``; check-out by its
        ``checkout_detector`` or the timeout."""
        wired = {p.detector for p in self.config.priority_inputs}
        on = frozenset(d for d in inputs.presence if d in wired) - inputs.failed_detectors
        rising = on - self._inputs_on
        self._inputs_on = on
        if not rising or self.engine.last is None:
            return
        self.view.t = now  # the requests' "now" (view.update sets it again below)
        for pin in self.config.priority_inputs:
            if pin.detector not in rising:
                continue
            rid = f"input-{pin.detector}"
            if pin.kind == "emergency":
                self.request_priority(
                    PriorityRequest(
                        rid,
                        pin.phases,
                        eta=now + pin.eta_s,
                        level=pin.level,
                        checkout_detector=pin.checkout_detector,
                    )
                )
            else:
                self.transit_checkin(
                    TransitRequest(
                        rid,
                        pin.phases,
                        eta=now + pin.eta_s,
                        checkout_detector=pin.checkout_detector,
                    )
                )

    def _known(self, phases: tuple[int, ...], detector: int | None) -> None:
        unknown = [p for p in phases if p not in self._phase_ids]
        if unknown or not phases:
            raise ValueError(f"phase(s) {unknown or '[]'} not defined")
        if detector is not None and detector not in {d.id for d in self.config.detectors}:
            raise ValueError(f"detector {detector} is not defined")

    # --- modes ---

    def _select_strategy(self, mode: Mode) -> None:
        self._mode = mode
        if mode is Mode.FLASH:
            return  # keep the previous strategy object; the engine is flashing
        if mode is self._strategy_mode:
            return
        try:
            self._strategy = strategies.get_strategy(mode, self.config, self.engine.plan)
            self.engine.set_alarm("mode:fallback", None)
        except KeyError:
            self._strategy = strategies.get_strategy(Mode.ACTUATED, self.config, self.engine.plan)
            self.engine.set_alarm("mode:fallback", f"mode:fallback:{mode.value}")
        self._strategy_mode = mode
        self._hand_expected()

    def set_alarm(self, prefix: str, text: str | None) -> None:
        """An alarm of the shell around the core (e.g. the daemon's clock health): replaces
        the alarms starting with ``prefix`` by ``text`` (None clears them)."""
        self.engine.set_alarm(prefix, text)

    # --- the cycle ---

    def _cycle(self, now: float, sync_s: float | None) -> tuple[float | None, float, int | None]:
        """This tick's local cycle position, its rate, and the event 150 parameter if the
        coordination state changed."""
        clock = self.cycle_clock
        terms = None
        if self._strategy_mode in _CYCLE_MODES:
            plan = self.engine.plan
            if plan is not self._terms_for:
                self._terms = cycle_terms(self.config, plan)
                self._terms_for = plan
            terms = self._terms
        if terms is None:
            clock.reset()
            param = None if self._coord_param in (None, COORD_FREE_PARAM) else COORD_FREE_PARAM
            if param is not None:
                self._coord_param = param
            return None, 1.0, param
        coord_green = bool(terms.coord_phases) and terms.coord_phases <= self.view.green_phases
        position = clock.step(
            now, now if sync_s is None else sync_s, terms, coord_green=coord_green
        )
        param = COORD_STATE_PARAM[clock.transition]
        if param == self._coord_param:
            return position, clock.rate(), None
        self._coord_param = param
        return position, clock.rate(), param

    # --- the tick ---

    def step(self, now: float, inputs: Inputs) -> Outputs:
        if self._pending:
            inputs = replace(inputs, directives=self._pending + inputs.directives)
            self._pending = ()
        if self.config.priority_inputs:
            self._priority_inputs(now, inputs)
        if self.priority.busy:
            extra = self.priority.step(now, inputs.presence, self.engine.last, self.engine.plan)
            if extra:
                inputs = replace(inputs, directives=inputs.directives + extra)
        for d in inputs.directives:
            if isinstance(d, SetMode):
                self._select_strategy(d.mode)
            elif isinstance(d, SetPlan):
                pass  # the engine applies it at the next barrier; strategies read view.plan
        operator = inputs.requests
        self.view.update(now, operator, self._mode)
        zone_events = self._zones_step(now, inputs) if self.zones.configured else ()
        position, rate, coord_event = self._cycle(now, inputs.sync_s)
        self.view.set_cycle(position, rate)
        if self.engine.state in _STRATEGY_STATES:
            requested = self._strategy.requests(self.view)
        else:
            requested = NO_REQUESTS
        self.transit.observe(self.engine.last)
        if self.transit.busy:
            requested = self._transit(now, inputs, requested)
        if operator is not NO_REQUESTS:
            requested = requested.merged(operator) if requested is not NO_REQUESTS else operator
        self.last_requests = requested
        out = self.engine.step(now, inputs, requested)
        out = self._check(out)
        self._count(out)
        if self._strategy_mode in _CYCLE_MODES:
            c = self.view.cycle_time()
            if c is not None:
                transition = self.cycle_clock.transition
                out = replace(out, cycle_time=c, transition=transition and transition.value)
        if coord_event is not None:
            event = Event(out.t, EventCode.COORD_CYCLE_STATE_CHANGE, coord_event)
            out = replace(out, events=(*out.events, event))
        tsp = self.transit.events()
        if tsp:
            out = replace(out, events=(*out.events, *(replace(e, t=out.t) for e in tsp)))
        if self.zones.configured:
            out = replace(out, zones=self.zones.statuses, events=(*out.events, *zone_events))
        return out

    def _zones_step(self, now: float, inputs: Inputs) -> tuple[Event, ...]:
        """Zone sensor diagnostics for this tick (before the strategy reads the view); the
        alarm ``zone:failed:…`` lists the failed zones."""
        raw = self.zones.update(round(now * 10), inputs.zones)
        if not raw:
            return ()
        failed = self.zones.failed
        text = f"zone:failed:{','.join(map(str, sorted(failed)))}" if failed else None
        self.engine.set_alarm("zone:", text)
        return tuple(Event(now, code, param) for code, param in raw)

    def _transit(self, now: float, inputs: Inputs, requested: Requests) -> Requests:
        """The strategy's requests with the TSP adjustments (none during a priority, outside
        normal operation, or in a cycle mode while the cycle clock is in a transition)."""
        cycle_time = self.view.cycle_time() if self._strategy_mode in _CYCLE_MODES else None
        return self.transit.step(
            now,
            requested,
            plan=self.engine.plan,
            last=self.engine.last,
            presence=inputs.presence,
            cycle_time=cycle_time,
            in_step=self.cycle_clock.transition is None,
            suspended=self.priority.busy
            or self.engine.state is not OperatingState.NORMAL
            or self._mode in (Mode.FLASH, Mode.MANUAL),
        )

    def _check(self, out: Outputs) -> Outputs:
        if out.channels is self._last_frame:
            return out  # identical frame: no new conflict, no transition to check
        violations = self._monitor.check(out.t, out.frame, self.engine.plan)
        if not violations:
            self._last_frame = out.channels
            return out
        self.violations = list(violations)
        self.counters["violations"] += len(violations)
        first = violations[0]
        self.engine.fault_flash(FlashReason.FAULT, f"monitor:{first.kind}")
        self.engine.set_alarm("monitor:", f"monitor:{first.kind}")
        extra = tuple(
            Event(out.t, EventCode.MONITOR_VIOLATION, v.channels[0] if v.channels else 0)
            for v in violations
        )
        flashed = self.engine.refresh(out.events + extra)
        self._monitor.check(flashed.t, flashed.frame, self.engine.plan)
        self._last_frame = flashed.channels
        return flashed

    def _count(self, out: Outputs) -> None:
        c = self.counters
        c["ticks"] += 1
        for ev in out.events:
            code = ev.code
            if code == EventCode.PHASE_GAP_OUT:
                c["gap_outs"] += 1
            elif code == EventCode.PHASE_MAX_OUT:
                c["max_outs"] += 1
            elif code == EventCode.PHASE_FORCE_OFF:
                c["force_offs"] += 1
            elif code == EventCode.PHASE_BEGIN_GREEN:
                c["greens"] += 1
