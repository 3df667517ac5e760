"""The device-profile format and the builtin profiles (the daemon codes against these names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.cabinet.profile import BUILTIN_PROFILES, DeviceProfile, load_profile
from edgectl.config.model import Config
from edgectl.errors import ConfigError, FatalFieldError

CABINET_V1_INPUT = {
    "status": (0, 1),
    "mmu_fault": (1, 1),
    "mmu_fault_channels": (2, 2),
    "heartbeat_echo": (4, 1),
    "detector_presence": (5, 4),
    "ped_buttons": (9, 1),
    "channel_readback": (10, 32),
    "detector_counts": (42, 64),
    "uptime_s": (106, 2),
    "power_cycles": (108, 1),
    "profile_version": (109, 1),
}
CABINET_V1_HOLDING = {
    "channel_outputs": (0, 32),
    "heartbeat": (32, 1),
    "mmu_reset": (33, 1),
    "drop_permille": (40, 1),
    "delay_ms": (41, 1),
    "corrupt_permille": (42, 1),
    "silent_s": (43, 1),
    "stuck_detector": (44, 1),
    "chatter_detector": (45, 1),
    "dead_detector": (46, 1),
    "power_cycle": (47, 1),
    "demand_percent": (48, 1),
}
EXAMPLES = Path(__file__).resolve().parents[2] / "edgectl" / "examples"


@pytest.mark.parametrize("name", BUILTIN_PROFILES)
def test_builtin_profiles_follow_cabinet_v1(name: str) -> None:
    p = load_profile(f"builtin:{name}")
    regs = p.registers
    assert regs.map == "cabinet-v1"
    assert regs.version == 1
    assert {s.name: (s.address, s.count) for s in regs.input} == CABINET_V1_INPUT
    assert {s.name: (s.address, s.count) for s in regs.holding} == CABINET_V1_HOLDING
    assert regs.input_span == (0, 110)
    assert all(s.description for s in (*regs.input, *regs.holding))
    assert regs.input_register("status").address == 0
    assert regs.holding_register("heartbeat").address == 32


@pytest.mark.parametrize(
    ("name", "example"), [("nema-cabinet", "eight_phase.toml"), ("two-phase", "two_phase.toml")]
)
def test_cabinet_wiring_matches_the_example_config(name: str, example: str) -> None:
    import tomllib

    config = Config.model_validate(tomllib.loads((EXAMPLES / example).read_text()))
    wiring = load_profile(f"builtin:{name}").cabinet
    assert wiring is not None
    assert {(c.id, c.phase, c.kind.value) for c in wiring.channels} == {
        (c.id, c.phase, c.source.value) for c in config.channels
    }
    assert {d.id for d in wiring.detectors} == {d.id for d in config.detectors}
    moves = {m.id: m.channel for m in wiring.movements}
    by_channel = {c.id: c.phase for c in wiring.channels}
    for det in config.detectors:
        wired = next(d for d in wiring.detectors if d.id == det.id)
        assert (by_channel[moves[wired.movement]],) == det.call_phases
        assert wired.position.value == det.type.value
        assert wired.distance_m == det.distance_m


def test_nema_conflict_card() -> None:
    wiring = load_profile("builtin:nema-cabinet").cabinet
    assert wiring is not None
    conflicts = set(wiring.conflicts())
    assert (2, 6) not in conflicts
    assert (1, 5) not in conflicts
    assert (2, 9) not in conflicts
    assert (2, 4) in conflicts
    assert (1, 2) in conflicts
    assert (9, 10) in conflicts
    assert all(a < b for a, b in conflicts)


def test_invalid_profiles_list_their_problems(tmp_path: Path) -> None:
    with pytest.raises(FatalFieldError):
        load_profile("builtin:nope")
    with pytest.raises(FatalFieldError):
        load_profile(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[registers]\n'
        '[[registers.input]]\nname = "a"\naddress = 0\ncount = 2\n'
        '[[registers.input]]\nname = "b"\naddress = 1\n'
        '[[registers.holding]]\nname = "c"\naddress = 0\nbogus = 1\n'
    )
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    assert err.value.problems


def test_profile_without_cabinet_is_a_plain_register_map(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        'name = "card"\n[registers]\nmap = "detector-card"\n'
        '[[registers.input]]\nname = "detector_presence"\naddress = 100\ncount = 4\n'
        '[[registers.holding]]\nname = "heartbeat"\naddress = 0\n'
    )
    p = load_profile(f)
    assert isinstance(p, DeviceProfile)
    assert p.cabinet is None
    assert p.registers.input_span == (100, 4)
