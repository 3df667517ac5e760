"""Daemon-level proof of issue 7: ``edgectl run`` as systemd runs it, against firmware_sim.

Each module runs ONE real session (emulator + daemon, sometimes a mosquitto) in a
module-scoped fixture that starts, drives and stops everything before its first test, and
hands the tests what it observed: notifications, log events, scrapes, the emulator's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from edgectl.ops.sdnotify import NotifyListener
from edgectl.testing.hil import DaemonProcess

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "edgectl" / "examples" / "eight_phase.toml"


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    daemon: DaemonProcess | None = None,
    listener: NotifyListener | None = None,
) -> Any:
    """Poll ``condition`` every 50 ms until it is truthy; fail after ``timeout`` s (or at once
    when ``daemon`` has exited). ``listener`` is drained meanwhile, as systemd would."""
    deadline = time.monotonic() + timeout
    while True:
        if listener is not None:
            listener.drain()
        value = condition()
        if value:
            return value
        if daemon is not None and daemon.process is not None and not daemon.process.running():
            raise AssertionError(
                f"daemon exited while waiting for {what}: {daemon.process.output()[-3000:]}"
            )
        if time.monotonic() > deadline:
            tail = daemon.process.output()[-3000:] if daemon and daemon.process else ""
            raise AssertionError(f"no {what} within {timeout} s\n{tail}")
        time.sleep(0.05)


def events_named(daemon: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


class MqttTap:
    """The centre's side in a thread of its own: subscribes to ``topics`` (QoS 1) and keeps
    every JSON message; :meth:`publish` sends one. Use as a context manager."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.port = port
        self.topics = topics
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="mqtt-tap", daemon=True)

    def __enter__(self) -> MqttTap:
        self._thread.start()
        if not self._subscribed.wait(10.0):
            raise AssertionError(f"MQTT tap did not subscribe: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10.0)
        assert not self._thread.is_alive()

    def _main(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            async with aiomqtt.Client("127.0.0.1", self.port) as client:
                self._client = client
                for topic in self.topics:
                    await client.subscribe(topic, qos=1)
                self._subscribed.set()
                async for message in client.messages:
                    raw = message.payload
                    if isinstance(raw, bytes | bytearray | str):
                        self.messages.append((str(message.topic), json.loads(raw)))
        except Exception as exc:
            self._error = exc
            raise

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        assert self._loop is not None and self._client is not None
        future = asyncio.run_coroutine_threadsafe(
            self._client.publish(topic, json.dumps(payload), qos=1), self._loop
        )
        future.result(10.0)

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [m for t, m in list(self.messages) if t.endswith(suffix)]

    def event_codes(self) -> list[int]:
        """Codes of every hi-res event received on ``…/events``."""
        return [int(e[1]) for m in self.on("/events") for e in m.get("events", [])]


def scrape(url: str) -> dict[str, float]:
    """One GET of a Prometheus endpoint: ``{'name{labels}': value}``."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
