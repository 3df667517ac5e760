"""A silent unit on a shared RTU line is only probed, so the other units keep the line.

The emulated io-modules cabinet on a real pty, two units opened on one
:class:`~edgectl.field.buses.FieldBuses` line: unit 1 (the detector module) dead for a while,
unit 2 (the MMU module) healthy. After :data:`~edgectl.field.modbus.QUARANTINE_AFTER`
unanswered requests, unit 1's requests fail at once without reaching the line (the emulator
counts what reached it), unit 2 is answered throughout, and unit 1 answers again at the first
probe after its fault ends.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from edgectl.errors import DeviceTimeout
from edgectl.field.buses import FieldBuses
from edgectl.field.modbus import PROBE_S, QUARANTINE_AFTER, ModbusIO
from edgectl.field.url import RtuEndpoint, parse_url
from firmware_sim.api import Emulator

pytestmark = pytest.mark.hil

TIMEOUT = 0.08
DEAD_S = 2.5


async def test_a_dead_unit_is_probed_and_the_others_keep_the_line() -> None:
    async with Emulator(
        "builtin:io-modules", listen="modbus+rtu://pty", faults=[f"unit_dead:1@0+{DEAD_S}"]
    ) as sim:
        endpoint = parse_url(sim.url)
        assert isinstance(endpoint, RtuEndpoint)
        buses = FieldBuses()
        dead = ModbusIO(dataclasses.replace(endpoint, unit=1), timeout=TIMEOUT, buses=buses)
        alive = ModbusIO(dataclasses.replace(endpoint, unit=2), timeout=TIMEOUT, buses=buses)
        await dead.connect()
        await alive.connect()

        def reached() -> int:  # requests to the dead unit that reached the line
            return int(sim.summary()["wire"]["dropped"])

        for _ in range(QUARANTINE_AFTER):
            with pytest.raises(DeviceTimeout):
                await dead.read_discrete(0, 16)
        before = reached()
        assert before == QUARANTINE_AFTER

        # quarantined: tried again at most once per PROBE_S, while unit 2 is answered
        answered = 0
        for _ in range(40):
            with pytest.raises(DeviceTimeout):
                await dead.read_discrete(0, 16)
            assert len(await alive.read_discrete(0, 6)) == 6
            answered += 1
        assert answered == 40
        assert reached() - before <= 2, "quarantined unit kept reaching the line"

        # its fault over, the next probe is answered and ends the quarantine
        await asyncio.sleep(max(0.0, DEAD_S - sim.now) + PROBE_S + 0.1)
        assert len(await dead.read_discrete(0, 16)) == 16
        assert len(await dead.read_discrete(0, 16)) == 16
        await dead.close()
        await alive.close()
