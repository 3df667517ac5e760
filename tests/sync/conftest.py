"""Fixtures of the sync tests: a real mosquitto, a fake command handler, a consumer."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edgectl.config.settings import MqttSettings
from edgectl.errors import CommandError
from edgectl.sync.commands import Command, CommandResult
from edgectl.sync.service import SyncService
from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available

IID = "hz-0001"
PREFIX = "citybrain"

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


async def eventually(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"  # noqa: ASYNC109
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    topic: str
    payload: Any
    retain: bool
    properties: Any = None


class Consumer:
    """The centre's side in tests: subscribes and collects JSON messages."""

    def __init__(self, url: str, topics: str | list[str] = f"{PREFIX}/#", *,
                 client_id: str | None = None, persistent: bool = False,
                 protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311) -> None:
        from edgectl.sync.link import parse_broker_url

        addr = parse_broker_url(url)
        self._host, self._port = addr.host, addr.port
        self._topics = [topics] if isinstance(topics, str) else topics
        self._client_id = client_id
        self._persistent = persistent
        self._protocol = protocol
        self.messages: list[Received] = []
        self.connected = asyncio.Event()

    def on(self, topic_suffix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.endswith(topic_suffix)]

    async def run(self) -> None:
        """Collect until cancelled; reconnect (persistent session) when the broker restarts."""
        while True:
            try:
                v5 = self._protocol is aiomqtt.ProtocolVersion.V5
                async with aiomqtt.Client(
                    self._host, self._port, identifier=self._client_id,
                    clean_session=None if v5 else not self._persistent, protocol=self._protocol,
                ) as client:
                    for t in self._topics:
                        await client.subscribe(t, qos=1)
                    self.connected.set()
                    async for msg in client.messages:
                        raw = msg.payload
                        text = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
                        try:
                            payload = json.loads(text) if text else None
                        except ValueError:
                            payload = text
                        self.messages.append(
                            Received(str(msg.topic), payload, bool(msg.retain), msg.properties)
                        )
            except aiomqtt.MqttError:
                self.connected.clear()
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def consuming(url: str, topics: str | list[str] = f"{PREFIX}/#",
                    **kwargs: Any) -> AsyncIterator[Consumer]:
    consumer = Consumer(url, topics, **kwargs)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(consumer.run(), name="test[consumer]")
        try:
            async with asyncio.timeout(10):
                await consumer.connected.wait()
            yield consumer
        finally:
            task.cancel()


Waiter = Callable[[Callable[[], bool]], Awaitable[None]]
