"""What a field device publishes after every read: an immutable report (pure data).

The daemon's tick and its supervisor read these, never the device's own mutable state, so the
supervisor's rules can be stepped in virtual time with reports made up by a test.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.registers import CabinetSnapshot

__all__ = ["DeviceReport", "DeviceStatsReport", "Health"]


class Health(enum.StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class DeviceStatsReport:
    """The device's counters at one report."""

    reads: int = 0
    writes: int = 0
    reconnects: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    last_error: str = ""
    last_latency_s: float = 0.0  # latest read → frame written


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """What one device knew after its latest read (and the write that followed it)."""

    device: str
    seq: int = 0  # 0: the initial report; +1 per report published
    t: float = 0.0  # the device's clock when the report was made
    tick: int = 0  # the control tick (count of tick() calls) the latest read served
    health: Health = Health.OFFLINE
    connected: bool = False
    inputs: CabinetSnapshot | None = None  # what the latest read decoded; None: it failed
    error: str = ""  # why the latest read failed ("" when it did not)
    snapshot: CabinetSnapshot | None = None  # the latest good read (this one or earlier)
    last_ok: float | None = None  # when the latest good read was made (== snapshot.t)
    last_write_ok: float | None = None  # when the latest frame was written
    write_error: str = ""  # why the latest write failed ("" when it did not)
    frames_submitted: int = 0  # sequence number of the latest frame submitted
    frames_written: int = 0  # ... of the latest frame the device confirmed written
    written: tuple[int, ...] = ()  # registers of the latest frame written (and heartbeat)
    mmu_reset_pending: bool = False  # a reset requested and not yet written
    stats: DeviceStatsReport = DeviceStatsReport()

    @property
    def read_ok(self) -> bool:
        """The latest read succeeded."""
        return self.inputs is not None

    @property
    def readback(self) -> Mapping[int, ChannelState] | None:
        """What the load switches showed at the latest good read."""
        return None if self.snapshot is None else self.snapshot.readback

    @property
    def mmu_tripped(self) -> bool:
        return self.snapshot is not None and self.snapshot.mmu_tripped

    @property
    def mmu_fault(self) -> int:
        return 0 if self.snapshot is None else self.snapshot.mmu_fault
