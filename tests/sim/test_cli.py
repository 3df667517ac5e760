"""``python -m firmware_sim`` as a subprocess: the URL first, clean exit, summary written."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from .conftest import client_for

Spawn = Callable[..., Coroutine[Any, Any, asyncio.subprocess.Process]]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "firmware_sim",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:  # never leave a process behind, even when the test failed
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def first_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()


async def test_tcp_url_first_sigterm_writes_summary(spawn: Spawn, tmp_path: Path) -> None:
    summary, record = tmp_path / "s.json", tmp_path / "r.csv"
    proc = await spawn(
        "--listen",
        "modbus+tcp://127.0.0.1:0",
        "--seed",
        "3",
        "--profile",
        "builtin:two-phase",
        "--summary",
        str(summary),
        "--record",
        str(record),
        "--fault",
        "stuck:2@0+100",
    )
    url = await first_line(proc)
    assert url.startswith("modbus+tcp://127.0.0.1:")
    assert url.endswith("?unit=1")
    client = client_for(url)
    assert await client.connect()
    try:
        r = await client.write_registers(0, [1, 1, 4, 4] + [0] * 28 + [1], device_id=1)
        assert not r.isError()
        regs = (await client.read_input_registers(0, count=110, device_id=1)).registers
        assert regs[0] == 4
        assert regs[10:14] == [1, 1, 4, 4]
    finally:
        client.close()
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    data = json.loads(summary.read_text())
    assert data["channels"]["3"] == {"kind": "pedestrian", "phase": 2}
    assert data["conflicts"] == [[1, 2], [1, 4], [2, 3], [3, 4]]
    assert data["mmu"] == {"tripped": False, "latched": False, "faults": []}
    assert {"arrived", "served", "in_queue"} <= set(data["vehicles"])
    assert "delay_s_mean" in data
    assert data["frames_received"] == 1
    assert data["heartbeats"] == 1
    assert data["faults_injected"] == ["stuck:2@0+100"]
    rows = list(csv.reader(record.read_text().splitlines()))
    assert rows[0] == ["time_s", "channel", "state"]
    assert rows[1:5] == [["0.000", str(c), "FR"] for c in range(1, 5)]
    assert [r[1:] for r in rows[5:9]] == [["1", "R"], ["2", "R"], ["3", "DW"], ["4", "DW"]]


async def test_pty_url_first_and_duration(spawn: Spawn, tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    proc = await spawn(
        "--listen", "modbus+rtu://pty", "--duration", "1.5", "--summary", str(summary)
    )
    url = await first_line(proc)
    assert url.startswith("modbus+rtu:///dev/pts/")
    assert url.endswith("baudrate=115200&unit=1")
    client = client_for(url)
    assert await client.connect()
    try:
        r = await client.read_input_registers(0, count=110, device_id=1)
        assert not r.isError()
        assert r.registers[0] == 2
    finally:
        client.close()
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert json.loads(summary.read_text())["duration_s"] >= 1.4


async def test_bad_arguments_exit_2(spawn: Spawn) -> None:
    proc = await spawn("--fault", "explode:1")
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"unknown fault kind" in err
