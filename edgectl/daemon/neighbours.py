"""Neighbour coordination on the daemon's side (``[outflow]``, ``[[neighbours]]``).

After a tick, the falling edges of the published stop-bar detectors (not failed ones) go to
the sync service as departures stamped with the tick's wall time (:func:`stop_bar_departures`).
Before a tick, :class:`NeighbourFeed` turns the neighbours' departures the sync service has
received into projected arrivals in controller time and hands them to the controller
(``Controller.expect``) — on the control loop's side, so the strategy never changes under a
running tick — whenever a message brought new departures, and every second anyway so that
the past ones age out.
"""

from __future__ import annotations

from datetime import datetime

from edgectl.config.model import DaemonConfig, DetectorType
from edgectl.control.controller import Controller
from edgectl.control.types import EventCode, Outputs
from edgectl.sync.outflow import NeighbourInbox

NEIGHBOUR_REFRESH_TICKS = 10  # projected arrivals re-handed every 1 s (past ones age out)


def outflow_detectors(config: DaemonConfig) -> frozenset[int]:
    """The detectors whose departures this junction publishes (none when ``[outflow]`` is
    off): the configured list, or every stop-bar detector."""
    if not config.outflow.enabled:
        return frozenset()
    if config.outflow.detectors:
        return frozenset(config.outflow.detectors)
    return frozenset(d.id for d in config.detectors if d.type is DetectorType.STOP_BAR)


def stop_bar_departures(
    out: Outputs, detectors: frozenset[int], at: datetime
) -> list[tuple[datetime, int]]:
    """A tick's departures ``(at, detector)``: the falling edges of ``detectors``. A failed
    detector's edges are not vehicles (its card went silent and took its presence with it)."""
    edges = [
        ev.param for ev in out.events if ev.code == EventCode.DETECTOR_OFF and ev.param in detectors
    ]
    if not edges:
        return []
    failed = {d.id for d in out.detectors if d.failed}
    return [(at, det) for det in edges if det not in failed]


class NeighbourFeed:
    """Hands the neighbours' projected arrivals to the controller before a tick."""

    def __init__(self, controller: Controller, inbox: NeighbourInbox | None) -> None:
        self.controller = controller
        self.inbox = inbox
        self._fed: tuple[int, int] | None = None  # (inbox version, tick)

    def feed(self, tick: int, t: float, wall: datetime) -> None:
        inbox = self.inbox
        if inbox is None or not inbox.phases:
            return
        fed = self._fed
        if fed is not None and fed[0] == inbox.version and tick - fed[1] < NEIGHBOUR_REFRESH_TICKS:
            return
        self._fed = (inbox.version, tick)
        for phase, arrivals in inbox.projections(wall_now=wall, controller_now=t).items():
            self.controller.expect(phase, arrivals)
