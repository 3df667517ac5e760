"""firmware_sim read and written by a Modbus master that is not pymodbus: Debian's ``mbpoll``
(built on libmodbus), over real TCP and over the emulator's real RTU pty.

Real cabinets' controllers are not pymodbus: these tests prove the emulator's framing,
exception responses and unit ids are what another stack expects — the ``cabinet-v1``
registers, and the ``io-modules`` units (one unit id per module behind one gateway port or on
one line) with their discrete inputs and coils. The emulator runs on a virtual clock, so what
mbpoll reads is compared with the emulator's state at that instant, and what it writes is
judged by the emulator's record (what the load switches showed) and its MMU.
"""

from __future__ import annotations

import asyncio
import csv
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from edgectl.cabinet.fieldmap import ObjectType
from firmware_sim import Emulator

from .conftest import LISTEN

MBPOLL = shutil.which("mbpoll")

pytestmark = pytest.mark.skipif(
    MBPOLL is None,
    reason="mbpoll not installed: the independent Modbus master (Debian: apt-get install mbpoll)",
)

#: mbpoll's -t: 0 coils, 1 discrete inputs, 3 input registers, 4 holding registers
COILS, INPUTS, INPUT_REGS, HOLDING = "0", "1", "3", "4"
_VALUE = re.compile(r"^\[(\d+)\]:\s+(-?\d+)")
_SLAVE = re.compile(r"^-- Polling slave (\d+)")


class MbpollError(Exception):
    """mbpoll exited non-zero (its message: the Modbus exception or the timeout)."""


@asynccontextmanager
async def emulator(
    profile: str, transport: str, tmp_path: Path, faults: tuple[str, ...] = ()
) -> AsyncIterator[Emulator]:
    async with Emulator(
        profile,
        listen=LISTEN[transport],
        clock="virtual",
        seed=5,
        faults=faults,
        record=tmp_path / "record.csv",
    ) as emu:
        yield emu


def _target(url: str) -> list[str]:
    """mbpoll's mode options and device/host for a firmware_sim URL."""
    parts = urlsplit(url)
    if parts.scheme == "modbus+tcp":
        return ["-m", "tcp", "-p", str(parts.port), parts.hostname or "127.0.0.1"]
    # a pty has no baud rate or parity; mbpoll sets them (8E1 by default) and nothing cares
    return ["-m", "rtu", "-b", "115200", "-P", "none", parts.path]


async def mbpoll(
    url: str, units: str, kind: str, address: int, count: int = 1, write: list[int] | None = None
) -> dict[int, list[int]]:
    """One mbpoll run (``-1``: once; ``-0``: 0-based addresses): per unit, the values read
    (a write returns ``{}``)."""
    assert MBPOLL is not None
    args = ["-a", units, "-t", kind, "-0", "-r", str(address), "-1", "-o", "1"]
    if write is None:
        args += ["-c", str(count)]
    host = _target(url)
    argv = [MBPOLL, *args, *host[:-1], host[-1], *[str(v) for v in write or []]]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise MbpollError(f"{' '.join(argv)}: rc={proc.returncode}: {err.decode()}{text[-300:]}")
    values: dict[int, list[int]] = {}
    unit = 0
    for line in text.splitlines():
        if m := _SLAVE.match(line):
            unit = int(m[1])
            values[unit] = []
        elif m := _VALUE.match(line):
            values[unit].append(int(m[2]) & 0xFFFF)
    return values


def _record(path: Path) -> list[tuple[str, str]]:
    """(channel, state) of every row of the emulator's record, in order."""
    with path.open() as fh:
        return [(row["channel"], row["state"]) for row in csv.DictReader(fh)]


# ---- cabinet-v1: the one-unit register map ---------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_mbpoll_reads_the_cabinet_v1_input_registers(transport: str, tmp_path: Path) -> None:
    async with emulator("builtin:nema-cabinet", transport, tmp_path, faults=("stuck:3",)) as emu:
        await emu.advance(0.5)
        read = await mbpoll(emu.url, "1", INPUT_REGS, 0, 110)
        assert list(read) == [1]
        regs = read[1]
        assert len(regs) == 110
        assert regs == emu.model.read_input(emu.now, 0, 110)  # the image, word for word
        assert regs[0] & 0b010  # status: cabinet_flash (start-up flash, nobody in control)
        assert not regs[0] & 0b101  # not tripped, controller not in control
        assert regs[5] & (1 << 2)  # detector 3 present: the stuck loop
        assert all(r in (5, 7, 8) for r in regs[10:22])  # readback: FDW / FR / FY
        assert regs[109] == 1  # profile_version


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_mbpoll_drives_cabinet_v1_holding_registers(transport: str, tmp_path: Path) -> None:
    """FC16 frames and heartbeats from mbpoll take the cabinet over; a refused value is an
    exception mbpoll reports; the sim_control registers read back what was written."""
    red = [1] * 8 + [4] * 4 + [1] * 20
    async with emulator("builtin:nema-cabinet", transport, tmp_path) as emu:
        for beat in range(1, 6):
            await mbpoll(emu.url, "1", HOLDING, 0, write=[*red, beat])
            await emu.advance(0.1)
        status = (await mbpoll(emu.url, "1", INPUT_REGS, 0, 1))[1][0]
        assert status & 0b100 and not status & 0b011  # in control, no flash, no trip
        green2 = list(red)
        green2[1] = 3
        await mbpoll(emu.url, "1", HOLDING, 0, write=[*green2, 6])
        await emu.advance(0.1)
        readback = (await mbpoll(emu.url, "1", INPUT_REGS, 10, 12))[1]
        assert readback == [1, 3, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4]
        with pytest.raises(MbpollError, match=r"(?i)illegal data value"):
            await mbpoll(emu.url, "1", HOLDING, 33, write=[1234])  # not the reset magic
        await mbpoll(emu.url, "1", HOLDING, 48, write=[250])
        assert (await mbpoll(emu.url, "1", HOLDING, 48))[1] == [250]
        assert emu.model.read_holding(48, 1) == [250]
    assert ("2", "G") in _record(tmp_path / "record.csv")


