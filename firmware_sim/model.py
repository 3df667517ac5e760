"""The whole emulated device as a pure model: registers, cabinet, traffic, faults.

:class:`CabinetModel` is what the Modbus servers serve. It never reads a clock and does no
I/O: every call takes ``now`` (seconds since the emulator started), so the same model runs in
real time behind a server or in virtual time in a test.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import CabinetWiring, ChannelKind, DeviceProfile, RegisterSpec
from edgectl.cabinet.registers import MMU_RESET_MAGIC, Status, bitmap, encode_frame, split32
from firmware_sim.cabinet import Cabinet
from firmware_sim.faults import FaultKind, FaultSpec, WireFaults
from firmware_sim.traffic import TrafficModel

__all__ = ["ILLEGAL_ADDRESS", "ILLEGAL_VALUE", "CabinetModel", "DemandSchedule"]

ILLEGAL_ADDRESS = 2  # Modbus exception codes
ILLEGAL_VALUE = 3

_LIMITS = {  # holding register → (min, max) accepted value
    "channel_outputs": (0, max(ChannelState)),
    "drop_permille": (0, 1000),
    "delay_ms": (0, 10000),
    "corrupt_permille": (0, 1000),
    "silent_s": (0, 3600),
    "stuck_detector": (0, 64),
    "chatter_detector": (0, 64),
    "dead_detector": (0, 64),
    "power_cycle": (0, 1),
    "demand_percent": (0, 1000),
    "mmu_reset": (MMU_RESET_MAGIC, MMU_RESET_MAGIC),
}
_HOLDING_DEFAULTS = {"demand_percent": 100}


@dataclass(frozen=True, slots=True)
class DemandSchedule:
    """Time-varying demand: a step function of time (seconds since start).

    CSV with a ``time_s`` column and either a ``multiplier`` column (scales every movement's
    profile rate) or one column per movement id giving its rate in veh/h::

        time_s,multiplier          time_s,p2,p4
        0,0.5                      0,400,150
        900,1.2                    900,900,300
    """

    times: tuple[float, ...]
    multiplier: tuple[float, ...] = ()
    rates: tuple[dict[str, float], ...] = ()

    @classmethod
    def load(cls, path: Path) -> DemandSchedule:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or "time_s" not in rows[0]:
            raise ValueError(f"{path}: a CSV with a time_s column is required")
        rows.sort(key=lambda r: float(r["time_s"]))
        times = tuple(float(r["time_s"]) for r in rows)
        if "multiplier" in rows[0]:
            return cls(times=times, multiplier=tuple(float(r["multiplier"]) for r in rows))
        rates = tuple({k: float(v) for k, v in r.items() if k != "time_s"} for r in rows)
        return cls(times=times, rates=rates)

    def rate(self, now: float, movement: str, base_vph: float) -> float:
        i = bisect.bisect_right(self.times, now) - 1
        if i < 0:
            return base_vph
        if self.multiplier:
            return base_vph * self.multiplier[i]
        return self.rates[i].get(movement, base_vph)


class CabinetModel:
    """One cabinet: the register map of ``profile`` over the cabinet, traffic and faults."""

    def __init__(
        self,
        profile: DeviceProfile,
        *,
        seed: int = 0,
        faults: Iterable[FaultSpec] = (),
        demand: DemandSchedule | None = None,
        tick: float = 0.1,
    ) -> None:
        if profile.cabinet is None:
            raise ValueError(f"profile {profile.name!r} has no [cabinet] wiring to emulate")
        self.profile = profile
        self.wiring: CabinetWiring = profile.cabinet
        self.seed = seed
        self.tick = tick
        self.faults = tuple(faults)
        self._demand = demand
        self._regs = profile.registers
        self._holding_spec = {s.name: s for s in self._regs.holding}
        self._holding_at: dict[int, tuple[RegisterSpec, int]] = {
            s.address + i: (s, i) for s in self._regs.holding for i in range(s.count)
        }
        self._input_base, self._input_count = self._regs.input_span
        self.cabinet = Cabinet(self.wiring)
        self.traffic = TrafficModel(
            self.wiring.movements,
            self.wiring.detectors,
            self.wiring.pedestrians,
            seed=seed,
            rate=self._rate,
        )
        self._detector_ids = tuple(sorted(d.id for d in self.wiring.detectors))
        self._ped_channels = {
            c.id: c.phase for c in self.wiring.channels if c.kind == ChannelKind.PEDESTRIAN
        }
        self.power_cycles = 0
        self.faults_injected: list[str] = []
        self.now = 0.0
        self._fired: set[int] = set()
        self._power_on(0.0)

    # ---- lifecycle ------------------------------------------------------------------------

    def _power_on(self, now: float) -> None:
        self._holding: dict[int, int] = {
            a: _HOLDING_DEFAULTS.get(spec.name, 0) for a, (spec, _) in self._holding_at.items()
        }
        self._power_on_at = now
        self._counts = dict.fromkeys(self._detector_ids, 0)
        self._presence: frozenset[int] = frozenset()
        self._ped_latched: set[int] = set()
        self._silent_until = -math.inf

    def power_cycle(self, now: float, why: str = "power_cycle") -> None:
        """Power interruption: registers reset, start-up flash, counter + 1 (a latch stays)."""
        self.power_cycles += 1
        self.faults_injected.append(f"{why}@{now:g}")
        latched = self.cabinet.latched
        self._power_on(now)
        self.cabinet.power_cycle(now)
        if latched is not None:
            self.cabinet.latched = latched
            self.cabinet.after_power_cycle = False

    # ---- time -----------------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Advance the model to ``now`` (monotonic; the caller steps about every ``tick``)."""
        if now < self.now:
            return
        for i, spec in enumerate(self.faults):
            if spec.kind == FaultKind.POWER_CYCLE and i not in self._fired and now >= spec.start:
                self._fired.add(i)
                self.power_cycle(spec.start, str(spec))
            elif i not in self._fired and spec.active(now):
                self._fired.add(i)
                self.faults_injected.append(str(spec))
        dt = now - self.now
        if dt > 0:
            pressed = self.traffic.step(self.now, dt, self.cabinet.shown)
            self._ped_latched |= pressed
        self.now = now
        self.cabinet.step(now)
        for ch, phase in self._ped_channels.items():
            if self.cabinet.shown.get(ch) == ChannelState.W:
                self._ped_latched.discard(phase)
        presence = self._effective_presence(now, self.traffic.presence(now))
        for d in presence - self._presence:
            self._counts[d] = (self._counts.get(d, 0) + 1) & 0xFFFF
        self._presence = presence

    def _rate(self, now: float, movement: str) -> float:
        base = next(m.rate_vph for m in self.wiring.movements if m.id == movement)
        if self._demand is not None:
            base = self._demand.rate(now, movement, base)
        return base * self._holding_value("demand_percent", 100) / 100.0

    def _effective_presence(self, now: float, raw: frozenset[int]) -> frozenset[int]:
        stuck, chatter, dead = self.detector_faults(now)
        on = set(raw) | stuck
        toggle = round(now / self.tick) % 2 == 0
        for d in chatter:
            if toggle:
                on.add(d)
            else:
                on.discard(d)
        on -= dead
        return frozenset(d for d in on if d in self._counts)

    def detector_faults(self, now: float) -> tuple[set[int], set[int], set[int]]:
        """(stuck, chatter, dead) detector ids right now, from --fault and sim_control."""
        stuck: set[int] = set()
        chatter: set[int] = set()
        dead: set[int] = set()
        for spec in self.faults:
            if spec.active(now):
                target = {FaultKind.STUCK: stuck, FaultKind.CHATTER: chatter, FaultKind.DEAD: dead}
                if spec.kind in target:
                    target[spec.kind].add(int(spec.value))
        for name, target_set in (
            ("stuck_detector", stuck),
            ("chatter_detector", chatter),
            ("dead_detector", dead),
        ):
            if d := self._holding_value(name, 0):
                target_set.add(d)
        return stuck, chatter, dead

    def wire_faults(self, now: float) -> WireFaults:
        """What the wire does to a request arriving / a response leaving at ``now``."""
        drop = self._holding_value("drop_permille", 0) / 1000.0
        corrupt = self._holding_value("corrupt_permille", 0) / 1000.0
        delay = self._holding_value("delay_ms", 0) / 1000.0
        silent = now < self._silent_until
        for spec in self.faults:
            if not spec.active(now):
                continue
            if spec.kind == FaultKind.DROP:
                drop = max(drop, spec.value)
            elif spec.kind == FaultKind.CORRUPT:
                corrupt = max(corrupt, spec.value)
            elif spec.kind == FaultKind.DELAY:
                delay = max(delay, spec.value)
            elif spec.kind == FaultKind.SILENT:
                silent = True
        return WireFaults(drop=drop, delay_s=delay, corrupt=corrupt, silent=silent)

    # ---- registers ------------------------------------------------------------------------

    def _holding_value(self, name: str, default: int) -> int:
        spec = self._holding_spec.get(name)
        return default if spec is None else self._holding[spec.address]

    @property
    def presence(self) -> frozenset[int]:
        return self._presence

    @property
    def ped_buttons(self) -> frozenset[int]:
        return frozenset(self._ped_latched)

    @property
    def counts(self) -> dict[int, int]:
        return dict(self._counts)

    def input_image(self, now: float) -> list[int]:
        """All input registers from the start of the input span."""
        image = [0] * self._input_count
        cab = self.cabinet

        def put(name: str, values: Sequence[int]) -> None:
            try:
                spec = self._regs.input_register(name)
            except KeyError:
                return
            for i, v in enumerate(values[: spec.count]):
                image[spec.address - self._input_base + i] = v & 0xFFFF

        status = Status(0)
        if cab.tripped:
            status |= Status.MMU_TRIPPED
        if cab.cabinet_flash:
            status |= Status.CABINET_FLASH
        if cab.in_control:
            status |= Status.IN_CONTROL
        put("status", [int(status)])
        put("mmu_fault", [int(cab.fault_kind)])
        put("mmu_fault_channels", bitmap(cab.fault_channels, 2))
        put("heartbeat_echo", [cab.heartbeat_value])
        put("detector_presence", bitmap(self._presence, 4))
        put("ped_buttons", bitmap(self._ped_latched, 1))
        put("channel_readback", encode_frame(cab.shown, 32))
        put("detector_counts", [self._counts.get(d, 0) for d in range(1, 65)])
        put("uptime_s", split32(max(0, int(now - self._power_on_at))))
        put("power_cycles", [self.power_cycles])
        put("profile_version", [self._regs.version])
        return image

    def read_input(self, now: float, address: int, count: int) -> list[int] | int:
        """FC4: registers or a Modbus exception code."""
        lo = address - self._input_base
        if lo < 0 or count < 1 or lo + count > self._input_count:
            return ILLEGAL_ADDRESS
        return self.input_image(now)[lo : lo + count]

    def read_holding(self, address: int, count: int) -> list[int] | int:
        """FC3: registers or a Modbus exception code."""
        addrs = range(address, address + count)
        if count < 1 or any(a not in self._holding_at for a in addrs):
            return ILLEGAL_ADDRESS
        return [self._holding[a] for a in addrs]

    def write_holding(self, now: float, address: int, values: Sequence[int]) -> int | None:
        """FC6/FC16: apply a write, or refuse all of it with a Modbus exception code."""
        addrs = range(address, address + len(values))
        if not values or any(a not in self._holding_at for a in addrs):
            return ILLEGAL_ADDRESS
        touched: dict[str, list[tuple[int, int]]] = {}
        for a, v in zip(addrs, values, strict=True):
            spec, index = self._holding_at[a]
            lo, hi = _LIMITS.get(spec.name, (0, 0xFFFF))
            if not lo <= v <= hi:
                return ILLEGAL_VALUE
            touched.setdefault(spec.name, []).append((index, v))
        for a, v in zip(addrs, values, strict=True):
            self._holding[a] = v
        if "heartbeat" in touched:
            self.cabinet.heartbeat(now, touched["heartbeat"][-1][1])
        if "channel_outputs" in touched:
            base = self._holding_spec["channel_outputs"].address
            frame = {c: ChannelState(self._holding[base + c - 1]) for c in self.cabinet.channel_ids}
            self.cabinet.frame(now, frame)
        if "mmu_reset" in touched:
            self.cabinet.reset(now)
            self._holding[self._holding_spec["mmu_reset"].address] = 0
        if "silent_s" in touched:
            seconds = touched["silent_s"][-1][1]
            self._silent_until = now + seconds if seconds else -math.inf
            self.faults_injected.append(f"silent@{now:g}+{seconds}(register)")
        for name in (
            "drop_permille",
            "delay_ms",
            "corrupt_permille",
            "stuck_detector",
            "chatter_detector",
            "dead_detector",
            "demand_percent",
        ):
            if name in touched:
                self.faults_injected.append(f"{name}={touched[name][-1][1]}@{now:g}(register)")
        if "power_cycle" in touched and touched["power_cycle"][-1][1] == 1:
            self.power_cycle(now, "power_cycle(register)")
        return None
