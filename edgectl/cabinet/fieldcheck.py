"""Validation and loading of v2 profiles: every problem named, with its path in the file.

:func:`profile_problems` checks a parsed :class:`~edgectl.cabinet.fieldmap.FieldProfile`
(unknown devices, signals and object types; a signal mapped twice; overlapping addresses; a
bit out of range; a channel without a red; outputs on read-only objects; ...).
:func:`load_field_profile` reads ``builtin:NAME`` or a file and raises
:class:`~edgectl.errors.ConfigError` naming every problem, structural and semantic.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgectl.cabinet.fieldmap import (
    LAMPS,
    Direction,
    FieldProfile,
    ObjectType,
    Placement,
    SignalMap,
    expand,
    parse_signal,
    spec_of,
)
from edgectl.cabinet.profile import BUILTIN_PROFILES, load_profile
from edgectl.errors import ConfigError, FatalFieldError, Problem

__all__ = [
    "BUILTIN_FIELD_PROFILES",
    "device_profile_problems",
    "field_zones",
    "is_field_profile",
    "load_field_profile",
    "profile_problems",
    "profile_zones",
    "read_profile_document",
    "zone_config_problems",
]

#: builtin v2 profiles (``builtin:NAME``), next to the v1 ones in ``cabinet/profiles``
BUILTIN_FIELD_PROFILES = ("cabinet-v1", "io-modules", "io-modules-zones")

_TYPES = ", ".join(t.value for t in ObjectType)
_READERS_OF_OUTPUTS = ("readback.", "heartbeat.echo")


def _err(path: str, message: str) -> Problem:
    return Problem(path, message)


def _warn(path: str, message: str) -> Problem:
    return Problem(path, message, severity="warning")


def _entry_problems(profile: FieldProfile) -> list[Problem]:
    """Problems of single map entries: names, types, bits, addresses."""
    out: list[Problem] = []
    devices = {d.name for d in profile.devices}
    for i, entry in enumerate(profile.map):
        at = f"map[{i}]"
        parsed = parse_signal(entry.signal)
        if parsed is None:
            out.append(_err(f"{at}.signal", f"unknown signal {entry.signal!r}"))
        if entry.device not in devices:
            out.append(
                _err(f"{at}.device", f"unknown device {entry.device!r} (known: {sorted(devices)})")
            )
        try:
            otype = ObjectType(entry.type)
        except ValueError:
            out.append(_err(f"{at}.type", f"unknown object type {entry.type!r}; one of {_TYPES}"))
            continue
        if parsed is None:
            continue
        spec = spec_of(parsed[0])
        if parsed[0].startswith("zone."):
            out += _zone_entry_problems(entry, otype, spec.kind, at)
            continue
        if entry.objects is not None:
            out.append(
                _err(f"{at}.objects", f"only zone.N.objects takes objects, not {entry.signal}")
            )
        if spec.direction is Direction.OUT and not otype.writable:
            out.append(_err(f"{at}.type", f"{entry.signal} is an output: {otype} is read-only"))
        if otype.is_bit and entry.bit is not None:
            out.append(_err(f"{at}.bit", f"a {otype} has no bits (it is one bit)"))
        if otype.is_bit and entry.words > 1:
            out.append(_err(f"{at}.words", f"a {otype} has no words; use bits"))
        if spec.kind != "value" and (entry.bits or 1) != 1:
            out.append(_err(f"{at}.bits", f"{entry.signal} is one bit"))
        if not otype.is_bit:
            first = entry.bit or 0
            width = entry.bits or (16 if spec.kind == "value" and entry.words == 1 else 1)
            if entry.words > 1 and (entry.bit or (entry.bits not in (None, 32))):
                out.append(_err(f"{at}.bit", "a 32-bit value takes two whole registers"))
            elif first > 15:
                out.append(_err(f"{at}.bit", f"bit {first} out of range 0..15"))
            elif entry.words == 1 and first + width > 16 and not _packed(spec.kind, width):
                out.append(
                    _err(f"{at}.bits", f"bits {first}..{first + width - 1} out of range 0..15")
                )
        if spec.kind == "command" and entry.value is None and not otype.is_bit:
            out.append(_err(f"{at}.value", f"{entry.signal} on a register needs the value"))
        for p in expand(entry, i):
            if p.end > 0x10000:
                out.append(_err(f"{at}.address", f"{p.signal} ends past address 65535"))
                break
    return out


def _zone_entry_problems(entry: SignalMap, otype: ObjectType, kind: str, at: str) -> list[Problem]:
    """A zone signal: whole 16-bit registers; ``objects`` on the object run and only there."""
    out: list[Problem] = []
    if otype.is_bit:
        out.append(_err(f"{at}.type", f"{entry.signal}: zone data are registers, not a {otype}"))
    if entry.bit not in (None, 0) or entry.bits not in (None, 16) or entry.words != 1:
        out.append(
            _err(
                f"{at}.bits",
                f"{entry.signal}: one whole register per value (no bit, bits or words)",
            )
        )
    if kind == "block" and entry.objects is None:
        out.append(_err(f"{at}.objects", f"{entry.signal} needs objects = how many the run holds"))
    if kind != "block" and entry.objects is not None:
        out.append(_err(f"{at}.objects", f"only zone.N.objects takes objects, not {entry.signal}"))
    for p in expand(entry, 0):
        if p.end > 0x10000:
            out.append(_err(f"{at}.address", f"{p.signal} ends past address 65535"))
            break
    return out


def _zones(places: list[Placement]) -> list[Problem]:
    """Each zone mapped has its measurement counter (what tells a stuck sensor from an
    empty road) and its counts."""
    out: list[Problem] = []
    found: dict[int, dict[str, Placement]] = defaultdict(dict)
    for p in places:
        if p.pattern.startswith("zone."):
            found[p.number][p.pattern.rsplit(".", 1)[1]] = p
    for zone, fields in sorted(found.items()):
        at = f"map[{min(p.source for p in fields.values())}]"
        for need in ("frame", "vehicles", "halting", "queue", "speed"):
            if need not in fields:
                out.append(_err(at, f"zone {zone} has no zone.{zone}.{need}"))
    return out


def profile_zones(profile: FieldProfile) -> dict[int, int]:
    """Zone number → how many objects its object run holds (0: no object run) of every
    zone a profile maps."""
    out: dict[int, int] = {}
    for i, entry in enumerate(profile.map):
        for p in expand(entry, i):
            if p.pattern.startswith("zone."):
                run = (p.words - 1) // 2 if p.pattern == "zone.{n}.objects" else 0
                out[p.number] = max(out.get(p.number, 0), run)
    return out


def _packed(kind: str, width: int) -> bool:
    """A range of bit signals packed over several registers (checked per placement)."""
    return kind == "bit" and width == 1


def _overlaps(places: list[Placement]) -> list[Problem]:
    """Two placements sharing a bit of one object: both writers, or both readers, or a
    reader of an output that is not a readback."""
    out: list[Problem] = []
    owner: dict[tuple[str, ObjectType, int, int], Placement] = {}
    reported: set[tuple[str, str]] = set()
    for p in places:
        for address, bit in p.cells():
            key = (p.device, p.otype, address, bit)
            other = owner.get(key)
            if other is None:
                owner[key] = p
                continue
            if other.signal == p.signal:
                continue  # a signal mapped twice is reported as such
            if other.spec.direction is not p.spec.direction:
                reader = p if p.spec.direction is Direction.IN else other
                if reader.signal.startswith(_READERS_OF_OUTPUTS):
                    continue
            pair = (other.signal, p.signal)
            if pair in reported:
                continue
            reported.add(pair)
            out.append(
                _err(
                    f"map[{p.source}]",
                    f"{p.signal} overlaps {other.signal} (map[{other.source}]) at "
                    f"{p.device} {p.otype} {address} bit {bit}",
                )
            )
    return out


def _twice(places: list[Placement]) -> list[Problem]:
    out: list[Problem] = []
    first: dict[str, Placement] = {}
    for p in places:
        seen = first.get(p.signal)
        if seen is None:
            first[p.signal] = p
        elif seen.source != p.source or seen.address != p.address:
            out.append(
                _err(f"map[{p.source}]", f"{p.signal} mapped twice (also map[{seen.source}])")
            )
    return out


def _channels(places: list[Placement], prefix: str, where: str) -> list[Problem]:
    """Lamp-driven channels: each needs its red (or don't walk) and its flasher, and is
    not also driven by a state code."""
    out: list[Problem] = []
    lamps: dict[int, dict[str, Placement]] = defaultdict(dict)
    coded: set[int] = set()
    for p in places:
        if not p.signal.startswith(prefix):
            continue
        what = p.signal.rsplit(".", 1)[1]
        if what == "state":
            coded.add(p.number)
        elif what in LAMPS:
            lamps[p.number][what] = p
    for ch, found in sorted(lamps.items()):
        at = f"map[{min(p.source for p in found.values())}]"
        if ch in coded:
            out.append(_err(at, f"{where} {ch} has both a state code and lamps"))
        vehicle = {"red", "yellow", "green"} & found.keys()
        ped = {"walk", "dont_walk"} & found.keys()
        if vehicle and ped:
            out.append(_err(at, f"{where} {ch} mixes vehicle and pedestrian lamps"))
        elif ped and "dont_walk" not in found:
            out.append(_err(at, f"{where} {ch} has no dont_walk"))
        elif not ped and "red" not in found:
            out.append(_err(at, f"{where} {ch} has no red"))
        elif "flash" not in found:
            out.append(
                _err(at, f"{where} {ch} has no flash lamp: FR / FY / FDW could not be shown")
            )
        if len({(p.device, p.otype) for p in found.values()}) > 1:
            out.append(
                _err(at, f"{where} {ch} has lamps on several devices: they cannot change at once")
            )
    return out


def profile_problems(profile: FieldProfile) -> list[Problem]:
    """Every problem of a structurally valid v2 profile (errors and warnings)."""
    out: list[Problem] = []
    names = [d.name for d in profile.devices]
    for i, name in enumerate(names):
        if name in names[:i]:
            out.append(_err(f"devices[{i}].name", f"duplicate device name {name!r}"))
    units: dict[tuple[str, int], int] = {}
    for i, d in enumerate(profile.devices):
        key = (d.url, d.unit)
        if key in units:
            out.append(
                _err(
                    f"devices[{i}].unit",
                    f"unit {d.unit} on {d.url or 'the shared bus'} is also devices[{units[key]}]",
                )
            )
        units.setdefault(key, i)
    out += _entry_problems(profile)
    places = [p for i, e in enumerate(profile.map) for p in expand(e, i) if p.end <= 0x10000]
    out += _twice(places)
    out += _overlaps(places)
    out += _channels(places, "channel.", "channel")
    out += _channels(places, "readback.", "readback of channel")
    out += _zones(places)
    signals = {p.signal for p in places}
    if not any(s.startswith("channel.") for s in signals):
        out.append(_err("map", "no channel output is mapped"))
    if "heartbeat" not in signals:
        out.append(_warn("map", "no heartbeat output: an MMU watchdog would trip"))
    if "mmu.tripped" not in signals:
        out.append(_warn("map", "no mmu.tripped input: an MMU trip goes unseen"))
    used = {p.device for p in places}
    for i, d in enumerate(profile.devices):
        if d.name not in used:
            out.append(_warn(f"devices[{i}]", f"device {d.name!r} carries no signal"))
    return out


def read_profile_document(ref: str | Path) -> tuple[dict[str, Any], str]:
    """The TOML document of ``builtin:NAME`` or a file, and its source name."""
    source = str(ref)
    if isinstance(ref, str) and ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        resource = resources.files("edgectl.cabinet").joinpath("profiles", f"{name}.toml")
        if not resource.is_file():
            raise FatalFieldError(f"unknown builtin profile {name!r}")
        text = resource.read_text("utf-8")
    else:
        try:
            text = Path(ref).read_text("utf-8")
        except OSError as exc:
            raise FatalFieldError(f"cannot read profile {source}: {exc}") from exc
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"invalid TOML: {exc}")], source) from exc


def is_field_profile(ref: str | Path) -> bool:
    """Whether ``ref`` names a v2 profile (``format = 2``)."""
    try:
        document, _ = read_profile_document(ref)
    except (ConfigError, FatalFieldError):
        return False
    return document.get("format") == 2


def load_field_profile(ref: str | Path) -> FieldProfile:
    """A valid v2 profile; :class:`ConfigError` naming every problem (warnings aside)."""
    document, source = read_profile_document(ref)
    try:
        profile = FieldProfile.model_validate(document)
    except ValidationError as exc:
        problems = [
            Problem(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()
        ]
        raise ConfigError(problems, source) from exc
    problems = [p for p in profile_problems(profile) if p.severity == "error"]
    if problems:
        raise ConfigError(problems, source)
    return profile


def device_profile_problems(
    ref: str,
    *,
    where: str,
    channels: Iterable[int] = (),
    detectors: Iterable[int] = (),
) -> list[Problem]:
    """Problems of the profile a configured field device names (``where``: its path in
    the configuration), v1 or v2: it cannot be read, it is invalid (every problem, under
    ``where``), or — v2 — it leaves a channel or detector of the junction unmapped."""
    name = ref.removeprefix("builtin:")
    if ref.startswith("builtin:") and name not in BUILTIN_FIELD_PROFILES + BUILTIN_PROFILES:
        known = sorted(BUILTIN_FIELD_PROFILES + BUILTIN_PROFILES)
        return [_err(where, f"unknown builtin profile {name!r}; known: {known}")]
    try:
        if not is_field_profile(ref):
            load_profile(ref)
            return []
        document, _ = read_profile_document(ref)
        profile = FieldProfile.model_validate(document)
    except FatalFieldError as exc:
        return [_err(where, str(exc))]
    except ConfigError as exc:
        return [_err(where, f"{ref}: {p.path or '<root>'}: {p.message}") for p in exc.problems]
    except ValidationError as exc:
        return [
            _err(where, f"{ref}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}")
            for e in exc.errors()
        ]
    out = [
        Problem(where, f"{ref}: {p.path or '<root>'}: {p.message}", p.severity)
        for p in profile_problems(profile)
    ]
    signals = {p.signal for i, e in enumerate(profile.map) for p in expand(e, i)}
    for ch in channels:
        if not any(s.startswith(f"channel.{ch}.") for s in signals):
            out.append(_err(where, f"{ref}: channel {ch} of the junction has no output"))
    for det in detectors:
        if f"detector.{det}" not in signals:
            out.append(_warn(where, f"{ref}: detector {det} of the junction is not mapped"))
    return out


def field_zones(ref: str) -> dict[int, int] | None:
    """The zones a configured device's profile maps (:func:`profile_zones`); None when it is
    not a readable, structurally valid v2 profile (its own problems say why)."""
    try:
        if not is_field_profile(ref):
            return None
        document, _ = read_profile_document(ref)
        return profile_zones(FieldProfile.model_validate(document))
    except (ConfigError, FatalFieldError, ValidationError):
        return None


def zone_config_problems(
    where: str,
    source: str,
    mapped: Mapping[int, int],
    zones: Mapping[int, int],
    *,
    extra_only: bool = False,
) -> list[Problem]:
    """The junction's zones (zone id → its ``max_objects``) against those the field profiles
    map (``mapped``, zone → objects its run holds): each configured zone mapped, with an
    object run at least ``max_objects`` long, and no zone mapped that is not configured
    (``extra_only``: only that last check, for one device's profile ``source``)."""
    out: list[Problem] = []
    if extra_only:
        for zone in sorted(set(mapped) - set(zones)):
            out.append(
                _err(
                    where,
                    f"{source}: zone {zone} is in the profile but not in the junction's [[zones]]",
                )
            )
        return out
    for zone, wanted in sorted(zones.items()):
        if zone not in mapped:
            out.append(_err(where, f"zone {zone} is not mapped in {source}"))
        elif wanted and mapped[zone] == 0:
            out.append(_warn(where, f"zone {zone} has no zone.{zone}.objects: no object list"))
        elif mapped[zone] < wanted:
            out.append(
                _err(
                    where,
                    f"zone {zone}: its objects run holds {mapped[zone]} objects, "
                    f"max_objects is {wanted}",
                )
            )
    return out
