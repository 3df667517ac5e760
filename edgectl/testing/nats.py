"""A real NATS server with its MQTT gateway, for tests: Debian's ``/usr/sbin/nats-server``.

NATS speaks MQTT 3.1.1 only (QoS 0/1, retained messages and wills stored in JetStream), so it
proves the sync layer runs on a clustered engine and not only on mosquitto::

    with NatsBroker() as nats:
        settings = MqttSettings(url=nats.url, protocol="3.1.1")

Same shape as :class:`edgectl.testing.mosquitto.MosquittoBroker`: a generated config
(``server_name``, ``jetstream``, ``mqtt { listen }``) in a private temporary directory, free
loopback ports, ``stop()``/``start()`` on the same ports (JetStream keeps retained messages
and sessions across a restart), kill by PID at exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from edgectl.testing.mosquitto import free_port

NATS_SERVER = Path("/usr/sbin/nats-server")
SKIP_REASON = "nats-server is not installed (/usr/sbin/nats-server); run the project's setup script"


def nats_available() -> bool:
    return NATS_SERVER.exists() and os.access(NATS_SERVER, os.X_OK)


class NatsBroker:
    """One nats-server with JetStream and an MQTT listener on loopback."""

    def __init__(self, *, start_timeout: float = 15.0) -> None:
        self._start_timeout = start_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0  # the MQTT port
        self.client_port = 0  # the NATS protocol port

    @property
    def directory(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("broker not set up")
        return Path(self._tmp.name)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "nats.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _setup(self) -> None:
        if not nats_available():
            raise RuntimeError(SKIP_REASON)
        self._tmp = tempfile.TemporaryDirectory(prefix="edgectl-nats-")
        d = self.directory
        self.port = free_port()
        self.client_port = free_port()
        (d / "nats.conf").write_text(
            f'server_name: "edgectl-test-{self.client_port}"\n'
            f'listen: "127.0.0.1:{self.client_port}"\n'
            f'jetstream {{\n  store_dir: "{d / "js"}"\n}}\n'
            f'mqtt {{\n  listen: "127.0.0.1:{self.port}"\n}}\n'
        )

    def start(self) -> None:
        if self._tmp is None:
            self._setup()
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(NATS_SERVER), "-c", str(self.directory / "nats.conf")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + self._start_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                raise RuntimeError(f"nats-server exited with {code}:\n{self.log()}")
            if self._accepts():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nats-server did not start listening:\n{self.log()}")
            time.sleep(0.02)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        self._proc = None

    def kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5.0)
        self._proc = None

    def close(self) -> None:
        self.kill()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
