"""What every broker launcher shares: one process, a private directory, free loopback ports.

:class:`BrokerProcess` writes the broker's configuration (a subclass's ``_configure``) into a
private temporary directory, starts the program with its output in a log file there,
waits until every listener accepts a connection, and stops it by PID. ``stop()`` /
``start()`` restart it on the SAME ports, which is what outage tests need. It is both a sync
and an async context manager (start-up takes milliseconds and is done synchronously in both
cases). The PID is kept in :data:`firmware_sim.process.LIVE` while it runs, so the leak check
of :mod:`edgectl.testing.pytest_plugin` sees a broker left behind.
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
from typing import ClassVar, Self

from firmware_sim.process import LIVE

__all__ = ["BrokerProcess", "free_port", "port_accepts"]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_accepts(port: int) -> bool:
    """Whether something accepts a TCP connection on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


BIND_ATTEMPTS = 3


class _PortTaken(Exception):
    """The broker exited at start: its port was taken meanwhile."""


class BrokerProcess:
    """One broker process on its own loopback port(s); subclasses say which and how.

    A subclass sets :attr:`program`, :attr:`skip_reason` and the file names, writes its
    configuration in :meth:`_configure` (choosing its ports there) and says in
    :meth:`_accepts` when it is ready.
    """

    program: ClassVar[Path]
    skip_reason: ClassVar[str]
    config_name: ClassVar[str]
    log_name: ClassVar[str]
    poll_s: ClassVar[float] = 0.01  # between readiness probes at start-up
    stop_timeout: ClassVar[float] = 5.0  # default grace after SIGTERM

    def __init__(self, *, start_timeout: float) -> None:
        self._start_timeout = start_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = False  # once started, restarts keep the port(s)
        self.port = 0

    @classmethod
    def available(cls) -> bool:
        return cls.program.exists() and os.access(cls.program, os.X_OK)

    # --- paths and URLs ---

    @property
    def directory(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("broker not set up")
        return Path(self._tmp.name)

    @property
    def log_path(self) -> Path:
        return self.directory / self.log_name

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- what a subclass says ---

    def _configure(self, directory: Path) -> None:
        """Choose the ports and write :attr:`config_name` into ``directory``."""
        raise NotImplementedError

    def _accepts(self) -> bool:
        """Whether every listener accepts connections."""
        return port_accepts(self.port)

    # --- lifecycle ---

    def _setup(self) -> None:
        if not self.available():
            raise RuntimeError(self.skip_reason)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"edgectl-{Path(self.config_name).stem}-")
        self._configure(self.directory)

    def start(self) -> None:
        """Start (or restart after :meth:`stop`) on the same port(s). A first start whose
        port another process took between choosing it and binding it ("Address already in
        use": tests run in parallel) is tried again on fresh ports."""
        if self._tmp is None:
            self._setup()
        if self.running:
            return
        for attempt in range(BIND_ATTEMPTS):
            try:
                self._launch()
            except _PortTaken:
                if self._started or attempt == BIND_ATTEMPTS - 1:
                    raise RuntimeError(
                        f"{self.program.name} could not bind its port:\n{self.log()}"
                    ) from None
                self._configure(self.directory)  # fresh ports
            else:
                self._started = True
                return

    def _launch(self) -> None:
        name = self.program.name
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.program), "-c", str(self.directory / self.config_name)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        LIVE.add(self._proc.pid)
        deadline = time.monotonic() + self._start_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._forget()
                if "address already in use" in self.log()[offset:].lower():
                    raise _PortTaken
                raise RuntimeError(f"{name} exited with {code}:\n{self.log()}")
            if self._accepts():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{name} did not start listening:\n{self.log()}")
            time.sleep(self.poll_s)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); it can be started again on the same port."""
        proc = self._proc
        if proc is None:
            return
        grace = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
        self._forget()

    def kill(self) -> None:
        """SIGKILL by PID: the broker vanishes without closing anything gracefully."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5.0)
        self._forget()

    def _forget(self) -> None:
        if self._proc is not None:
            LIVE.discard(self._proc.pid)
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

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
