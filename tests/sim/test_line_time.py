"""``--line-time``: a pty made to cost what an RS-485 line at its baud rate would (for the
field bench). The arithmetic is checked exactly; the emulator with it still serves every
request in order (a bench measures the time, a test does not)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from firmware_sim import Emulator
from firmware_sim.rtu import char_time, frame_time

from .conftest import open_cabinet


def test_frame_time_is_eleven_bits_a_character_and_the_frame_gap() -> None:
    assert char_time(9600) == pytest.approx(11 / 9600)
    # 19200 and below: 3.5 characters of silence end a frame
    assert frame_time(8, 9600) == pytest.approx(11.5 * 11 / 9600)
    # above 19200 the standard fixes the gap at 1.75 ms
    assert frame_time(8, 115200) == pytest.approx(8 * 11 / 115200 + 0.00175)
    # cabinet-v1's FC4 answer of 110 registers at 38400 baud: 225 bytes, about 66 ms
    assert frame_time(5 + 220, 38400) == pytest.approx(0.0662, abs=1e-4)


async def test_requests_on_a_timed_pty_are_all_answered_in_order() -> None:
    async with open_cabinet("modbus+rtu://pty?baudrate=38400", line_time=True) as cab:
        for beat in range(1, 6):
            await cab.frame({2: 3}, heartbeat=beat)
            regs = await cab.read_inputs(4, 1)
            assert regs == [beat]  # the heartbeat echo of this very write
        assert cab.emu.summary()["wire"]["answered"] == 10


def test_line_time_is_for_a_pty_only() -> None:
    with pytest.raises(ValueError, match="pty"):
        Emulator(listen="modbus+tcp://127.0.0.1:0", line_time=True)
    # the CLI in its own process: it configures logging for the whole process
    argv = ["--listen", "modbus+tcp://127.0.0.1:0", "--line-time", "--duration", "1"]
    cli = [sys.executable, "-m", "firmware_sim", *argv]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "pty" in done.stderr
