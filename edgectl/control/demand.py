"""A seeded random detector stream for runs in virtual time (``edgectl simulate``, the bench).

:class:`PoissonDemand` is pure and deterministic: Poisson vehicle arrivals per phase that queue
over the stop-bar loop while the phase is red and discharge at a saturation headway on green,
pulses on the advance loops, and Poisson pedestrian button presses. It reads the controller's
last outputs each tick and returns the next inputs; it never touches a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from edgectl.config.model import Config, DetectorType
from edgectl.control.types import Inputs, Interval, Outputs

__all__ = ["PoissonDemand"]


class PoissonDemand:
    """A seeded random detector stream driven by a tiny queue model (pure, deterministic).

    ``rates`` maps phase → arrivals per second (default: 0.12 veh/s for phases with a
    pedestrian movement or on the main street, 0.04 for the others); ``ped_rate`` is the
    pushes per second per pedestrian phase. Per tick call
    :meth:`inputs` with the controller's last outputs.
    """

    HEADWAY = 20  # ticks between discharging vehicles (2.0 s)
    OCCUPY = 6  # ticks a moving vehicle occupies a loop

    def __init__(
        self,
        config: Config,
        *,
        seed: int = 1,
        rates: Mapping[int, float] | None = None,
        ped_rate: float = 0.005,
    ) -> None:
        self._rng = random.Random(seed)
        self._config = config
        phases = {p.id: p for p in config.phases}
        self.rates: dict[int, float] = {}
        for p in phases.values():
            default = 0.12 if (p.main_street or p.pedestrian) else 0.04
            self.rates[p.id] = default if rates is None else rates.get(p.id, 0.0)
        self._stop: dict[int, list[int]] = {}
        self._advance: dict[int, list[int]] = {}
        for d in config.detectors:
            for phase_id in d.call_phases[:1]:
                target = self._advance if d.type is DetectorType.ADVANCE else self._stop
                target.setdefault(phase_id, []).append(d.id)
        self._queue: dict[int, int] = dict.fromkeys(phases, 0)
        self._next_discharge: dict[int, int] = dict.fromkeys(phases, 0)
        self._pulse: dict[int, int] = {}  # detector → tick its pulse ends
        self._peds = [p.id for p in phases.values() if p.pedestrian]
        self._ped_rate = ped_rate
        self._p0 = {p: math.exp(-rate / 10) for p, rate in self.rates.items()}
        # one push somewhere per tick with the summed probability (pushes are rare)
        self._ped_any = min(1.0, len(self._peds) * ped_rate / 10)
        self.arrived = 0
        self.served = 0

    @staticmethod
    def _poisson(lam: float, u: float) -> int:
        """Inverse transform of the Poisson distribution for the uniform draw ``u``."""
        k, p = 0, math.exp(-lam)
        s = p
        while u > s and k < 10:
            k += 1
            p *= lam / k
            s += p
        return k

    def inputs(self, tick: int, last: Outputs | None) -> Inputs:
        green: set[int] = set()
        if last is not None:
            for r in last.rings:
                if r.phase is not None and r.interval is Interval.GREEN:
                    green.add(r.phase)
        presence: set[int] = set()
        rnd = self._rng.random
        for p, rate in self.rates.items():
            u = rnd()
            if u < self._p0[p]:
                continue  # no arrival this tick (the common case)
            n = self._poisson(rate / 10, u)
            if n:
                self.arrived += n
                self._queue[p] += n
                for det in self._advance.get(p, ()):
                    self._pulse[det] = tick + self.OCCUPY
        queue = self._queue
        for p, n in queue.items():
            if not n:
                continue
            stop = self._stop.get(p, ())
            if p in green:
                if tick >= self._next_discharge[p]:
                    queue[p] = n - 1
                    self.served += 1
                    self._next_discharge[p] = tick + self.HEADWAY
                    for det in stop:
                        self._pulse[det] = tick + self.HEADWAY - 4
            else:
                presence.update(stop)  # a vehicle waits over the stop-bar loop
                self._next_discharge[p] = tick + 20  # start-up lost time
        if self._pulse:
            for det, end in list(self._pulse.items()):
                if tick < end:
                    presence.add(det)
                else:
                    del self._pulse[det]
        buttons: frozenset[int] = frozenset()
        if self._peds and rnd() < self._ped_any:
            buttons = frozenset({self._rng.choice(self._peds)})
        return Inputs(presence=frozenset(presence), ped_buttons=buttons)

    @property
    def queued(self) -> int:
        return sum(self._queue.values())
