"""Between the objects of a v2 profile and what the controller and the cabinet mean by them.

Both ends of the wire use it, so they cannot drift apart: the daemon decodes what it read
(:func:`decode_inputs`) and encodes its frame (:func:`encode_outputs`); an emulator encodes
what it serves (:func:`encode_inputs`) and decodes what it was told (:func:`decode_outputs`).
Images are ``{(device, object type): {address: value}}`` with register words as they travel
(a device with ``byte_order = "little"`` has its bytes swapped here). Pure.

Lamp channels: ``R`` lights red, ``Y`` yellow, ``G`` green, ``DW`` don't walk, ``W`` walk;
``FR``, ``FY`` and ``FDW`` light red, yellow or don't walk with the channel's flasher; ``OFF``
lights nothing. Read back, exactly one lamp (and the flasher or not) is a state; anything
else (two lamps, a flasher alone) decodes as ``OFF``, which the readback check then catches.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldmap import Placement
from edgectl.cabinet.planner import FieldPlan, Image, ImageKey
from edgectl.cabinet.registers import CabinetSnapshot
from edgectl.cabinet.zones import (
    ZoneFrame,
    decode_distance,
    decode_speed,
    encode_distance,
    encode_speed,
)

__all__ = [
    "Images",
    "decode_inputs",
    "decode_outputs",
    "decode_zones",
    "encode_inputs",
    "encode_outputs",
    "get_value",
    "put_value",
]

Images = dict[ImageKey, Image]

_LAMPS_OF: dict[ChannelState, frozenset[str]] = {
    ChannelState.OFF: frozenset(),
    ChannelState.R: frozenset({"red"}),
    ChannelState.Y: frozenset({"yellow"}),
    ChannelState.G: frozenset({"green"}),
    ChannelState.DW: frozenset({"dont_walk"}),
    ChannelState.FDW: frozenset({"dont_walk", "flash"}),
    ChannelState.W: frozenset({"walk"}),
    ChannelState.FR: frozenset({"red", "flash"}),
    ChannelState.FY: frozenset({"yellow", "flash"}),
}
_STATE_OF = {lamps: state for state, lamps in _LAMPS_OF.items()}


def _swap(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def _word_order_little(plan: FieldPlan, device: str) -> bool:
    return plan.profile.device(device).word_order == "little"


def put_value(images: Images, p: Placement, value: int, *, little_words: bool = True) -> None:
    """Store ``value`` (inverted when active low) where ``p`` says, in logical words."""
    key = (p.device, p.otype)
    image = images.setdefault(key, {})
    mask = (1 << p.bits) - 1
    v = (value ^ mask if p.active_low else value) & mask
    if p.otype.is_bit:
        for i in range(p.bits):
            image[p.address + i] = v >> i & 1
    elif p.words > 1:
        lo, hi = v & 0xFFFF, v >> 16 & 0xFFFF
        first, second = (lo, hi) if little_words else (hi, lo)
        image[p.address], image[p.address + 1] = first, second
    else:
        for i in range(p.bits):  # a field may run on into the next register (packed bits)
            address, bit = divmod(p.address * 16 + p.bit + i, 16)
            word = image.get(address, 0) & ~(1 << bit)
            image[address] = word | (v >> i & 1) << bit


def get_value(
    images: Mapping[ImageKey, Mapping[int, int]], p: Placement, *, little_words: bool = True
) -> int:
    """The value at ``p`` (inverted back when active low); missing objects read as 0."""
    image = images.get((p.device, p.otype), {})
    mask = (1 << p.bits) - 1
    if p.otype.is_bit:
        v = sum((image.get(p.address + i, 0) & 1) << i for i in range(p.bits))
    elif p.words > 1:
        first, second = image.get(p.address, 0), image.get(p.address + 1, 0)
        lo, hi = (first, second) if little_words else (second, first)
        v = (lo & 0xFFFF) | (hi & 0xFFFF) << 16
    else:
        v = 0
        for i in range(p.bits):
            address, bit = divmod(p.address * 16 + p.bit + i, 16)
            v |= (image.get(address, 0) >> bit & 1) << i
    return (v ^ mask if p.active_low else v) & mask


def _to_wire(plan: FieldPlan, images: Images) -> Images:
    """Swap the bytes of the registers of little-endian devices (an involution)."""
    for (device, otype), image in images.items():
        if not otype.is_bit and plan.profile.device(device).byte_order == "little":
            for a in image:
                image[a] = _swap(image[a])
    return images


def _logical(plan: FieldPlan, images: Mapping[ImageKey, Mapping[int, int]]) -> Images:
    return _to_wire(plan, {k: dict(v) for k, v in images.items()})


# --- the daemon's side -------------------------------------------------------------------


def decode_inputs(
    plan: FieldPlan,
    images: Mapping[ImageKey, Mapping[int, int]],
    t: float,
    *,
    assumed: Mapping[int, ChannelState] | None = None,
) -> CabinetSnapshot:
    """The snapshot the read pass's images mean. Channels whose outputs are not read back
    take their state from ``assumed`` (the frame last written): the readback check cannot
    see them, and says nothing about them."""
    logical = _logical(plan, images)
    numbers: dict[str, set[int]] = {}
    values: dict[str, int] = {}
    lamps: dict[int, set[str]] = {}
    codes: dict[int, int] = {}
    counts: dict[int, int] = {}
    for p in plan.inputs:
        if p.pattern.startswith("zone."):
            continue  # decode_zones
        v = get_value(logical, p, little_words=_word_order_little(plan, p.device))
        head = p.pattern
        if head == "readback.{n}.state":
            codes[p.number] = v
        elif head.startswith("readback."):
            lamps.setdefault(p.number, set())
            if v:
                lamps[p.number].add(p.signal.rsplit(".", 1)[1])
        elif head == "detector.{n}.count":
            counts[p.number] = v
        elif p.number:
            if v:
                numbers.setdefault(head, set()).add(p.number)
        else:
            values[head] = v
    readback: dict[int, ChannelState] = dict(assumed or {})
    for ch, code in codes.items():
        try:
            readback[ch] = ChannelState(code)
        except ValueError:
            readback[ch] = ChannelState.OFF
    for ch, lit in lamps.items():
        readback[ch] = _STATE_OF.get(frozenset(lit), ChannelState.OFF)
    tripped = bool(values.get("mmu.tripped", 0))
    fault = values.get("mmu.fault", 1 if tripped else 0)  # unknown cause: treat as conflict
    return CabinetSnapshot(
        t=t,
        presence=frozenset(numbers.get("detector.{n}", ())),
        ped_buttons=frozenset(numbers.get("ped.{n}", ())),
        readback=MappingProxyType(dict(sorted(readback.items()))),
        mmu_tripped=tripped,
        cabinet_flash=bool(values.get("cabinet.flash", 0)),
        in_control=bool(values.get("cabinet.in_control", 0)),
        mmu_fault=fault,
        mmu_fault_channels=frozenset(numbers.get("mmu.fault_channel.{n}", ())),
        heartbeat_echo=values.get("heartbeat.echo", 0),
        counts=tuple(counts.get(n, 0) for n in range(1, max(counts, default=0) + 1)),
        uptime_s=values.get("uptime_s", 0),
        power_cycles=values.get("power_cycles", 0),
        zones=decode_zones(plan, logical),
    )


def _word(images: Mapping[ImageKey, Mapping[int, int]], p: Placement, at: int) -> int:
    return images.get((p.device, p.otype), {}).get(at, 0) & 0xFFFF


def decode_zones(
    plan: FieldPlan, logical: Mapping[ImageKey, Mapping[int, int]]
) -> tuple[ZoneFrame, ...]:
    """The zones of the read pass's (logical) images, ascending zone number: words in the
    scales of :mod:`edgectl.cabinet.zones`. An object count beyond the run is cut to it."""
    fields: dict[int, dict[str, Placement]] = {}
    for p in plan.inputs:
        if p.pattern.startswith("zone."):
            fields.setdefault(p.number, {})[p.pattern.rsplit(".", 1)[1]] = p
    out: list[ZoneFrame] = []
    for zone, f in sorted(fields.items()):
        words = {k: _word(logical, p, p.address) for k, p in f.items() if k != "objects"}
        objects: tuple[tuple[float, float], ...] = ()
        run = f.get("objects")
        if run is not None:
            n = min(_word(logical, run, run.address), (run.words - 1) // 2)
            objects = tuple(
                (
                    decode_distance(_word(logical, run, run.address + 1 + 2 * i)),
                    decode_speed(_word(logical, run, run.address + 2 + 2 * i)),
                )
                for i in range(n)
            )
        out.append(
            ZoneFrame(
                zone=zone,
                frame=words.get("frame", 0),
                vehicles=words.get("vehicles", 0),
                halting=words.get("halting", 0),
                queue_m=decode_distance(words.get("queue", 0)),
                speed_mps=decode_speed(words.get("speed", 0)),
                objects=objects,
            )
        )
    return tuple(out)


def _put_zone(images: Images, p: Placement, zone: ZoneFrame | None) -> None:
    """One zone signal's words (a zone the sensor does not report reads 0: no data)."""
    image = images.setdefault((p.device, p.otype), {})
    what = p.pattern.rsplit(".", 1)[1]
    if what == "objects":
        cap = (p.words - 1) // 2
        objects = zone.objects[:cap] if zone is not None else ()
        image[p.address] = len(objects)
        for i in range(cap):
            d, v = objects[i] if i < len(objects) else (0.0, 0.0)
            image[p.address + 1 + 2 * i] = encode_distance(d) if i < len(objects) else 0
            image[p.address + 2 + 2 * i] = encode_speed(v) if i < len(objects) else 0
        return
    if zone is None:
        image[p.address] = 0
        return
    image[p.address] = {
        "frame": zone.frame & 0xFFFF,
        "vehicles": min(zone.vehicles, 0xFFFF),
        "halting": min(zone.halting, 0xFFFF),
        "queue": encode_distance(zone.queue_m),
        "speed": encode_speed(zone.speed_mps),
    }[what]


