"""Daemon settings: field devices, MQTT link, state directory, observability.

These sections sit in the same TOML file as the intersection (``[field]``, ``[mqtt]``,
``[daemon]``) and can be overridden by ``EDGECTL_*`` environment variables, ``__`` for
nesting (``EDGECTL_MQTT__URL=mqtts://broker:8883``).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

from pydantic import Field

from edgectl.frozen import Frozen

DeviceUrl = Annotated[
    str,
    Field(
        pattern=r"^(modbus\+tcp://[^/?#]+|modbus\+rtu://[^?#]+|memory://[^?#]*)(\?.*)?$",
        description="modbus+tcp://host:port?unit=1 or modbus+rtu:///dev/ttyUSB0?baudrate=115200",
    ),
]


class DeviceRole(enum.StrEnum):
    CABINET = "cabinet"  # detectors + outputs + MMU in one unit (the emulator's layout)
    DETECTORS = "detectors"  # a detector card only
    OUTPUTS = "outputs"  # load switches + MMU only


class Device(Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: DeviceUrl
    role: DeviceRole = DeviceRole.CABINET
    profile: str = Field(
        default="builtin:nema-cabinet",
        description="Register-map profile: builtin:NAME or a path to a profile TOML",
    )
    timeout: float = Field(default=0.08, gt=0.0, le=10.0, description="Per-request timeout")
    retries: int = Field(default=1, ge=0, le=10, description="Retries of one request")
    backoff_initial: float = Field(default=0.2, gt=0.0, le=60.0)
    backoff_max: float = Field(default=5.0, gt=0.0, le=600.0)
    inter_request_gap: float = Field(
        default=0.004, ge=0.0, le=1.0, description="Silence between requests on a shared bus"
    )


class FieldSettings(Frozen):
    devices: tuple[Device, ...] = Field(default=(), max_length=16)
    tick: float = Field(default=0.1, ge=0.05, le=1.0, description="Control tick (0.1 s = 10 Hz)")
    detector_loss_s: float = Field(
        default=1.0, gt=0.0, le=10.0, description="Detector device silent this long → failed"
    )
    zone_poll_s: float = Field(
        default=0.1,
        ge=0.05,
        le=5.0,
        description="Zone sensors are read at most this often, each time after the tick's "
        "frame is written (on a shared RS-485 line 0.5 keeps their long reads away from "
        "most frames; docs/field.md#zone-sensors)",
    )


class MqttProtocol(enum.StrEnum):
    V5 = "5"
    V311 = "3.1.1"


class MqttSettings(Frozen):
    url: str = Field(
        default="",
        description="mqtt://host:1883, mqtts://host:8883, unix:///path; empty = off; "
        "no credentials in it (username_file, password_file)",
    )
    failover_urls: tuple[str, ...] = Field(
        default=(),
        max_length=8,
        description="More brokers of the same cluster, tried in turn after url when a "
        "connection fails or drops (same credentials, TLS and checks as url)",
    )
    prefix: str = Field(default="citybrain", pattern=r"^[A-Za-z0-9_/-]{1,64}$")
    protocol: MqttProtocol = MqttProtocol.V5
    client_id: str = Field(default="", max_length=64, description="Defaults to edgectl-{id}")
    keepalive: int = Field(default=30, ge=5, le=3600)
    username_file: Path | None = None
    password_file: Path | None = None
    allow_plaintext_password: bool = Field(
        default=False,
        description="Allow password_file over plain mqtt:// (sent in clear; check-config warns)",
    )
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    command_key_file: Path | None = Field(
        default=None,
        description="HMAC-SHA256 key(s) for command signatures, one a line as KEYID:SECRET or "
        "a bare secret, at most 8, re-read on reload (required with a broker unless "
        "allow_unsigned_commands)",
    )
    allow_unsigned_commands: bool = Field(
        default=False,
        description="Accept unsigned commands when no command_key_file is set: anyone with "
        "publish rights could flash, hold or preempt the junction (a bench only; check-config "
        "warns)",
    )
    outflow_key_file: Path | None = Field(
        default=None,
        description="HMAC-SHA256 key(s) shared by the neighbours of one arterial: this "
        "junction's outflow is signed with it, and neighbour outflow unsigned or badly signed "
        "is refused; none = outflow unsigned and unchecked",
    )
    command_max_age_s: float = Field(default=60.0, gt=0.0, le=86400.0)
    max_command_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Larger command payloads are refused (too_large) before they are parsed; "
        "MQTT 5 also caps the packets the broker may send (MaximumPacketSize) just above it",
    )
    max_commands_per_s: float = Field(
        default=20.0,
        ge=1.0,
        le=1000.0,
        description="Commands handled per second (a burst of twice that); more are dropped "
        "unanswered and counted (rate_limited), so a flood cannot starve the control loop",
    )
    state_interval_s: float = Field(default=5.0, gt=0.0, le=60.0)
    events_batch_s: float = Field(default=1.0, gt=0.0, le=60.0)
    telemetry_period_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    outbox_max_rows: int = Field(default=100_000, ge=10, le=10_000_000)
    outbox_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024 * 1024,
        le=64 * 1024**3,
        description="At most this many bytes of stored messages in the outbox (the oldest go "
        "first): a small share of the cabinet's SD card",
    )
    outbox_max_age_s: float = Field(
        default=7 * 86400.0, ge=60.0, le=366 * 86400.0, allow_inf_nan=False
    )
    event_log_max_age_s: float = Field(
        default=7 * 86400.0,
        ge=0.0,
        le=366 * 86400.0,
        description="Keep every event this long in state_dir/events.sqlite3 for "
        "`edgectl export-events`; 0 = keep no event log",
    )
    event_log_max_rows: int = Field(
        default=5_000_000,
        ge=1000,
        le=100_000_000,
        description="At most this many events in the event log (the oldest go first)",
    )
    backoff_initial: float = Field(default=0.5, gt=0.0, le=60.0)
    backoff_max: float = Field(default=30.0, gt=0.0, le=600.0)


class DaemonSettings(Frozen):
    state_dir: Path = Field(
        default=Path("/var/lib/edgectl"), description="Outbox, bdseq, seq, event log"
    )
    metrics_listen: str = Field(
        default="127.0.0.1:9108", description="Prometheus endpoint host:port; empty = off"
    )
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    log_levels: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")],
        Annotated[str, Field(pattern=r"^(debug|info|warning|error|critical)$")],
    ] = Field(default_factory=dict, description="Per-component level, e.g. {field = 'debug'}")
