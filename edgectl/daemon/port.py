"""The operator port: what remote commands share with the control loop.

Built before the command handler, the sync service and the daemon (the sync service needs
the handler, the handler the port), and handed to the daemon at construction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edgectl.config.model import DaemonConfig
from edgectl.control.controller import Controller
from edgectl.control.types import Directive, Outputs, Requests
from edgectl.field.report import DeviceReport


@dataclass(slots=True)
class OperatorRequests:
    """Requests placed by commands, each with an expiry on the controller clock."""

    hold: dict[int, float] = field(default_factory=dict)
    omit: dict[int, float] = field(default_factory=dict)
    force_off: dict[int, float] = field(default_factory=dict)
    calls: set[int] = field(default_factory=set)
    ped_calls: set[int] = field(default_factory=set)

    def take(self, t: float) -> Requests:
        for table in (self.hold, self.omit, self.force_off):
            for phase in [p for p, until in table.items() if until <= t]:
                del table[phase]
        req = Requests(
            calls=frozenset(self.calls),
            ped_calls=frozenset(self.ped_calls),
            hold=frozenset(self.hold),
            omit=frozenset(self.omit),
            force_off=frozenset(self.force_off),
        )
        self.calls.clear()
        self.ped_calls.clear()
        return req


class OperatorPort:
    """What commands may read of the running junction and ask of the control loop.

    The control loop keeps the view current after every tick (the configuration in force,
    the last outputs, the devices' reports, the field fault) and takes what commands left
    here before the next one: requests, directives, an MMU reset. The events and the state
    a command publishes go out to the sync service after that tick. Commands and the
    control loop run on one event loop, never at the same time.
    """

    def __init__(self, config: DaemonConfig, controller: Controller) -> None:
        self.config = config  # in force (a reload replaces it)
        # read here (the plan and mode in force); priority commands add their requests to its
        # planner (Controller.request_priority), between ticks like every command
        self.controller = controller
        self.last: Outputs | None = None
        self.reports: Mapping[str, DeviceReport] = {}
        self.field_fault = ""  # why field supervision holds the junction in flash
        self.requests = OperatorRequests()
        self.directives: deque[Directive] = deque()
        self.mmu_reset = False
        self.events: list[tuple[datetime, int, int]] = []
        self.state: dict[str, object] | None = None  # asked for by request_state

    def emit(self, code: int, param: int) -> None:
        self.events.append((datetime.now(UTC), code, param))

    def take_directives(self) -> tuple[Directive, ...]:
        directives = tuple(self.directives)
        self.directives.clear()
        return directives
