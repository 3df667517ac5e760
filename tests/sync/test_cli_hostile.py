"""``edgectl cmd`` / ``edgectl watch`` on hostile or mistaken input: one clear line, exit 2,
never a traceback, never a credential echoed (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.cli import main
from edgectl.sync.link import redact_url

BROKER = "mqtt://127.0.0.1:1"  # nothing listens: every case must fail before connecting


def cmd(*args: str) -> list[str]:
    return ["cmd", "--broker", BROKER, "--intersection", "hz-0001", "request_state", *args]


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("intersection", ["+", "#", "hz/0001", "hz+1", ""])
def test_cmd_wildcard_intersection(capsys: pytest.CaptureFixture[str], intersection: str) -> None:
    argv = ["cmd", "--broker", BROKER, "--intersection", intersection, "request_state"]
    one_line_error(capsys, argv, "not a valid topic level")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_cmd_expires_in_not_finite(capsys: pytest.CaptureFixture[str], value: str) -> None:
    one_line_error(capsys, cmd(f"--expires-in={value}"), "--expires-in")


def test_cmd_timeout_not_finite(capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(capsys, cmd("--timeout=nan"), "--timeout")


def test_cmd_missing_password_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = one_line_error(
        capsys, cmd("--password-file", str(tmp_path / "nope")), "MQTT password file"
    )
    assert "missing" in line


def test_cmd_missing_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one_line_error(capsys, cmd("--key-file", str(tmp_path / "nope")), "nope")


def test_cmd_fifo_password_file_does_not_hang(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import os

    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    one_line_error(capsys, cmd("--password-file", str(fifo)), "a FIFO")


def test_cmd_password_in_clear_needs_opting_in(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    one_line_error(capsys, cmd("--password-file", str(pw)), "in clear")


@pytest.mark.parametrize(
    "url", ["mqtt://junction:hunter2@127.0.0.1:1", "mqtts://u:hunter2@host:99999999"]
)
def test_credentials_in_url_refused_and_never_printed(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    argv = ["cmd", "--broker", url, "--intersection", "hz-0001", "request_state"]
    line = one_line_error(capsys, argv, "credentials in the URL are refused")
    assert "hunter2" not in line
    argv = ["watch", "--broker", url, "--once", "0.1"]
    line = one_line_error(capsys, argv, "credentials in the URL are refused")
    assert "hunter2" not in line


def test_watch_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one_line_error(capsys, ["watch", "--broker", BROKER, "--intersection", "#"], "topic level")
    one_line_error(capsys, ["watch", "--broker", BROKER, "--once", "nan"], "--once")
    one_line_error(
        capsys,
        ["watch", "--broker", BROKER, "--password-file", str(tmp_path / "nope")],
        "missing",
    )


def test_redact_url() -> None:
    assert redact_url("mqtt://u:p@h:1883/x") == "mqtt://***@h:1883/x"
    assert redact_url("mqtts://h:8883") == "mqtts://h:8883"
    assert redact_url("unix:///run/m.sock") == "unix:///run/m.sock"
