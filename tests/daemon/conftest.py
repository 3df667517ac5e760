"""Shared pieces of the daemon tests: a broker of their own, and daemons running in a task group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from edgectl.daemon.loop import Daemon
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    if not mosquitto_available():
        pytest.skip(SKIP_REASON)
    with MosquittoBroker() as b:
        yield b


@contextlib.asynccontextmanager
async def running(*daemons: Daemon) -> AsyncIterator[None]:
    """Run ``daemons`` for the block; stop them (and wait for them) when it ends."""
    async with asyncio.TaskGroup() as tg:
        for d in daemons:
            tg.create_task(d.run(), name=f"test[daemon:{d.config.intersection.id}]")
        try:
            yield
        finally:
            for d in daemons:
                d.request_stop()
