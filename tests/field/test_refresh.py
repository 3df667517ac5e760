"""The periodic full rewrite of a v2 profile's units is spread over ticks.

Every unit with ``write = "changes"`` is rewritten in full every ``refresh_s`` (so a unit
that lost its outputs, e.g. a module power-cycled, gets them back). If all units came due
in the same tick, that tick's write pass would carry every unit's requests: on a shared
RS-485 line the frame is then late, and the daemon holds its clock a tick for it
(``bench/field_bench.py`` measured one held tick per second for io-modules at 115200 baud).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable

from edgectl.cabinet.channels import ChannelState
from edgectl.config.settings import Device
from edgectl.field.buses import FieldBuses
from edgectl.field.mapped import next_refresh, open_devices
from edgectl.field.memory import Function, Handler, Request, Response

LAMP_UNITS = (3, 4, 5)  # lamps-a, lamps-b, lamps-p (the MMU unit's one output is the heartbeat)


def test_next_refresh_spreads_units_only_after_a_full_pass() -> None:
    periods = {"b": 1.0, "a": 1.0, "d": 1.0, "c": 1.0}
    assert next_refresh(periods, 10.0, stagger=True) == {
        "a": 11.0,
        "b": 11.25,
        "c": 11.5,
        "d": 11.75,
    }
    assert next_refresh({"c": 1.0}, 11.5, stagger=False) == {"c": 12.5}
    assert next_refresh({}, 0.0, stagger=True) == {}


async def test_after_the_first_pass_each_tick_rewrites_at_most_one_unit_in_full() -> None:
    now = [100.0]
    spec = Device(name="cabinet", url="memory://cab", profile="builtin:io-modules", retries=0)
    buses = FieldBuses()
    _, cabinet = open_devices([spec], buses=buses, clock=lambda: now[0])
    full: dict[int, set[int]] = defaultdict(set)  # tick → units written with FC15
    tick = [0]
    for unit in LAMP_UNITS:
        bank = buses.bank(f"cab.{unit}")
        original = bank.handler

        def spy(
            request: Request, original: Handler = original, unit: int = unit
        ) -> Response | Awaitable[Response]:
            if request.function is Function.WRITE_COILS:
                full[tick[0]].add(unit)
            return original(request)

        bank.handler = spy
    frame = dict.fromkeys(range(1, 9), ChannelState.R) | dict.fromkeys(
        range(9, 13), ChannelState.DW
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cabinet.run(), name="edgectl[poll:cabinet]")
        for n in range(1, 46):  # 4.5 s of ticks on the device's clock
            tick[0] = n
            now[0] += 0.1
            seq = cabinet.report.frames_written
            cabinet.tick()
            cabinet.submit(frame)
            async with asyncio.timeout(2):
                while cabinet.report.frames_written <= seq:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
        task.cancel()
    first = min(full)
    assert full[first] == set(LAMP_UNITS)  # the first pass writes everything
    later = {n: units for n, units in full.items() if n != first}
    assert all(len(units) == 1 for units in later.values()), later
    for unit in LAMP_UNITS:  # and each unit still comes round about once a second
        assert sum(unit in units for units in later.values()) >= 3
