"""The cabinet's registers as values: where each one is, and how words become states and back.

One definition shared by the daemon (:mod:`edgectl.field.device` decodes what it reads and
encodes what it writes) and by :mod:`firmware_sim` (which encodes what it serves), so the two
ends of the wire cannot drift apart. Pure: no I/O, no clock.

Input block (register map ``cabinet-v1``, see :mod:`edgectl.cabinet.profile`):

- ``status``: bit 0 MMU tripped, bit 1 cabinet in flash, bit 2 controller in control;
- ``mmu_fault_channels``, ``detector_presence``, ``ped_buttons``: bitmaps, bit ``n - 1`` of the
  block (16 per word, low word first) for channel, detector or phase ``n``;
- ``channel_readback``: one :class:`~edgectl.cabinet.channels.ChannelState` code per channel;
- ``uptime_s``: 32 bits, low word first.

Holding block: ``channel_outputs`` (one code per channel) and ``heartbeat``, written as one
request when they are contiguous; ``mmu_reset`` takes :data:`MMU_RESET_MAGIC`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import DeviceProfile
from edgectl.cabinet.zones import ZoneFrame

__all__ = [
    "HEARTBEAT_MODULO",
    "MMU_RESET_MAGIC",
    "Block",
    "CabinetMap",
    "CabinetSnapshot",
    "Status",
    "bitmap",
    "decode_inputs",
    "encode_frame",
    "encode_inputs",
    "members",
    "split32",
]

HEARTBEAT_MODULO = 0x10000
MMU_RESET_MAGIC = 0xA5A5


class Status(enum.IntFlag):
    """Bits of the ``status`` input register."""

    MMU_TRIPPED = 1
    CABINET_FLASH = 2
    IN_CONTROL = 4


@dataclass(frozen=True, slots=True)
class Block:
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class CabinetMap:
    """Addresses of the registers the daemon uses (from the device profile)."""

    status: Block = Block(0, 1)
    mmu_fault: Block = Block(1, 1)
    mmu_fault_channels: Block = Block(2, 2)
    heartbeat_echo: Block = Block(4, 1)
    detector_presence: Block = Block(5, 4)
    ped_buttons: Block = Block(9, 1)
    channel_readback: Block = Block(10, 32)
    detector_counts: Block = Block(42, 64)
    uptime_s: Block = Block(106, 2)
    power_cycles: Block = Block(108, 1)
    channel_outputs: Block = Block(0, 32)  # holding
    heartbeat: Block = Block(32, 1)  # holding
    mmu_reset: Block = Block(33, 1)  # holding

    @classmethod
    def from_profile(cls, profile: DeviceProfile) -> CabinetMap:
        """The addresses named in a device profile (``edgectl.cabinet.profile``)."""
        regs = profile.registers

        def inp(name: str) -> Block:
            spec = regs.input_register(name)
            return Block(spec.address, spec.count)

        def hold(name: str) -> Block:
            spec = regs.holding_register(name)
            return Block(spec.address, spec.count)

        return cls(
            status=inp("status"),
            mmu_fault=inp("mmu_fault"),
            mmu_fault_channels=inp("mmu_fault_channels"),
            heartbeat_echo=inp("heartbeat_echo"),
            detector_presence=inp("detector_presence"),
            ped_buttons=inp("ped_buttons"),
            channel_readback=inp("channel_readback"),
            detector_counts=inp("detector_counts"),
            uptime_s=inp("uptime_s"),
            power_cycles=inp("power_cycles"),
            channel_outputs=hold("channel_outputs"),
            heartbeat=hold("heartbeat"),
            mmu_reset=hold("mmu_reset"),
        )

    @property
    def input_span(self) -> Block:
        blocks = (
            self.status,
            self.mmu_fault,
            self.mmu_fault_channels,
            self.heartbeat_echo,
            self.detector_presence,
            self.ped_buttons,
            self.channel_readback,
            self.detector_counts,
            self.uptime_s,
            self.power_cycles,
        )
        lo = min(b.address for b in blocks)
        hi = max(b.address + b.count for b in blocks)
        return Block(lo, hi - lo)

    @property
    def frame_contiguous(self) -> bool:
        end = self.channel_outputs.address + self.channel_outputs.count
        return self.heartbeat.address == end


@dataclass(frozen=True, slots=True)
class CabinetSnapshot:
    """One decoded read of the cabinet's input block."""

    t: float
    presence: frozenset[int]
    ped_buttons: frozenset[int]
    readback: Mapping[int, ChannelState]
    mmu_tripped: bool
    cabinet_flash: bool
    in_control: bool
    mmu_fault: int
    mmu_fault_channels: frozenset[int]
    heartbeat_echo: int
    counts: tuple[int, ...]
    uptime_s: int
    power_cycles: int
    zones: tuple[ZoneFrame, ...] = ()  # zone sensors (v2 profiles), ascending zone


