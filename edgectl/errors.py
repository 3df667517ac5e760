"""The exceptions edgectl raises.

::

    EdgectlError
    ├── ConfigError              invalid configuration or plan; carries every problem
    ├── FieldError               field-device I/O (Modbus TCP/RTU)
    │   ├── RetryableFieldError  worth another try: timeout, connection lost, bad frame
    │   │   ├── DeviceTimeout
    │   │   ├── DeviceUnavailable
    │   │   └── FrameError       corrupt / malformed response
    │   └── FatalFieldError      retrying will not help: bad URL, unknown profile, exception
    │       └── DeviceException  the device answered with a Modbus exception code
    ├── SyncError                MQTT link and outbox
    │   └── PublishRefused       the broker refused a publish (MQTT 5 reason code >= 0x80)
    └── CommandError             a command refused; carries a specific ``code``

Library exceptions (pymodbus, aiomqtt, sqlite3) are translated at the layer boundary with
``raise ... from exc``; callers decide on retry by type, never by message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class EdgectlError(Exception):
    """Base of every edgectl exception."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: where it is (a dotted path into the file) and what."""

    path: str
    message: str
    severity: str = "error"  # "error" rejects; "warning" is reported only

    def __str__(self) -> str:
        where = self.path or "<root>"
        return f"{self.severity}: {where}: {self.message}"


class ConfigError(EdgectlError):
    """A configuration or plan is invalid. ``problems`` names every one of them."""

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        errors = [p for p in self.problems if p.severity == "error"]
        super().__init__(f"{head}{len(errors)} problem(s): " + "; ".join(map(str, errors[:5])))


class FieldError(EdgectlError):
    """Field-device I/O failed."""

    def __init__(self, message: str, *, device: str = "") -> None:
        self.device = device
        super().__init__(f"{device}: {message}" if device else message)


class RetryableFieldError(FieldError):
    """Transient: another attempt may succeed."""


class DeviceTimeout(RetryableFieldError, TimeoutError):
    """No (complete) response within the timeout; also a :class:`TimeoutError` (which is
    :class:`asyncio.TimeoutError`), so ``except TimeoutError`` catches it too."""


class DeviceUnavailable(RetryableFieldError):
    """Not connected / connection lost / port cannot be opened right now."""


class FrameError(RetryableFieldError):
    """A corrupt or malformed response (bad CRC, wrong length, wrong register count)."""


class FatalFieldError(FieldError):
    """Retrying will not help (bad URL, unknown profile, illegal address)."""


class DeviceException(FatalFieldError):
    """The device answered with a Modbus exception response."""

    def __init__(self, message: str, *, device: str = "", exception_code: int = 0) -> None:
        self.exception_code = exception_code
        super().__init__(message, device=device)


class SyncError(EdgectlError):
    """MQTT link or outbox failure."""


class PublishRefused(SyncError):
    """The broker answered a publish with a failure reason code (MQTT 5 PUBACK >= 0x80)."""

    def __init__(self, topic: str, reason_code: int, reason: str = "") -> None:
        self.topic = topic
        self.reason_code = reason_code
        super().__init__(f"publish to {topic} refused: {reason or reason_code} ({reason_code:#x})")


class CommandError(EdgectlError):
    """A command was refused. ``code`` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
