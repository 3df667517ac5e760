"""What every part of the engine shares within a tick: the tick, the operating state, the
alarms and the events emitted so far (in order)."""

from __future__ import annotations

from edgectl.control.types import Event, OperatingState

__all__ = ["Status"]


class Status:
    """The unit's shared status. Parts of the engine read it and emit events through it."""

    __slots__ = ("alarms", "events", "state", "state_start", "t", "tick")

    def __init__(self) -> None:
        self.tick = 0  # the tick being stepped (0 before the first)
        self.t = 0.0  # the same in seconds: the time stamp of events
        self.state = OperatingState.STARTUP_FLASH
        self.state_start = 0  # tick the operating state began
        self.alarms: frozenset[str] = frozenset()
        self.events: list[Event] = []

    def emit(self, code: int, param: int) -> None:
        self.events.append(Event(self.t, int(code), param))

    def take_events(self) -> tuple[Event, ...]:
        events = tuple(self.events)
        self.events = []
        return events

    def set_alarm(self, prefix: str, text: str | None) -> None:
        """Replace the alarms starting with ``prefix`` by ``text`` (None clears them)."""
        alarms = {a for a in self.alarms if not a.startswith(prefix)}
        if text is not None:
            alarms.add(text)
        self.alarms = frozenset(alarms)
