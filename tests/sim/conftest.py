"""Fixtures: the emulator in-process on a virtual clock, reached by a plain pymodbus client
over real TCP and over the real pty pair the emulator makes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from firmware_sim import Emulator

TIMEOUT = 0.4  # client timeout (real seconds); the emulator answers in ~1 ms


@dataclass
class Cabinet:
    """An emulator and a client connected to it."""

    emu: Emulator
    client: Any  # AsyncModbusTcpClient | AsyncModbusSerialClient
    unit: int = 1

    async def read_inputs(self, address: int = 0, count: int = 110) -> list[int]:
        r = await self.client.read_input_registers(address, count=count, device_id=self.unit)
        assert not r.isError(), r
        return list(r.registers)

    async def write(self, address: int, values: list[int]) -> Any:
        return await self.client.write_registers(address, values, device_id=self.unit)

    async def frame(self, states: dict[int, int], heartbeat: int) -> None:
        """One FC16 write: 32 channel states + the heartbeat (unset channels R)."""
        regs = [states.get(c, 1) for c in range(1, 33)] + [heartbeat]
        r = await self.write(0, regs)
        assert not r.isError(), r


def client_for(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme == "modbus+tcp":
        return AsyncModbusTcpClient(
            parts.hostname or "", port=parts.port or 502, timeout=TIMEOUT, retries=0
        )
    baud = int(parse_qs(parts.query)["baudrate"][0])
    return AsyncModbusSerialClient(parts.path, baudrate=baud, timeout=TIMEOUT, retries=0)


@asynccontextmanager
async def open_cabinet(listen: str, **kwargs: Any) -> AsyncIterator[Cabinet]:
    kwargs.setdefault("clock", "virtual")
    kwargs.setdefault("seed", 7)
    async with Emulator(listen=listen, **kwargs) as emu:
        client = client_for(emu.url)
        assert await client.connect()
        try:
            yield Cabinet(emu, client)
        finally:
            client.close()


LISTEN = {"tcp": "modbus+tcp://127.0.0.1:0", "pty": "modbus+rtu://pty"}


@pytest.fixture(params=["tcp", "pty"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cabinet_factory(transport: str) -> Callable[..., Any]:
    """open_cabinet bound to the parametrised transport: ``async with factory(**kw) as cab``."""

    def make(**kwargs: Any) -> Any:
        return open_cabinet(LISTEN[transport], **kwargs)

    return make


@pytest.fixture
async def cabinet(transport: str) -> AsyncIterator[Cabinet]:
    async with open_cabinet(LISTEN[transport]) as cab:
        yield cab
