"""``edgectl check-config`` reads the field devices' profiles and names every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.cli import main
from edgectl.config.loader import check_config_file

from .test_fieldmap import BAD

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = ROOT / "edgectl" / "examples" / "io_modules.toml"
NO_ENV: dict[str, str] = {}


def _with_profile(tmp_path: Path, profile: str) -> Path:
    text = IO_MODULES.read_text()
    text = text.replace('profile = "builtin:io-modules"', f'profile = "{profile}"')
    path = tmp_path / "junction.toml"
    path.write_text(text)
    return path


def test_the_io_modules_example_is_valid() -> None:
    config, problems = check_config_file(IO_MODULES, environ=NO_ENV, check_files=True)
    assert config is not None and [p for p in problems if p.severity == "error"] == []
    assert config.field.devices[0].profile == "builtin:io-modules"


def test_a_bad_profile_is_rejected_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.toml").write_text(BAD)
    path = _with_profile(tmp_path, str(tmp_path / "bad.toml"))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    for fragment in (
        "field.devices[0].profile",
        "overlaps detector.4",
        "detector.2 mapped twice",
        "channel 1 has no red",
        "bits 12..19 out of range 0..15",
        "unknown object type 'analog_output'",
        "unknown device 'nowhere'",
        "channel 12 of the junction has no output",
    ):
        assert fragment in err, f"{fragment!r} not in:\n{err}"


def test_unknown_builtin_and_missing_file(tmp_path: Path) -> None:
    for profile, fragment in (
        ("builtin:no-such", "unknown builtin profile"),
        (str(tmp_path / "missing.toml"), "cannot read profile"),
    ):
        config, problems = check_config_file(
            _with_profile(tmp_path, profile), environ=NO_ENV, check_files=True
        )
        assert config is None
        assert any(fragment in p.message for p in problems), problems


def test_a_profile_missing_a_channel_of_the_junction(tmp_path: Path) -> None:
    text = (ROOT / "edgectl" / "cabinet" / "profiles" / "io-modules.toml").read_text()
    text = text.replace('signal = "channel.9-12.dont_walk"', 'signal = "channel.9-11.dont_walk"')
    text = text.replace('signal = "channel.9-12.walk"', 'signal = "channel.9-11.walk"')
    text = text.replace('signal = "channel.9-12.flash"', 'signal = "channel.9-11.flash"')
    (tmp_path / "p.toml").write_text(text)
    config, problems = check_config_file(
        _with_profile(tmp_path, str(tmp_path / "p.toml")), environ=NO_ENV, check_files=True
    )
    assert config is None
    assert [p.message for p in problems if p.severity == "error"] == [
        f"{tmp_path / 'p.toml'}: channel 12 of the junction has no output"
    ]
