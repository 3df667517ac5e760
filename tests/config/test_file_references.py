"""Files a configuration names, the config file itself, and credentials (issue 21):
``check-config`` names every problem with its path; ``edgectl run`` refuses them at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgectl.cli import main
from edgectl.config.loader import check_config_file, check_config_text

ROOT = Path(__file__).resolve().parents[2]
NO_ENV: dict[str, str] = {}
GOOD_KEY = b"k" * 40


def two_phase() -> str:
    return (ROOT / "edgectl" / "examples" / "two_phase.toml").read_text()


def config_with(tmp_path: Path, mqtt: str) -> Path:
    path = tmp_path / "edgectl.toml"
    path.write_text(two_phase() + "\n[mqtt]\n" + mqtt + "\n")
    return path


def private(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def problems_of(tmp_path: Path, mqtt: str) -> list[tuple[str, str, str]]:
    config, problems = check_config_file(
        config_with(tmp_path, mqtt), environ=NO_ENV, check_files=True
    )
    out = [(p.severity, p.path, p.message) for p in problems]
    assert (config is None) == any(s == "error" for s, _, _ in out)
    return out


def only_error(found: list[tuple[str, str, str]], path: str, fragment: str) -> None:
    errors = [(p, m) for s, p, m in found if s == "error"]
    assert len(errors) == 1, found
    assert errors[0][0] == path
    assert fragment in errors[0][1], errors[0][1]


# --------------------------------------------------------------------------- key files


def test_good_key_file_passes(tmp_path: Path) -> None:
    key = private(tmp_path / "command.key", GOOD_KEY + b"\n")
    assert problems_of(tmp_path, f'command_key_file = "{key}"') == []


def test_missing_key_file(tmp_path: Path) -> None:
    found = problems_of(tmp_path, f'command_key_file = "{tmp_path / "nope.key"}"')
    only_error(found, "mqtt.command_key_file", "missing")
    assert str(tmp_path / "nope.key") in found[0][2]


def test_empty_key_file(tmp_path: Path) -> None:
    key = private(tmp_path / "k", b"\n")
    only_error(
        problems_of(tmp_path, f'command_key_file = "{key}"'), "mqtt.command_key_file", "empty"
    )


def test_short_key_file(tmp_path: Path) -> None:
    key = private(tmp_path / "k", b"x")
    only_error(
        problems_of(tmp_path, f'command_key_file = "{key}"'),
        "mqtt.command_key_file",
        "too short (1 bytes, at least 32)",
    )


@pytest.mark.parametrize("mode", [0o666, 0o644, 0o604, 0o620])
def test_key_readable_by_others_or_writable_by_group(tmp_path: Path, mode: int) -> None:
    key = private(tmp_path / "k", GOOD_KEY, mode)
    only_error(
        problems_of(tmp_path, f'command_key_file = "{key}"'),
        "mqtt.command_key_file",
        f"mode {mode:04o}",
    )


def test_one_byte_world_writable_key_names_both_problems(tmp_path: Path) -> None:
    key = private(tmp_path / "k", b"x", 0o666)
    found = [m for s, p, m in problems_of(tmp_path, f'command_key_file = "{key}"') if s == "error"]
    assert any("too short" in m for m in found)
    assert any("mode 0666" in m for m in found)


def test_password_file_mode_and_emptiness(tmp_path: Path) -> None:
    pw = private(tmp_path / "pw", b"", 0o644)
    found = problems_of(
        tmp_path, f'url = "mqtts://b:8883"\npassword_file = "{pw}"\nallow_unsigned_commands = true'
    )
    found = [f for f in found if f[1] != "mqtt.command_key_file"]  # the opt-in's warning
    assert {(p, "empty" in m or "mode 0644" in m) for s, p, m in found if s == "error"} == {
        ("mqtt.password_file", True)
    }
    assert len(found) == 2


def test_directory_is_not_a_key(tmp_path: Path) -> None:
    only_error(
        problems_of(tmp_path, f'command_key_file = "{tmp_path}"'),
        "mqtt.command_key_file",
        "a directory, not a regular file",
    )


def test_fifo_key_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    only_error(
        problems_of(tmp_path, f'command_key_file = "{fifo}"'),
        "mqtt.command_key_file",
        "a FIFO",
    )


def test_dev_zero_key_is_refused_without_reading(tmp_path: Path) -> None:
    only_error(
        problems_of(tmp_path, 'command_key_file = "/dev/zero"'),
        "mqtt.command_key_file",
        "character device",
    )


def test_huge_key_file_is_not_read(tmp_path: Path) -> None:
    key = tmp_path / "k"
    with key.open("wb") as f:
        f.truncate(1 << 30)  # a sparse 1 GiB file
    key.chmod(0o600)
    only_error(
        problems_of(tmp_path, f'command_key_file = "{key}"'), "mqtt.command_key_file", "too large"
    )


def test_key_path_through_a_file_is_unreadable(tmp_path: Path) -> None:
    plain = private(tmp_path / "plain", GOOD_KEY)
    only_error(
        problems_of(tmp_path, f'command_key_file = "{plain}/k"'),
        "mqtt.command_key_file",
        "unreadable (Not a directory)",
    )


def test_unreadable_key_file(tmp_path: Path) -> None:
    key = private(tmp_path / "k", GOOD_KEY, 0o000)
    if os.access(key, os.R_OK):
        pytest.skip("running as root: every file is readable")
    only_error(
        problems_of(tmp_path, f'command_key_file = "{key}"'), "mqtt.command_key_file", "unreadable"
    )


def test_file_problems_listed_with_other_errors(tmp_path: Path) -> None:
    path = config_with(
        tmp_path, f'command_key_file = "{tmp_path / "nope"}"\n[daemon]\nlog_level = "x"'
    )
    config, problems = check_config_file(path, environ=NO_ENV, check_files=True)
    assert config is None
    assert {p.path for p in problems} >= {"daemon.log_level", "mqtt.command_key_file"}


def test_check_config_cli_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with(tmp_path, f'command_key_file = "{tmp_path / "nope.key"}"')
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error: mqtt.command_key_file: cannot read file" in err
    assert "nope.key" in err


# --------------------------------------------------------------------------- the config file itself


def _check_config(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgectl", "check-config", path],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of the suite
        check=False,
    )


def test_check_config_on_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)
    done = _check_config(str(fifo))
    assert done.returncode == 1
    assert "a FIFO, not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_config_on_dev_zero_does_not_read_it() -> None:
    done = _check_config("/dev/zero")
    assert done.returncode == 1
    assert "character device, not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_oversized_config_file(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(64 << 20)
    config, problems = check_config_file(big, environ=NO_ENV)
    assert config is None
    assert "too large" in problems[0].message


# --------------------------------------------------------------------------- edgectl run


def _run(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgectl", "run", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "EDGECTL_DAEMON__STATE_DIR": str(config.parent / "state")},
    )


@pytest.mark.parametrize("content", [None, b"", b"short"])
def test_run_refuses_a_bad_key_file_at_start(tmp_path: Path, content: bytes | None) -> None:
    key = tmp_path / "command.key"
    if content is not None:
        private(key, content)
    path = config_with(tmp_path, f'command_key_file = "{key}"')
    done = _run(path, "--field", "memory://")
    assert done.returncode not in (0, None)
    assert "mqtt.command_key_file" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # refused before anything started


# --------------------------------------------------------------------------- credentials


def test_credentials_in_the_url_are_refused_and_not_echoed(tmp_path: Path) -> None:
    config, problems = check_config_text(
        two_phase()
        + '\n[mqtt]\nurl = "mqtts://junction:s3cr3t@broker:8883"\n'
        + "allow_unsigned_commands = true\n",
        environ=NO_ENV,
    )
    problems = [p for p in problems if p.severity == "error"]
    assert config is None
    assert [p.path for p in problems] == ["mqtt.url"]
    assert "credentials in the broker URL" in problems[0].message
    assert "s3cr3t" not in str(problems)


def test_password_over_plain_mqtt_needs_opting_in(tmp_path: Path) -> None:
    pw = private(tmp_path / "pw", b"secret\n")
    key = private(tmp_path / "command.key", GOOD_KEY)
    mqtt = f'url = "mqtt://broker:1883"\npassword_file = "{pw}"\ncommand_key_file = "{key}"'
    only_error(problems_of(tmp_path, mqtt), "mqtt.password_file", "in clear")
    found = problems_of(tmp_path, mqtt + "\nallow_plaintext_password = true")
    assert [(s, p) for s, p, _ in found] == [("warning", "mqtt.password_file")]
    # TLS (a CA, or mqtts://) or a local socket is fine
    keyed = f'password_file = "{pw}"\ncommand_key_file = "{key}"'
    assert problems_of(tmp_path, f'url = "mqtts://broker"\n{keyed}') == []
    assert problems_of(tmp_path, f'url = "unix:///run/mosquitto.sock"\n{keyed}') == []


def test_a_broker_without_a_command_key_is_refused_unless_opted_in(tmp_path: Path) -> None:
    # issue 21: unsigned commands were accepted by default, silently
    only_error(
        problems_of(tmp_path, 'url = "mqtts://broker:8883"'),
        "mqtt.command_key_file",
        "anyone with publish rights",
    )
    found = problems_of(tmp_path, 'url = "mqtts://broker:8883"\nallow_unsigned_commands = true')
    assert [(s, p) for s, p, _ in found] == [("warning", "mqtt.command_key_file")]
    # no broker, no commands: nothing to sign
    assert problems_of(tmp_path, "") == []


def test_run_refuses_a_broker_override_without_a_command_key(tmp_path: Path) -> None:
    done = _run(config_with(tmp_path, ""), "--field", "memory://", "--broker", "mqtt://127.0.0.1:1")
    assert done.returncode == 78, done.stderr
    assert "mqtt.command_key_file" in done.stderr


def test_the_sync_service_refuses_to_run_unkeyed(tmp_path: Path) -> None:
    from edgectl.config.settings import MqttSettings
    from edgectl.errors import SyncError
    from edgectl.sync.service import SyncService

    with pytest.raises(SyncError, match="unsigned"):
        SyncService(
            MqttSettings(url="mqtt://127.0.0.1:1"),
            intersection_id="hz-0001",
            state_dir=tmp_path,
            handler=None,  # type: ignore[arg-type]  # refused before it is used
            version="0",
            config_digest="sha256:0",
        )
    assert not list(tmp_path.iterdir())  # nothing opened or written


def test_run_refuses_credentials_in_broker_override(tmp_path: Path) -> None:
    path = config_with(tmp_path, "allow_unsigned_commands = true")
    done = _run(path, "--field", "memory://", "--broker", "mqtt://u:topsecret@127.0.0.1:1")
    assert done.returncode not in (0, None)
    assert "credentials in the broker URL" in done.stderr
    assert "topsecret" not in done.stderr + done.stdout


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "-60.0", "1e12"])
def test_outbox_max_age_must_be_finite(value: str) -> None:
    config, problems = check_config_text(
        two_phase() + f"\n[mqtt]\noutbox_max_age_s = {value}\n", environ=NO_ENV
    )
    assert config is None
    assert [p.path for p in problems] == ["mqtt.outbox_max_age_s"]