def members(words: Sequence[int]) -> frozenset[int]:
    """The numbers (1-based) whose bits are set in a bitmap block."""
    return frozenset(
        w * 16 + b + 1 for w, word in enumerate(words) for b in range(16) if word >> b & 1
    )


def bitmap(numbers: Iterable[int], words: int) -> list[int]:
    """A bitmap block of ``words`` registers with the bits of ``numbers`` (1-based) set;
    numbers outside the block are left out."""
    out = [0] * words
    for n in numbers:
        if 1 <= n <= words * 16:
            out[(n - 1) // 16] |= 1 << ((n - 1) % 16)
    return out


def split32(value: int) -> list[int]:
    """A 32-bit counter as two registers, low word first."""
    return [value & 0xFFFF, (value >> 16) & 0xFFFF]


def decode_inputs(regs: Sequence[int], cmap: CabinetMap, t: float) -> CabinetSnapshot:
    """Decode the input block read at ``cmap.input_span``. Never raises on odd values: an
    unknown channel code decodes as OFF (dark), which the readback check then catches."""
    base = cmap.input_span.address

    def take(b: Block) -> Sequence[int]:
        return regs[b.address - base : b.address - base + b.count]

    status = take(cmap.status)[0]
    readback: dict[int, ChannelState] = {}
    for i, code in enumerate(take(cmap.channel_readback)):
        try:
            readback[i + 1] = ChannelState(code)
        except ValueError:
            readback[i + 1] = ChannelState.OFF
    up = take(cmap.uptime_s)
    return CabinetSnapshot(
        t=t,
        presence=members(take(cmap.detector_presence)),
        ped_buttons=members(take(cmap.ped_buttons)),
        readback=MappingProxyType(readback),
        mmu_tripped=bool(status & Status.MMU_TRIPPED),
        cabinet_flash=bool(status & Status.CABINET_FLASH),
        in_control=bool(status & Status.IN_CONTROL),
        mmu_fault=take(cmap.mmu_fault)[0],
        mmu_fault_channels=members(take(cmap.mmu_fault_channels)),
        heartbeat_echo=take(cmap.heartbeat_echo)[0],
        counts=tuple(take(cmap.detector_counts)),
        uptime_s=up[0] | (up[1] << 16) if len(up) == 2 else up[0],
        power_cycles=take(cmap.power_cycles)[0],
    )


def encode_inputs(snap: CabinetSnapshot, cmap: CabinetMap) -> list[int]:
    """The input block that decodes to ``snap`` (``snap.t`` aside): what a cabinet serves."""
    span = cmap.input_span
    image = [0] * span.count

    def put(b: Block, values: Sequence[int]) -> None:
        for i, v in enumerate(values[: b.count]):
            image[b.address - span.address + i] = v & 0xFFFF

    status = Status(0)
    if snap.mmu_tripped:
        status |= Status.MMU_TRIPPED
    if snap.cabinet_flash:
        status |= Status.CABINET_FLASH
    if snap.in_control:
        status |= Status.IN_CONTROL
    put(cmap.status, [int(status)])
    put(cmap.mmu_fault, [snap.mmu_fault])
    put(cmap.mmu_fault_channels, bitmap(snap.mmu_fault_channels, cmap.mmu_fault_channels.count))
    put(cmap.heartbeat_echo, [snap.heartbeat_echo])
    put(cmap.detector_presence, bitmap(snap.presence, cmap.detector_presence.count))
    put(cmap.ped_buttons, bitmap(snap.ped_buttons, cmap.ped_buttons.count))
    put(cmap.channel_readback, encode_frame(snap.readback, cmap.channel_readback.count))
    put(cmap.detector_counts, snap.counts)
    put(cmap.uptime_s, split32(snap.uptime_s))
    put(cmap.power_cycles, [snap.power_cycles])
    return image


def encode_frame(frame: Mapping[int, ChannelState], channels: int) -> list[int]:
    """One register per channel 1..``channels``; a channel the frame leaves out is OFF."""
    return [int(frame.get(ch, ChannelState.OFF)) for ch in range(1, channels + 1)]