# ---- io-modules: five units on one gateway port or one RTU line -----------------------------


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_mbpoll_reads_every_io_module_under_its_own_unit_id(
    transport: str, tmp_path: Path
) -> None:
    async with emulator("builtin:io-modules", transport, tmp_path, faults=("stuck:3",)) as emu:
        await emu.advance(0.5)
        assert emu.units is not None
        inputs = await mbpoll(emu.url, "1,2", INPUTS, 0, 16)
        assert sorted(inputs) == [1, 2]
        for unit in (1, 2):
            expected = emu.units.read(emu.now, unit, ObjectType.DISCRETE_INPUT, 0, 16)
            assert inputs[unit] == expected
        assert inputs[1][2] == 1  # detector 3 (DI 2) stuck on
        assert inputs[2][:2] == [1, 1]  # MMU relay energised (no trip), start-up flash sensed
        coils = await mbpoll(emu.url, "3,4,5", COILS, 0, 16)
        assert coils == {3: [0] * 16, 4: [0] * 16, 5: [0] * 16}  # nothing written yet
        with pytest.raises(MbpollError, match=r"(?i)timed out"):
            await mbpoll(emu.url, "9", INPUTS, 0, 16)  # no such module: no answer


def _all_red() -> dict[int, list[int]]:
    """Coils of the three lamp modules for all red / don't walk (io-modules wiring)."""
    vehicle = [1 if c % 4 == 0 else 0 for c in range(16)]  # red at 0, 4, 8, 12
    ped = [1 if c % 3 == 0 else 0 for c in range(12)]  # don't walk at 0, 3, 6, 9
    return {3: vehicle, 4: list(vehicle), 5: ped}


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_mbpoll_writes_io_module_coils_and_the_cabinet_shows_them(
    transport: str, tmp_path: Path
) -> None:
    """FC15 lamp writes and FC5 heartbeats take the cabinet over; a conflict trips the MMU,
    which the MMU module's inputs then show; a pulse on the reset coil clears it."""
    coils = _all_red()
    async with emulator("builtin:io-modules", transport, tmp_path) as emu:

        async def tick(beat: int) -> None:
            for unit, values in coils.items():
                await mbpoll(emu.url, str(unit), COILS, 0, write=values)
            await mbpoll(emu.url, "2", COILS, 0, write=[beat % 2])  # the heartbeat coil
            await emu.advance(0.1)

        for beat in range(5):
            await tick(beat)
        mmu = (await mbpoll(emu.url, "2", INPUTS, 0, 6))[2]
        assert mmu == [1, 0, 0, 0, 0, 1]  # not tripped, no flash, no fault, in control
        coils[3][4:7] = [0, 0, 1]  # channel 2: red off, green on
        await tick(5)
        assert (await mbpoll(emu.url, "3", COILS, 0, 16))[3] == coils[3]  # the relays' state
        coils[3][12:15] = [0, 0, 1]  # channel 4 green beside channel 2: a conflict
        for beat in range(6, 12):
            await tick(beat)
        mmu = (await mbpoll(emu.url, "2", INPUTS, 0, 6))[2]
        assert mmu[0] == 0  # the fault relay dropped: tripped
        assert mmu[1] == 1  # the cabinet is in flash
        assert mmu[2:5] == [1, 0, 0]  # fault code 1: conflict
        assert emu.model.cabinet.tripped
        await mbpoll(emu.url, "2", COILS, 1, write=[1])  # the reset coil, one FC5
        await emu.advance(0.1)
        assert (await mbpoll(emu.url, "2", INPUTS, 0, 1))[2] == [1]
        assert not emu.model.cabinet.tripped
    rows = _record(tmp_path / "record.csv")
    assert ("1", "R") in rows
    assert ("2", "G") in rows
    assert ("4", "G") in rows
