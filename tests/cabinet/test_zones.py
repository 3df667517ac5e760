"""Zone sensor signals of v2 profiles: codec, request plan, validation, check-config."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import MappingProxyType

import pytest

from edgectl.cabinet.fieldcheck import load_field_profile, profile_problems, profile_zones
from edgectl.cabinet.fieldcodec import decode_inputs, encode_inputs
from edgectl.cabinet.fieldmap import FieldProfile, ObjectType
from edgectl.cabinet.planner import FieldPlan, ReadRequest
from edgectl.cabinet.registers import CabinetSnapshot
from edgectl.cabinet.zones import ZoneFrame, next_frame
from edgectl.cli import main
from edgectl.config.loader import check_config_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "edgectl" / "examples" / "io_modules_zones.toml"
PROFILE = ROOT / "edgectl" / "cabinet" / "profiles" / "io-modules-zones.toml"
NO_ENV: dict[str, str] = {}

# four zones as ranges: 5 values with a stride of 24 registers, the object runs behind them
RANGES = """
format = 2
name = "zones-ranges"

[[devices]]
name = "lamps"
unit = 1

[[devices]]
name = "radar"
unit = 7
byte_order = "{order}"

[[map]]
signal = "channel.1.red"
device = "lamps"
type = "coil"
address = 0

[[map]]
signal = "channel.1.flash"
device = "lamps"
type = "coil"
address = 1

[[map]]
signal = "heartbeat"
device = "lamps"
type = "coil"
address = 2

[[map]]
signal = "mmu.tripped"
device = "lamps"
type = "discrete_input"
address = 0

