"""Shared pieces of the daemon tests: daemons running in a task group (``broker`` comes from
:mod:`edgectl.testing.pytest_plugin`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from edgectl.daemon.loop import Daemon


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
