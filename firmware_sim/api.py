"""The emulator as a Python object: start it in-process, talk to it over Modbus, step it.

::

    async with Emulator("builtin:nema-cabinet", listen="modbus+tcp://127.0.0.1:0",
                        clock="virtual", seed=1) as emu:
        client = AsyncModbusTcpClient(...)  # emu.url says where
        ...
        await emu.advance(1.5)   # virtual time: 15 ticks of the cabinet and the traffic
        assert emu.model.cabinet.tripped

With ``clock="real"`` (the default, what the CLI runs) a task advances the model every tick
(0.1 s) of wall time; with ``clock="virtual"`` time moves only by :meth:`Emulator.advance`,
so MMU timers, fault windows and traffic run as fast as the test wants. Response delays
(``delay`` faults) are always real time: they happen on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from edgectl.cabinet.fieldcheck import is_field_profile, load_field_profile
from edgectl.cabinet.profile import DeviceProfile, load_profile
from firmware_sim.faults import FaultSpec, parse_fault
from firmware_sim.model import CabinetModel, DemandSchedule
from firmware_sim.record import Recorder, summary, write_summary
from firmware_sim.server import ModbusEndpoint, parse_listen
from firmware_sim.units import (
    UnitFault,
    UnitsCabinet,
    inner_profile,
    is_unit_fault,
    parse_unit_fault,
)
from firmware_sim.zones import (
    ZoneFault,
    ZoneSensors,
    ZoneSettings,
    is_zone_fault,
    parse_zone_fault,
)

__all__ = ["Emulator"]

ClockMode = Literal["real", "virtual"]


class Emulator:
    """One emulated cabinet served over Modbus TCP or RTU (an async context manager)."""

    def __init__(
        self,
        profile: DeviceProfile | str | Path = "builtin:nema-cabinet",
        *,
        listen: str = "modbus+tcp://127.0.0.1:0",
        seed: int = 0,
        faults: Iterable[FaultSpec | UnitFault | str] = (),
        demand: DemandSchedule | Path | None = None,
        record: Path | None = None,
        summary: Path | None = None,
        clock: ClockMode = "real",
        tick: float = 0.1,
        mmu_reset: bool = False,
        line_time: bool = False,
        zones: ZoneSettings | None = None,
    ) -> None:
        field = None
        if isinstance(profile, DeviceProfile):
            self.profile = profile
        elif is_field_profile(profile):  # several Modbus units: see firmware_sim.units
            field = load_field_profile(profile)
            self.profile = inner_profile(field)
        else:
            self.profile = load_profile(profile)
        self.listen = parse_listen(listen)
        parsed = [
            f
            if isinstance(f, FaultSpec | UnitFault | ZoneFault)
            else parse_unit_fault(f)
            if is_unit_fault(f)
            else parse_zone_fault(f)
            if is_zone_fault(f)
            else parse_fault(f)
            for f in faults
        ]
        specs = tuple(f for f in parsed if isinstance(f, FaultSpec))
        unit_faults = tuple(f for f in parsed if isinstance(f, UnitFault))
        zone_faults = tuple(f for f in parsed if isinstance(f, ZoneFault))
        if unit_faults and field is None:
            raise ValueError(f"fault {unit_faults[0]}: the profile has one unit (use format 2)")
        wiring_zones = self.profile.cabinet.zones if self.profile.cabinet is not None else ()
        if zone_faults and not wiring_zones:
            raise ValueError(f"fault {zone_faults[0]}: the profile has no zone sensors")
        schedule = DemandSchedule.load(demand) if isinstance(demand, Path) else demand
        self.model = CabinetModel(self.profile, seed=seed, faults=specs, demand=schedule, tick=tick)
        self.zones: ZoneSensors | None = None
        if wiring_zones and self.profile.cabinet is not None:
            self.zones = ZoneSensors(
                wiring_zones,
                self.profile.cabinet.movements,
                self.model.traffic,
                settings=zones or ZoneSettings(),
                faults=zone_faults,
                seed=seed,
            )
        self.units = (
            None
            if field is None
            else UnitsCabinet(field, self.model, unit_faults, zones=self.zones)
        )
        if mmu_reset:  # a fresh emulator has no latch; kept for parity with a real cabinet
            self.model.cabinet.reset(0.0)
        self.clock_mode: ClockMode = clock
        self.tick = tick
        self._record_path = record
        self._summary_path = summary
        self._recorder: Recorder | None = None
        self._endpoint = ModbusEndpoint(
            self.listen, self.model, self._now, seed=seed, units=self.units, line_time=line_time
        )
        self._vnow = 0.0
        self._t0 = 0.0
        self._stack: contextlib.AsyncExitStack | None = None
        self._runner: asyncio.Task[None] | None = None
        self.url = ""

    # ---- time -----------------------------------------------------------------------------

    def _now(self) -> float:
        if self.clock_mode == "virtual":
            return self._vnow
        return asyncio.get_running_loop().time() - self._t0

    @property
    def now(self) -> float:
        """Seconds since the emulator started (virtual or wall time)."""
        return self._now()

    async def advance(self, seconds: float) -> None:
        """Virtual clock only: step the cabinet and the traffic ``seconds`` forward."""
        if self.clock_mode != "virtual":
            raise RuntimeError("advance() needs clock='virtual'")
        steps = max(1, math.ceil(seconds / self.tick - 1e-9))
        for _ in range(steps):
            self._vnow = round(self._vnow + self.tick, 9)
            self._step()
            await asyncio.sleep(0)

    def _step(self) -> None:
        self.model.step(self._now())
        if self._recorder is not None:
            self._recorder.drain(self.model)
        else:
            self.model.cabinet.changes.clear()

    # ---- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        if self._record_path is not None:
            self._recorder = Recorder(self._record_path)
            self._recorder.drain(self.model)  # the state of every channel at t=0
        self._step()  # t=0: faults scheduled at 0 take effect before the first request
        ready: asyncio.Future[str] = loop.create_future()
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(asyncio.TaskGroup())
        self._runner = tg.create_task(self._run(ready), name="firmware_sim[run]")
        self._stack = stack
        try:
            self.url = await ready
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()
        if self._recorder is not None:
            self._recorder.drain(self.model)
            self._recorder.close()
            self._recorder = None
        if self._summary_path is not None:
            write_summary(self.summary(), self._summary_path)

    async def _run(self, ready: asyncio.Future[str]) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                try:
                    url = await self._endpoint.start(tg)
                except Exception as exc:  # noqa: BLE001 - handed to __aenter__, re-raised there
                    ready.set_exception(exc)
                    return
                ready.set_result(url)
                if self.clock_mode == "real":
                    tg.create_task(self._ticker(), name="firmware_sim[tick]")
                await asyncio.get_running_loop().create_future()  # until cancelled by close
        finally:
            await self._endpoint.stop()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            self._step()

    # ---- results --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The summary JSON (SPEC §9) as it stands now."""
        data = summary(self.model)
        data["wire"] = self._endpoint.wire_stats
        data["devices"] = (
            self.units.summary()
            if self.units is not None
            else [{"name": "cabinet", "unit": self.listen.unit, "model": self.profile.name}]
        )
        if self.zones is not None:
            s = self.zones.settings
            data["zones"] = {
                "zones": [
                    {"zone": z.id, "movement": z.movement, "length_m": z.length_m}
                    for z in self.zones.zones
                ],
                "range_m": None if s.range_m == float("inf") else s.range_m,
                "noise": s.noise,
                "miss": s.miss,
                "measurements": self.zones.measurements,
                "faults": [str(f) for f in self.zones.faults],
            }
        return data