{zones}
"""


def _zone_map(fields: dict[str, int], *, objects: int = 4, stride: int = 24) -> str:
    out = []
    for what, address in fields.items():
        extra = f"\nobjects = {objects}" if what == "objects" else ""
        out.append(
            f'[[map]]\nsignal = "zone.1-4.{what}"\ndevice = "radar"\ntype = "input_register"\n'
            f"address = {address}\nstride = {stride}{extra}\n"
        )
    return "\n".join(out)


FIELDS = {"frame": 0, "vehicles": 1, "halting": 2, "queue": 3, "speed": 4, "objects": 5}


def _profile(order: str = "big", **kw: object) -> FieldProfile:
    fields = kw.pop("fields", FIELDS)
    assert isinstance(fields, dict)
    text = RANGES.format(order=order, zones=_zone_map(fields, **kw))  # type: ignore[arg-type]
    return FieldProfile.model_validate(tomllib.loads(text))


def _snapshot(zones: tuple[ZoneFrame, ...]) -> CabinetSnapshot:
    return CabinetSnapshot(
        t=0.0,
        presence=frozenset(),
        ped_buttons=frozenset(),
        readback=MappingProxyType({}),
        mmu_tripped=False,
        cabinet_flash=False,
        in_control=True,
        mmu_fault=0,
        mmu_fault_channels=frozenset(),
        heartbeat_echo=0,
        counts=(),
        uptime_s=0,
        power_cycles=0,
        zones=zones,
    )


ZONES = (
    ZoneFrame(1, 7, 3, 2, 13.5, 4.2, ((0.0, 0.0), (7.0, 0.1), (60.3, 13.9))),
    ZoneFrame(2, 65535, 0, 0, 0.0, 0.0, ()),
    ZoneFrame(3, 1, 6, 0, 0.0, 16.6, ((5.0, 16.5), (20.0, 16.6), (35.0, 16.7), (50.0, 16.6))),
    ZoneFrame(4, 0),  # no measurement
)


@pytest.mark.parametrize("order", ["big", "little"])
def test_zones_round_trip_through_the_registers(order: str) -> None:
    plan = FieldPlan(_profile(order))
    images = encode_inputs(plan, _snapshot(ZONES))
    decoded = decode_inputs(plan, images, 1.0)
    assert decoded.zones == ZONES


def test_the_wire_words_and_their_scales() -> None:
    plan = FieldPlan(_profile())
    words = encode_inputs(plan, _snapshot(ZONES))[("radar", ObjectType.INPUT_REGISTER)]
    # zone 1 at 0: frame, vehicles, halting, queue dm, speed 0.1 m/s, count, (d dm, v 0.1 m/s)…
    assert [words[a] for a in range(12)] == [7, 3, 2, 135, 42, 3, 0, 0, 70, 1, 603, 139]
    assert words[13] == 0 and words[12] == 0  # the 4th object slot of zone 1 is empty
    assert words[24] == 65535  # zone 2 starts one stride further
    # an object count beyond the run is cut to the run
    images = {("radar", ObjectType.INPUT_REGISTER): dict(words)}
    images[("radar", ObjectType.INPUT_REGISTER)][5] = 40
    assert len(decode_inputs(plan, images, 0.0).zones[0].objects) == 4


def test_a_little_endian_unit_swaps_bytes() -> None:
    plan = FieldPlan(_profile("little"))
    words = encode_inputs(plan, _snapshot(ZONES))[("radar", ObjectType.INPUT_REGISTER)]
    assert words[0] == 7 << 8  # frame 7, bytes swapped on the wire


def test_the_counter_skips_zero() -> None:
    assert next_frame(0) == 1
    assert next_frame(65534) == 65535
    assert next_frame(65535) == 1


def test_zones_are_read_in_the_fewest_requests() -> None:
    # 4 zones x 24 registers with 5 + 9 mapped: one run of mapped words per zone
    plan = FieldPlan(_profile())
    reads = [r for r in plan.reads if r.device == "radar"]
    assert reads == [ReadRequest("radar", ObjectType.INPUT_REGISTER, 24 * k, 14) for k in range(4)]
    # contiguous zones (stride = their size): one request
    plan = FieldPlan(_profile(stride=14))
    assert [r for r in plan.reads if r.device == "radar"] == [
        ReadRequest("radar", ObjectType.INPUT_REGISTER, 0, 56)
    ]
    # the builtin zone unit: four zones of 22 registers in one FC4 request
    builtin = FieldPlan(load_field_profile("builtin:io-modules-zones"))
    assert builtin.reads_of("zones") == (ReadRequest("zones", ObjectType.INPUT_REGISTER, 0, 88),)
    # more than 125 registers: the fewest requests of at most 125
    plan = FieldPlan(_profile(objects=30, stride=66))
    assert [(r.address, r.count) for r in plan.reads if r.device == "radar"] == [
        (0, 125),
        (125, 125),
        (250, 14),
    ]


def test_the_builtin_zone_profile() -> None:
    profile = load_field_profile("builtin:io-modules-zones")
    assert [p for p in profile_problems(profile) if p.severity == "error"] == []
    assert profile_zones(profile) == {2: 8, 4: 8, 6: 8, 8: 8}
    assert profile.device("zones").unit == 6
    # io-modules itself is unchanged: five units, no zone
    assert profile_zones(load_field_profile("builtin:io-modules")) == {}
    assert len(load_field_profile("builtin:io-modules").devices) == 5


def _problems(text: str) -> list[str]:
    profile = FieldProfile.model_validate(tomllib.loads(text))
    return [p.message for p in profile_problems(profile) if p.severity == "error"]


def test_bad_zone_mappings_are_named() -> None:
    base = RANGES.format(order="big", zones=_zone_map(FIELDS))
    extra = """
[[map]]
signal = "zone.2.vehicles"
device = "radar"
type = "input_register"
address = 200

[[map]]
signal = "zone.5.frame"
device = "radar"
type = "coil"
address = 0

[[map]]
signal = "zone.6.objects"
device = "radar"
type = "input_register"
address = 300

