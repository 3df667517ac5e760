"""Fixtures of the sync tests: a fake command handler, a consumer (the brokers come from
:mod:`edgectl.testing.pytest_plugin`)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.settings import MqttSettings
from edgectl.errors import CommandError
from edgectl.sync.commands import Command, CommandResult
from edgectl.sync.service import SyncService
from edgectl.testing.consumer import Consumer, Received, consuming, eventually

IID = "hz-0001"
PREFIX = "citybrain"
__all__ = ["Consumer", "Received", "consuming", "eventually"]  # shared with the test modules

BROKER_FIXTURES = {"broker", "persistent_broker", "tls_broker", "target"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a real broker are marked ``mqtt`` (``-m "not mqtt"`` skips them)."""
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.path)).parents:
            continue
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())) or "Broker(" in source:
            item.add_marker(pytest.mark.mqtt)


@dataclass
class FakeHandler:
    """Records what it is asked to apply; refuses with ``refuse`` (a CommandError) if set."""

    applied: list[Command] = field(default_factory=list)
    refuse: CommandError | None = None

    def apply(self, command: Command) -> CommandResult:
        if self.refuse is not None:
            raise self.refuse
        self.applied.append(command)
        return CommandResult(message=f"{command.type} applied")


@pytest.fixture
def handler() -> FakeHandler:
    return FakeHandler()


def settings(url: str, **overrides: Any) -> MqttSettings:
    base: dict[str, Any] = {
        "url": url,
        "events_batch_s": 0.1,
        "state_interval_s": 1.0,
        "backoff_initial": 0.05,
        "backoff_max": 0.3,
        "keepalive": 5,
    }
    base.update(overrides)
    # a bench: the tests that send unsigned commands opt in, as an operator would have to
    base.setdefault("allow_unsigned_commands", base.get("command_key_file") is None)
    return MqttSettings(**base)


def make_service(url: str, state_dir: Path, handler: FakeHandler, **overrides: Any) -> SyncService:
    return SyncService(
        settings(url, **overrides),
        intersection_id=IID,
        state_dir=state_dir,
        handler=handler,
        version="0.1.0-test",
        config_digest="sha256:abc",
    )


@contextlib.asynccontextmanager
async def running(
    service: SyncService, *, close_timeout: float = 3.0
) -> AsyncIterator[SyncService]:
    """Run the service in a TaskGroup for the body; close it cleanly afterwards."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(service.run(), name="test[sync:run]")
        try:
            yield service
        finally:
            await service.close(timeout=close_timeout)
            if not task.done():
                task.cancel()


Waiter = Callable[[Callable[[], bool]], Awaitable[None]]
