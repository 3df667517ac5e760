"""Profile format v2: signal names, ranges, and validation that names every problem."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgectl.cabinet.fieldcheck import (
    BUILTIN_FIELD_PROFILES,
    is_field_profile,
    load_field_profile,
    profile_problems,
)
from edgectl.cabinet.fieldmap import FieldProfile, ObjectType, expand, parse_signal
from edgectl.errors import ConfigError, FatalFieldError


def test_signal_names_and_ranges() -> None:
    assert parse_signal("mmu.tripped") == ("mmu.tripped", [])
    assert parse_signal("channel.1-4.red") == ("channel.{n}.red", [1, 2, 3, 4])
    assert parse_signal("detector.7.count") == ("detector.{n}.count", [7])
    assert parse_signal("mmu.fault_channel.32") == ("mmu.fault_channel.{n}", [32])
    assert parse_signal("channel.33.red") is None  # 32 channels at most
    assert parse_signal("channel.4-1.red") is None
    assert parse_signal("channel.1.purple") is None
    assert parse_signal("zone.1") is None


def test_packed_bits_run_on_into_the_next_register() -> None:
    profile = load_field_profile("builtin:cabinet-v1")
    entry = next(e for e in profile.map if e.signal == "detector.1-64")
    places = expand(entry, 0)
    assert [(p.address, p.bit) for p in places[:2]] == [(5, 0), (5, 1)]
    assert (places[16].address, places[16].bit) == (6, 0)
    assert (places[63].address, places[63].bit) == (8, 15)


@pytest.mark.parametrize("name", BUILTIN_FIELD_PROFILES)
def test_builtin_profiles_are_clean(name: str) -> None:
    profile = load_field_profile(f"builtin:{name}")
    assert profile_problems(profile) == []
    assert is_field_profile(f"builtin:{name}")


def test_v1_profiles_are_not_v2() -> None:
    assert not is_field_profile("builtin:nema-cabinet")


def test_unknown_builtin_is_fatal() -> None:
    with pytest.raises(FatalFieldError):
        load_field_profile("builtin:no-such-cabinet")


BAD = """
format = 2
name = "bad"

[[devices]]
name = "di"
unit = 1

[[devices]]
name = "do"
unit = 2

[[devices]]
name = "do2"
unit = 2

[[map]]
signal = "detector.1-4"
device = "di"
type = "discrete_input"
address = 0

[[map]]
signal = "detector.5"          # overlaps detector.4 at DI 3
device = "di"
type = "discrete_input"
address = 3

[[map]]
signal = "detector.2"          # detector 2 mapped twice
device = "di"
type = "discrete_input"
address = 9

[[map]]
signal = "channel.1.green"     # channel 1 has no red
device = "do"
type = "coil"
address = 0

[[map]]
signal = "channel.1.flash"
device = "do"
type = "coil"
address = 1

[[map]]
signal = "mmu.fault"
device = "di"
type = "input_register"
address = 0
bit = 12
bits = 8                       # bits 12..19: out of range

[[map]]
signal = "heartbeat"
device = "do"
type = "analog_output"         # unknown object type
address = 5

[[map]]
signal = "ped.2"
device = "nowhere"             # unknown device
type = "discrete_input"
address = 0

[[map]]
signal = "channel.2.state"     # an output on a read-only object
device = "di"
type = "input_register"
address = 4

[[map]]
signal = "channel.9.beacon"    # unknown signal
device = "do"
type = "coil"
address = 8
"""


def _problems(text: str) -> list[str]:
    profile = FieldProfile.model_validate(tomllib.loads(text))
    return [f"{p.path}: {p.message}" for p in profile_problems(profile) if p.severity == "error"]


def test_every_problem_is_named() -> None:
    found = "\n".join(_problems(BAD))
    expected = [
        "devices[2].unit: unit 2 on the shared bus is also devices[1]",
        "map[1]: detector.5 overlaps detector.4 (map[0]) at di discrete_input 3",
        "map[2]: detector.2 mapped twice (also map[0])",
        "channel 1 has no red",
        "map[5].bits: bits 12..19 out of range 0..15",
        "map[6].type: unknown object type 'analog_output'",
        "map[7].device: unknown device 'nowhere'",
        "map[8].type: channel.2.state is an output: input_register is read-only",
        "map[9].signal: unknown signal 'channel.9.beacon'",
    ]
    for line in expected:
        assert line in found, f"missing {line!r} in:\n{found}"


def test_load_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_field_profile(path)
    assert len(info.value.problems) >= 9


def test_structural_problems_are_named_too(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('format = 2\nname = "x"\ndevices = [{name = "A B", unit = 300}]\nmap = []\n')
    with pytest.raises(ConfigError) as info:
        load_field_profile(path)
    paths = {p.path for p in info.value.problems}
    assert {"devices.0.name", "devices.0.unit", "map"} <= paths


def test_readback_of_an_output_coil_is_not_an_overlap() -> None:
    profile = load_field_profile("builtin:io-modules")
    coils = [p for p in profile.map if p.type == ObjectType.COIL.value]
    assert any(m.signal.startswith("readback.") for m in coils)
    assert profile_problems(profile) == []


def test_bit_on_a_coil_and_flashless_channel_are_problems() -> None:
    text = """
format = 2
name = "x"
[[devices]]
name = "do"
[[map]]
signal = "channel.1-2.red"
device = "do"
type = "coil"
address = 0
bit = 3
[[map]]
signal = "heartbeat"
device = "do"
type = "coil"
address = 9
"""
    found = "\n".join(_problems(text))
    assert "map[0].bit: a coil has no bits" in found
    assert "channel 1 has no flash lamp" in found
    assert "channel 2 has no flash lamp" in found


def test_lamps_of_one_channel_on_two_devices() -> None:
    text = """
format = 2
name = "x"
[[devices]]
name = "a"
[[devices]]
name = "b"
unit = 2
[[map]]
signal = "channel.1.red"
device = "a"
type = "coil"
address = 0
[[map]]
signal = "channel.1.green"
device = "b"
type = "coil"
address = 0
[[map]]
signal = "channel.1.flash"
device = "a"
type = "coil"
address = 1
"""
    assert "channel 1 has lamps on several devices" in "\n".join(_problems(text))