[[map]]
signal = "zone.7.queue"
device = "radar"
type = "input_register"
address = 400
bit = 4
bits = 8
objects = 3
"""
    problems = _problems(base + extra)
    for fragment in (
        "zone.2.vehicles mapped twice",
        "zone.5.frame: zone data are registers, not a coil",
        "zone.6.objects needs objects = how many the run holds",
        "zone.7.queue: one whole register per value",
        "only zone.N.objects takes objects, not zone.7.queue",
        "zone 6 has no zone.6.frame",
        "zone 7 has no zone.7.vehicles",
    ):
        assert any(fragment in p for p in problems), f"{fragment!r} not in {problems}"
    # overlapping zone registers
    problems = _problems(RANGES.format(order="big", zones=_zone_map(FIELDS, stride=10)))
    assert any("overlaps" in p for p in problems), problems


def _config_with(tmp_path: Path, profile: str) -> Path:
    text = EXAMPLE.read_text()
    text = text.replace('profile = "builtin:io-modules-zones"', f'profile = "{profile}"')
    path = tmp_path / "junction.toml"
    path.write_text(text)
    return path


def test_the_zone_example_is_valid() -> None:
    config, problems = check_config_file(EXAMPLE, environ=NO_ENV, check_files=True)
    assert config is not None, problems
    assert [p for p in problems if p.severity == "error"] == []
    assert [z.id for z in config.zones] == [2, 4, 6, 8]
    assert [z.loops for z in config.zones] == [(2, 9), (4, 10), (6, 11), (8, 12)]


def test_check_config_rejects_zones_that_do_not_fit_the_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PROFILE.read_text()
    # zone 8's object run shorter than max_objects; zone 4 gone; zone 9 not in the junction
    text = text.replace(
        'signal = "zone.8.objects"\ndevice = "zones"\ntype = "input_register"\naddress = 71\n'
        "objects = 8",
        'signal = "zone.8.objects"\ndevice = "zones"\ntype = "input_register"\naddress = 71\n'
        "objects = 4",
    )
    for what in ("frame", "vehicles", "halting", "queue", "speed", "objects"):
        text = text.replace(f'signal = "zone.4.{what}"', f'signal = "zone.9.{what}"')
    (tmp_path / "p.toml").write_text(text)
    path = _config_with(tmp_path, str(tmp_path / "p.toml"))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    for fragment in (
        "zone 8: its objects run holds 4 objects, max_objects is 8",
        "zone 4 is not mapped",
        "zone 9 is in the profile but not in the junction's [[zones]]",
    ):
        assert fragment in err, f"{fragment!r} not in:\n{err}"


def test_check_config_rejects_bad_zone_config(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("id = 8\nphases = [8]", "id = 6\nphases = [17]", 1)
    text = text.replace("loops = [2, 9]", "loops = [2, 9, 63]", 1)
    path = tmp_path / "junction.toml"
    path.write_text(text)
    config, problems = check_config_file(path, environ=NO_ENV, check_files=True)
    assert config is None
    messages = [f"{p.path}: {p.message}" for p in problems]
    assert any("zones[3].phases" in m for m in messages), messages  # phase 17: out of range
    path.write_text(EXAMPLE.read_text().replace("id = 8\nphases = [8]", "id = 6\nphases = [8]", 1))
    config, problems = check_config_file(path, environ=NO_ENV, check_files=True)
    assert config is None
    assert [(p.path, p.message) for p in problems if p.severity == "error"] == [
        ("zones[3].id", "duplicate zone id 6 (also zones[2])")
    ]
    path.write_text(EXAMPLE.read_text().replace("loops = [2, 9]", "loops = [2, 9, 63]", 1))
    config, problems = check_config_file(path, environ=NO_ENV, check_files=True)
    assert config is None
    assert [p.message for p in problems if p.severity == "error"] == ["detector 63 is not defined"]


def test_a_profile_without_zones_for_a_junction_with_zones(tmp_path: Path) -> None:
    path = _config_with(tmp_path, "builtin:io-modules")
    config, problems = check_config_file(path, environ=NO_ENV, check_files=True)
    assert config is None
    errors = sorted(p.message for p in problems if p.severity == "error")
    assert errors == [f"zone {z} is not mapped in the field profiles" for z in (2, 4, 6, 8)]
