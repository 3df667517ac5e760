"""The emulator as a child process: ``python -m firmware_sim``, its URL read from its first line.

:class:`EmulatorProcess` is what ``edgectl demo``, the hardware-in-the-loop tests and the
bench run: a real cabinet on a port of its own, stopped by PID (SIGTERM, then SIGKILL after a
grace period). Its ``--record`` and ``--summary`` are the ground truth of a run.
:class:`ManagedProcess` is the plain child process underneath (output captured to a file,
stopped by PID); ``edgectl.testing.hil`` runs the daemon with it too. :data:`LIVE` holds the
PIDs started here and not yet reaped, so a test can tell that none outlived it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["LIVE", "EmulatorProcess", "ManagedProcess", "ProcessError", "read_record"]

LIVE: set[int] = set()  # PIDs of processes started here and not yet reaped (leak check)


class ProcessError(RuntimeError):
    """A helper process failed to start or exited unexpectedly."""


@dataclass
class ManagedProcess:
    """A child process whose output is captured to a file and which is stopped by PID."""

    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[str] | None = None
    first_line: str = ""
    _log: IO[str] | None = None
    _pump: threading.Thread | None = None
    _lines: list[str] = field(default_factory=list)
    _line_ready: threading.Event = field(default_factory=threading.Event)

    def start(self, *, wait_first_line: float | None = None) -> ManagedProcess:
        self._log = self.log_path.open("w", encoding="utf-8")
        env = dict(os.environ)
        env.update(self.env or {})
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            list(self.argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        LIVE.add(self.proc.pid)
        self._pump = threading.Thread(target=self._copy, name=f"pump-{self.proc.pid}", daemon=True)
        self._pump.start()
        if wait_first_line is not None:
            if not self._line_ready.wait(wait_first_line):
                self.stop()
                raise ProcessError(f"{self.argv[:4]} printed nothing in {wait_first_line} s")
            self.first_line = self._lines[0].strip()
        return self

    def _copy(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        assert self._log is not None
        for line in self.proc.stdout:
            if not self._lines:
                self._lines.append(line)
                self._line_ready.set()
            self._log.write(line)
            self._log.flush()
        self._line_ready.set()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.running():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._reap()
        return code

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reap()
        return self.proc.returncode

    def kill(self) -> None:
        """``kill -9``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            LIVE.discard(self.proc.pid)
            if self._pump is not None:
                self._pump.join(5)
            if self.proc.stdout is not None and not self.proc.stdout.closed:
                self.proc.stdout.close()
            if self._log is not None and not self._log.closed:
                self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class EmulatorProcess:
    """``firmware-sim`` in a subprocess."""

    workdir: Path
    listen: str = "modbus+tcp://127.0.0.1:0"
    profile: str = "builtin:nema-cabinet"
    seed: int = 1
    faults: Sequence[str] = ()
    extra: Sequence[str] = ()
    name: str = "sim"
    process: ManagedProcess | None = None
    url: str = ""
    started_at: float = 0.0  # time.monotonic() when the URL line arrived (≈ emulator t = 0)

    def now(self) -> float:
        """The emulator's clock (its record's ``time_s``), from this process's monotonic clock."""
        return time.monotonic() - self.started_at

    @property
    def record_path(self) -> Path:
        return self.workdir / f"{self.name}-record.csv"

    @property
    def summary_path(self) -> Path:
        return self.workdir / f"{self.name}-summary.json"

    def start(self) -> EmulatorProcess:
        argv = [
            sys.executable,
            "-m",
            "firmware_sim",
            "--listen",
            self.listen,
            "--profile",
            self.profile,
            "--seed",
            str(self.seed),
            "--record",
            str(self.record_path),
            "--summary",
            str(self.summary_path),
        ]
        for spec in self.faults:
            argv += ["--fault", spec]
        argv += list(self.extra)
        self.process = ManagedProcess(argv, self.workdir / f"{self.name}.log")
        self.process.start(wait_first_line=20.0)
        self.started_at = time.monotonic()
        self.url = self.process.first_line
        if "://" not in self.url:
            out = self.process.output()
            self.process.stop()
            raise ProcessError(f"emulator did not print a URL first: {out[-2000:]}")
        return self

    def stop(self) -> dict[str, Any]:
        if self.process is not None:
            code = self.process.stop()
            if code not in (0, None, -signal.SIGTERM):
                raise ProcessError(f"emulator exited {code}: {self.process.output()[-2000:]}")
        return self.summary()

    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.summary_path.read_text(encoding="utf-8")))

    def record(self) -> list[tuple[float, int, str]]:
        return read_record(self.record_path)


def read_record(path: Path) -> list[tuple[float, int, str]]:
    """The emulator's ``--record`` CSV: ``(time_s, channel, state)`` rows."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [(float(r["time_s"]), int(r["channel"]), r["state"]) for r in csv.DictReader(fh)]
