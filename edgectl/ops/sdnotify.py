"""``sd_notify(3)`` written in-house: one AF_UNIX datagram per notification.

systemd passes the socket in ``$NOTIFY_SOCKET``: a filesystem path, or an abstract socket name
written with a leading ``@`` (the ``@`` stands for the NUL byte of the Linux abstract
namespace). When the variable is unset (not started by systemd, or ``Type=simple``) every call
is a no-op, so the daemon calls the notifier unconditionally.

A notification must never stall or crash the control loop: datagrams are sent with
``MSG_DONTWAIT``, and a failure is logged (once per run of failures) and counted in
:attr:`Notifier.failures`; no method raises.

The watchdog interval comes from ``$WATCHDOG_USEC`` (set by ``WatchdogSec=``), and applies to
this process only when ``$WATCHDOG_PID`` is unset or names it. systemd recommends pinging at
half the interval: :attr:`Notifier.watchdog_ping_interval`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

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

    def __init__(self, address: str | None = None, *, watchdog_usec: int | None = None) -> None:
        self._raw = address or ""
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

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: send only while the control loop is on time."""
        return self.notify("WATCHDOG=1")

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


def _one_line(text: str) -> str:
    return " ".join(text.split())