def encode_outputs(plan: FieldPlan, frame: Mapping[int, ChannelState], heartbeat: int) -> Images:
    """The output images (wire words) of a frame and the tick's heartbeat; a mapped channel
    the frame leaves out is ``OFF``."""
    images: Images = {}
    for p in plan.outputs:
        little = _word_order_little(plan, p.device)
        head = p.pattern
        if head == "channel.{n}.state":
            put_value(images, p, int(frame.get(p.number, ChannelState.OFF)), little_words=little)
        elif head.startswith("channel."):
            lit = _LAMPS_OF[frame.get(p.number, ChannelState.OFF)]
            put_value(images, p, int(p.signal.rsplit(".", 1)[1] in lit), little_words=little)
        elif head == "heartbeat":
            put_value(images, p, heartbeat, little_words=little)
    return _to_wire(plan, images)


# --- the cabinet's side (an emulator) ------------------------------------------------------


def encode_inputs(plan: FieldPlan, snap: CabinetSnapshot) -> Images:
    """The input images (wire words) a cabinet serves so that they decode to ``snap``."""
    images: Images = {}
    zones = {z.zone: z for z in snap.zones}
    for p in plan.inputs:
        head, n = p.pattern, p.number
        if head.startswith("zone."):
            _put_zone(images, p, zones.get(n))
            continue
        if head == "readback.{n}.state":
            v = int(snap.readback.get(n, ChannelState.OFF))
        elif head.startswith("readback."):
            lit = _LAMPS_OF[snap.readback.get(n, ChannelState.OFF)]
            v = int(p.signal.rsplit(".", 1)[1] in lit)
        elif head == "detector.{n}":
            v = int(n in snap.presence)
        elif head == "ped.{n}":
            v = int(n in snap.ped_buttons)
        elif head == "mmu.fault_channel.{n}":
            v = int(n in snap.mmu_fault_channels)
        elif head == "detector.{n}.count":
            v = snap.counts[n - 1] if n <= len(snap.counts) else 0
        else:
            v = {
                "mmu.tripped": int(snap.mmu_tripped),
                "mmu.fault": snap.mmu_fault,
                "cabinet.flash": int(snap.cabinet_flash),
                "cabinet.in_control": int(snap.in_control),
                "heartbeat.echo": snap.heartbeat_echo,
                "uptime_s": snap.uptime_s,
                "power_cycles": snap.power_cycles,
                "profile_version": p.value or 0,  # the layout's version, as mapped
            }.get(head, 0)
        put_value(images, p, v, little_words=_word_order_little(plan, p.device))
    return _to_wire(plan, images)


def decode_outputs(
    plan: FieldPlan, images: Mapping[ImageKey, Mapping[int, int]]
) -> tuple[dict[int, ChannelState], int]:
    """What the controller commanded: the channel states and the heartbeat's value."""
    logical = _logical(plan, images)
    codes: dict[int, ChannelState] = {}
    lamps: dict[int, set[str]] = {}
    heartbeat = 0
    for p in plan.outputs:
        v = get_value(logical, p, little_words=_word_order_little(plan, p.device))
        if p.pattern == "channel.{n}.state":
            try:
                codes[p.number] = ChannelState(v)
            except ValueError:
                codes[p.number] = ChannelState.OFF
        elif p.pattern.startswith("channel."):
            lamps.setdefault(p.number, set())
            if v:
                lamps[p.number].add(p.signal.rsplit(".", 1)[1])
        elif p.pattern == "heartbeat":
            heartbeat = v
    for ch, lit in lamps.items():
        codes[ch] = _STATE_OF.get(frozenset(lit), ChannelState.OFF)
    return dict(sorted(codes.items())), heartbeat
