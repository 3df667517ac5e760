"""``edgectl init``: a production configuration that ``check-config`` accepts as it is, and the
packaged examples found from anywhere (not from the current directory)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgectl.cli import main
from edgectl.commands.examples import EXAMPLES, example_path
from edgectl.commands.init import SECRET_FILES
from edgectl.config.loader import check_config_file

from .support import make_secrets

NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a directory with no ``examples/`` in it."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in list(__import__("os").environ):
        if name.startswith("EDGECTL_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_init_writes_a_production_config_check_config_accepts_cleanly(
    example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = make_secrets(tmp_path / "etc")
    argv = ["init", "--example", example, "--secrets-dir", str(secrets), "edgectl.toml"]
    assert main(argv) == 0
    capsys.readouterr()
    config, problems = check_config_file("edgectl.toml", environ=NO_ENV, check_files=True)
    assert config is not None, problems
    assert problems == []  # not even a warning
    # the production sections, as the daemon will read them
    (device,) = config.field.devices
    assert device.profile == EXAMPLES[example]
    assert device.url.startswith("modbus+tcp://")
    assert config.mqtt.url.startswith("mqtts://")
    for key, name in SECRET_FILES.items():
        assert getattr(config.mqtt, key) == secrets / name
    assert config.daemon.state_dir == Path("/var/lib/edgectl")
    assert config.daemon.metrics_listen
    # ... and the CLI agrees (exit 0, no warning line)
    assert main(["check-config", "edgectl.toml"]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.out and out.err == ""
    # every line added to the example is either a key or explained
    text = Path("edgectl.toml").read_text()
    assert text.startswith("# edgectl configuration, written by `edgectl init`")
    assert example_path(example).read_text().rstrip() in text


def test_the_default_config_names_the_secrets_in_etc_edgectl_and_check_config_reads_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before the secrets are in place, check-config says which are missing (and only that)."""
    assert main(["init", "edgectl.toml"]) == 0
    assert main(["check-config", "edgectl.toml"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert sorted(e.split(": error: ")[1].split(":")[0] for e in errors) == sorted(
        f"mqtt.{key}" for key in SECRET_FILES
    )
    assert all(f"/etc/edgectl/{name}" in "".join(errors) for name in SECRET_FILES.values())


def test_init_takes_a_profile_and_refuses_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "--profile", "builtin:two-phase", "--example", "two_phase", "-"]) == 0
    doc = tomllib.loads(capsys.readouterr().out)
    assert doc["field"]["devices"][0]["profile"] == "builtin:two-phase"
    assert main(["init", "--profile", "builtin:no-such-cabinet", "x.toml"]) == 2
    assert "no-such-cabinet" in capsys.readouterr().err
    assert not Path("x.toml").exists()


@pytest.mark.parametrize("profile", ["builtin:io-modules", "builtin:cabinet-v1"])
def test_init_takes_a_format_2_profile_and_check_config_accepts_the_result(
    profile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A v2 profile (several Modbus units) is checked as check-config checks it, not
    refused by the v1 register-map loader."""
    secrets = make_secrets(tmp_path / "etc")
    argv = ["init", "--profile", profile, "--secrets-dir", str(secrets), "edgectl.toml"]
    assert main(argv) == 0, capsys.readouterr().err
    config, problems = check_config_file("edgectl.toml", environ=NO_ENV, check_files=True)
    assert config is not None, problems
    assert [p for p in problems if p.severity == "error"] == []
    assert config.field.devices[0].profile == profile


def test_init_refuses_a_v2_profile_with_every_problem_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "format = 2\n"
        'name = "bad"\n'
        '[[devices]]\nname = "do"\nunit = 3\n'
        '[[map]]\nsignal = "channel.1.green"\ndevice = "do"\ntype = "coil"\naddress = 0\n'
        '[[map]]\nsignal = "channel.1.flash"\ndevice = "do"\ntype = "coil"\naddress = 0\n'
        '[[map]]\nsignal = "heartbeat"\ndevice = "nowhere"\ntype = "relay"\naddress = 9\n'
    )
    assert main(["init", "--profile", str(bad), "x.toml"]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'nowhere'" in err
    assert "unknown object type 'relay'" in err
    assert "overlaps" in err
    assert "channel 1 has no red" in err
    assert "channel 2 of the junction has no output" in err
    assert not Path("x.toml").exists()


def test_init_refuses_a_zone_profile_for_an_example_without_zones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the examples init writes have no [[zones]]: the config would fail check-config
    assert main(["init", "--profile", "builtin:io-modules-zones", "x.toml"]) == 2
    err = capsys.readouterr().err
    assert "zone 2 is in the profile but not in the junction's [[zones]]" in err
    assert not Path("x.toml").exists()


def test_init_names_every_builtin_profile_when_one_is_unknown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "--profile", "builtin:no-such-cabinet", "-"]) == 2
    err = capsys.readouterr().err
    for name in ("cabinet-v1", "io-modules", "nema-cabinet", "two-phase"):
        assert name in err


def test_init_never_overwrites_without_force(capsys: pytest.CaptureFixture[str]) -> None:
    target = Path("edgectl.toml")
    target.write_text("# mine\n")
    assert main(["init", str(target)]) == 1
    assert "exists" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert main(["init", "--force", str(target)]) == 0
    assert "[mqtt]" in target.read_text()


def test_init_dash_writes_to_stdout_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "-"]) == 0
    out = capsys.readouterr().out
    assert tomllib.loads(out)["intersection"]["id"] == "hz-0001"
    assert list(Path().iterdir()) == []


def test_init_default_path_is_edgectl_toml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 0
    assert "wrote edgectl.toml" in capsys.readouterr().out
    assert Path("edgectl.toml").is_file()


def test_simulate_and_the_examples_need_no_checkout_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--duration", "30", "--quiet"]) == 0
    assert "hz-0001" in capsys.readouterr().out
    for name in EXAMPLES:
        assert example_path(name).is_file()
        assert example_path(f"{name}.toml") == example_path(name)
    with pytest.raises(FileNotFoundError, match="known: eight_phase, two_phase"):
        example_path("nine_phase")
