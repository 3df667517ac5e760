"""Fixtures of the sync tests: a real mosquitto, a fake command handler, a consumer."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.settings import MqttSettings
from edgectl.errors import CommandError
from edgectl.sync.commands import Command, CommandResult
from edgectl.sync.service import SyncService
from edgectl.testing.consumer import Consumer, Received, consuming, eventually
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

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


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves asyncio tasks running or child processes behind."""
    before = _children()
    yield
    leaked = sorted(_children() - before - _module_broker_pids(request))
    assert not leaked, f"test leaked child processes {leaked}"


def _children() -> set[int]:
    me = str(os.getpid())
    out: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _module_broker_pids(request: pytest.FixtureRequest) -> set[int]:
    if "tls_broker" not in request.fixturenames:
        return set()
    pid = request.getfixturevalue("tls_broker").pid
    return set() if pid is None else {pid}


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


def _need_mosquitto() -> None:
    if not mosquitto_available():
        pytest.skip(SKIP_REASON)


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    _need_mosquitto()
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoBroker]:
    _need_mosquitto()
    with MosquittoBroker(persistence=True) as b:
        yield b


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[MosquittoBroker]:
    _need_mosquitto()
    with MosquittoBroker(tls=True, unix_socket=True) as b:
        yield b


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
