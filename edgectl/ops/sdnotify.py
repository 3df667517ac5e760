"""``sd_notify(3)`` written in-house: one AF_UNIX datagram per notification.

systemd passes the socket in ``$NOTIFY_SOCKET``: a filesystem path, or an abstract socket name
written with a leading ``@`` (the ``@`` stands for the NUL byte of the Linux abstract
namespace). When the variable is unset (not started by systemd, or ``Type=simple``) every call
is a no-op, so the daemon calls the notifier unconditionally.

A notification must never stall or crash the control loop: datagrams are sent with
``MSG_DONTWAIT``, and a failure is logged (once per run of failures) and counted in
:attr:`Notifier.failures`; no method raises.

The watchdog interval comes from ``$WATCHDOG_USEC`` (set by ``WatchdogSec=``), and applies to
this process only when ``$WATCHDOG_PID`` is unset or names it. systemd wants a ping at least
every half interval (:attr:`Notifier.watchdog_ping_interval`); :meth:`Notifier.watchdog` may be
called on every control tick and sends one every quarter interval
(:attr:`Notifier.watchdog_spacing`), so a wedged loop is noticed within one interval.

:class:`NotifyListener` is the other end — what systemd does — for tests and supervisors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

log = structlog.get_logger("edgectl.ops")


def _address(raw: str) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace
    if raw.startswith("/"):
        return raw
    return None  # systemd only ever passes absolute paths or abstract names


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Talks to the service manager. Build it with :meth:`from_env` in the entry point.

    ``address`` is the raw ``$NOTIFY_SOCKET`` value (``/run/...`` or ``@name``); empty or
    ``None`` disables notifications. ``watchdog_usec`` is the raw ``$WATCHDOG_USEC``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        watchdog_usec: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._raw = address or ""
        self._clock = clock
        self._last_watchdog: float | None = None
        self._address = _address(self._raw)
        self._sock: socket.socket | None = None
        self._failing = False
        self.failures = 0
        self.sent = 0
        self.watchdog_timeout: float | None = (
            watchdog_usec / 1_000_000 if watchdog_usec and watchdog_usec > 0 else None
        )
        if self._raw and self._address is None:
            log.warning("notify_socket_invalid", notify_socket=self._raw)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "")
        if not pid or pid.strip() == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", "") or 0) or None
            except ValueError:
                log.warning("watchdog_usec_invalid", watchdog_usec=env.get("WATCHDOG_USEC"))
        return cls(env.get("NOTIFY_SOCKET"), watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (``$NOTIFY_SOCKET`` was usable)."""
        return self._address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self.enabled and self.watchdog_timeout is not None

    @property
    def watchdog_ping_interval(self) -> float | None:
        """How often to send ``WATCHDOG=1``: half of ``WatchdogSec=``, or ``None`` when off."""
        return None if self.watchdog_timeout is None else self.watchdog_timeout / 2

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram. True when it was handed to the socket."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL, self._address)
        except OSError as exc:
            self.failures += 1
            self.close()
            if not self._failing:
                log.warning("sd_notify_failed", notify_socket=self._raw, error=str(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("sd_notify_restored", notify_socket=self._raw, failures=self.failures)
        self._failing = False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (the field is polled, the junction is safe)."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """``STATUS=``: one line shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    @property
    def watchdog_spacing(self) -> float:
        """Least time between two ``WATCHDOG=1``: a quarter of ``WatchdogSec=`` (0 if unknown).

        systemd asks for a ping at least every half interval; a quarter leaves room for one
        late ping. The receive queue of a datagram socket holds only a few messages
        (``net.unix.max_dgram_qlen``), so pinging every 0.1 s tick would only add load.
        """
        return 0.0 if self.watchdog_timeout is None else self.watchdog_timeout / 4

    def watchdog(self, *, force: bool = False) -> bool:
        """``WATCHDOG=1``; call it after every on-time tick, it sends when one is due.

        True when a datagram was sent now; False when none was due yet (within
        :attr:`watchdog_spacing` of the last one), notifications are off, or sending failed.
        """
        now = self._clock()
        if (
            not force
            and self._last_watchdog is not None
            and now - self._last_watchdog < self.watchdog_spacing
        ):
            return False
        sent = self.notify("WATCHDOG=1")
        if sent:
            self._last_watchdog = now
        return sent

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with the ``MONOTONIC_USEC=`` that ``Type=notify-reload`` wants.

        Follow it with :meth:`ready` once the reload is done (or refused).
        """
        lines = ["RELOADING=1", f"MONOTONIC_USEC={_monotonic_usec()}"]
        if status:
            lines.append(f"STATUS={_one_line(status)}")
        return self.notify(*lines)

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: the safe hand-over has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- the service manager's side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One datagram as the service manager sees it."""

    at: float  # time.monotonic() when it was read
    fields: Mapping[str, str]  # READY → "1", STATUS → "…"
    pid: int | None  # the sender's pid (SCM_CREDENTIALS), None if not passed

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)


class NotifyListener:
    """What systemd does for ``Type=notify``: a datagram socket that receives notifications.

    For tests and for supervisors (``edgectl demo`` waits for a child's ``READY=1``). Put
    :meth:`env` into the child's environment; every datagram read is kept in
    :attr:`received`, with the sender's pid (the kernel's ``SCM_CREDENTIALS``, as systemd
    uses for ``NotifyAccess=main``). ``directory=None`` uses an abstract socket name.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            if directory is None:
                name = f"edgectl-notify-{os.getpid()}-{uuid.uuid4().hex[:12]}"
                self._sock.bind(b"\0" + name.encode())
                self.address = "@" + name
            else:
                path = os.path.join(os.fspath(directory), f"notify-{uuid.uuid4().hex[:8]}")
                self._sock.bind(path)
                self.address = path
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise
        self.received: list[Notification] = []

    def env(self, *, watchdog_sec: float | None = None, pid: int | None = None) -> dict[str, str]:
        """``NOTIFY_SOCKET`` (and ``WATCHDOG_USEC``/``WATCHDOG_PID``) for a child."""
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_sec is not None:
            env["WATCHDOG_USEC"] = str(round(watchdog_sec * 1_000_000))
            if pid is not None:
                env["WATCHDOG_PID"] = str(pid)
        return env

    def _read(self) -> Notification | None:
        try:
            data, ancdata, _flags, _addr = self._sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("3i"))
            )
        except BlockingIOError:
            return None
        pid: int | None = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
        text = data.decode("utf-8", "replace")
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        note = Notification(at=time.monotonic(), fields=fields, pid=pid)
        self.received.append(note)
        return note

    def receive(self, timeout: float) -> Notification:
        """The next notification (blocking). Raises :class:`TimeoutError`."""
        deadline = time.monotonic() + timeout
        while (note := self._read()) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                raise TimeoutError(f"no notification within {timeout} s")
        return note

    async def next(self) -> Notification:
        """The next notification; wrap it in ``asyncio.timeout()``."""
        loop = asyncio.get_running_loop()
        while (note := self._read()) is None:
            ready: asyncio.Future[None] = loop.create_future()
            fd = self._sock.fileno()
            loop.add_reader(fd, _resolve, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        return note

    async def wait_for(self, key: str, value: str | None = None) -> Notification:
        """The next notification that has ``key`` (equal to ``value`` when given)."""
        while True:
            note = await self.next()
            if key in note.fields and (value is None or note.fields[key] == value):
                return note

    def drain(self) -> list[Notification]:
        """Read whatever is queued now, without waiting."""
        got = []
        while (note := self._read()) is not None:
            got.append(note)
        return got

    def close(self) -> None:
        self._sock.close()
        if not self.address.startswith("@"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
