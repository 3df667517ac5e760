"""The ``state`` stream: the junction's latest state, retained, on change and periodically.

The control loop hands over its state every tick (:meth:`StateStream.publish`, latest wins,
never blocks); the stream publishes it retained at every connect, whenever it changed and at
least every ``state_interval_s``. Keys in :data:`STATE_VOLATILE_KEYS` (at any depth) do not
count as a change, so a ticking timer does not publish at 10 Hz.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from edgectl.sync.link import Link
from edgectl.sync.publish import Publisher, wait_event

__all__ = ["STATE_VOLATILE_KEYS", "StateStream"]

STATE_VOLATILE_KEYS = frozenset(
    {"ts", "seq", "elapsed", "time_in_interval", "cycle_time", "uptime_s", "now"}
)
"""Keys ignored (at any depth) when deciding whether the state changed."""


def _strip_volatile(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: _strip_volatile(v) for k, v in value.items() if k not in STATE_VOLATILE_KEYS}
    if isinstance(value, list | tuple):
        return [_strip_volatile(v) for v in value]
    return value


class StateStream:
    """Latest state in, retained ``…/state`` messages out."""

    def __init__(self, *, publisher: Publisher, topic: str, interval_s: float) -> None:
        self._publisher = publisher
        self._topic = topic
        self._interval = interval_s
        self._state: dict[str, object] | None = None
        self._key: object = None
        self._changed = False
        self._wake = asyncio.Event()

    def publish(self, state: Mapping[str, object]) -> None:
        """Latest wins; published on change and at least every ``interval_s``."""
        snapshot = dict(state)
        key = _strip_volatile(snapshot)
        self._state = snapshot
        if key != self._key:
            self._key = key
            self._changed = True
            self._wake.set()

    def force(self) -> None:
        """Publish the current state now (a ``request_state`` command)."""
        self._changed = True
        self._wake.set()

    async def loop(self, link: Link) -> None:
        """One connection's publishing: the full state first, then changes and refreshes."""
        loop = asyncio.get_running_loop()
        last = -math.inf
        force = True  # full state at every connect
        while True:
            self._wake.clear()
            now = loop.time()
            if self._state is not None and (force or self._changed or now - last >= self._interval):
                state, self._changed, force = self._state, False, False
                last = now
                await self._publisher.publish(link, "state", self._topic, state, retain=True)
                continue
            timeout = self._interval - (now - last) if self._state is not None else self._interval
            await wait_event(self._wake, timeout)
