"""Hardware-in-the-loop helpers: the emulator and the daemon as real processes.

:class:`Emulator` (:class:`firmware_sim.process.EmulatorProcess`) runs ``python -m firmware_sim``
and reads the URL from its first line; :class:`DaemonProcess` runs ``python -m edgectl run`` as
systemd would. Both are stopped by PID (SIGTERM, then SIGKILL after a grace period) and never
outlive the ``with`` block; :data:`LIVE` holds the PIDs not yet reaped. The emulator's
``--record`` and ``--summary`` are the ground truth a test checks — not the daemon's own word.
Point :class:`DaemonProcess` at a real cabinet by giving it another URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgectl.config.limits import UNIT_STOP_TIMEOUT_S
from edgectl.sync.signing import read_key
from firmware_sim.process import LIVE, ManagedProcess, ProcessError, read_record
from firmware_sim.process import EmulatorProcess as Emulator

__all__ = [
    "LIVE",
    "DaemonProcess",
    "Emulator",
    "ManagedProcess",
    "ProcessError",
    "read_record",
    "running",
]


@dataclass
class DaemonProcess:
    """``edgectl run`` in a subprocess, as systemd would run it."""

    workdir: Path
    config: Path
    field_url: str
    broker: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra: Sequence[str] = ()
    name: str = "daemon"
    process: ManagedProcess | None = None
    #: the command key of a daemon given a broker (signed commands are required, as in the
    #: field): the config's ``[mqtt] command_key_file`` or, if it names none, a fresh key
    #: written at start; sign with ``build_command(..., key=daemon.command_key)``
    command_key: bytes | None = None

    @property
    def state_dir(self) -> Path:
        return self.workdir / f"{self.name}-state"

    def start(self) -> DaemonProcess:
        self.state_dir.mkdir(exist_ok=True)
        env = dict(self.env)
        if self.broker and "EDGECTL_MQTT__ALLOW_UNSIGNED_COMMANDS" not in env:
            configured = _configured_key_file(self.config, env)
            if configured is None:
                configured = self.workdir / f"{self.name}-command.key"
                fd = os.open(configured, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(secrets.token_hex(32) + "\n")
                env["EDGECTL_MQTT__COMMAND_KEY_FILE"] = str(configured)
            self.command_key = read_key(configured)  # the first key of the file
        argv = [
            sys.executable,
            "-m",
            "edgectl",
            "run",
            "--config",
            str(self.config),
            "--field",
            self.field_url,
            "--state-dir",
            str(self.state_dir),
            "--metrics",
            "",
            "--log-json",
        ]
        if self.broker:
            argv += ["--broker", self.broker]
        argv += list(self.extra)
        self.process = ManagedProcess(argv, self.workdir / f"{self.name}.log", env=env)
        self.process.start()
        return self

    def log_events(self) -> list[dict[str, Any]]:
        """The daemon's JSON log lines (syslog prefix stripped)."""
        assert self.process is not None
        events = []
        for line in self.process.output().splitlines():
            text = line[line.find("{") :] if "{" in line else ""
            with contextlib.suppress(ValueError):
                events.append(json.loads(text))
        return events

    def wait_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """Wait for a log event matching ``predicate``; raise on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.log_events():
                if predicate(ev):
                    return ev
            if self.process is not None and not self.process.running():
                raise ProcessError(f"daemon exited: {self.process.output()[-3000:]}")
            time.sleep(0.1)
        assert self.process is not None
        raise ProcessError(f"no matching log event in {timeout} s: {self.process.output()[-3000:]}")

    def stop(self, timeout: float = UNIT_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` s: by default as long as systemd waits
        (``TimeoutStopSec=``), which a valid config's safe hand-over to flash fits in — a
        pedestrian's walk and clearance that just began are not cut short."""
        return None if self.process is None else self.process.stop(timeout)


def _configured_key_file(config: Path, env: dict[str, str]) -> Path | None:
    """The command key file the daemon will use: the environment's, else the config's."""
    if "EDGECTL_MQTT__COMMAND_KEY_FILE" in env:
        return Path(env["EDGECTL_MQTT__COMMAND_KEY_FILE"])
    with config.open("rb") as f:
        named = tomllib.load(f).get("mqtt", {}).get("command_key_file")
    if not named:
        return None
    return Path(named)


@contextlib.contextmanager
def running(*things: Emulator | DaemonProcess) -> Iterator[None]:
    """Start in order, stop in reverse order, whatever happens in between."""
    started: list[Emulator | DaemonProcess] = []
    try:
        for thing in things:
            thing.start()
            started.append(thing)
        yield
    finally:
        for thing in reversed(started):
            with contextlib.suppress(Exception):
                thing.stop()
