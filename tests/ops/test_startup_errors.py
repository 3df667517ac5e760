"""Start-up failures of ``edgectl run``: their exit status and their journald priority.

A configuration that cannot start exits 78 (``EX_CONFIG``) — the unit's
``RestartPreventExitStatus=78`` then leaves it failed instead of restarting every 2 s — and
its lines reach the journal at error priority: under systemd, ``JOURNAL_STREAM`` names the
``device:inode`` of the journal stream, and each stderr line carries sd-daemon(3)'s ``<3>``.
Here stderr is a file whose device and inode are put in ``JOURNAL_STREAM``, as systemd does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgectl.logs import print_error, stream_is_journal

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "edgectl" / "examples" / "eight_phase.toml"
EX_CONFIG = 78


def run_edgectl(tmp_path: Path, *args: str, journal: bool) -> tuple[int, list[str], list[str]]:
    """``edgectl run ARGS`` with stderr in a file; ``journal``: JOURNAL_STREAM names it."""
    err_path = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGECTL_", "JOURNAL_"))}
    with err_path.open("wb") as err:
        if journal:
            st = os.fstat(err.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        else:
            env["JOURNAL_STREAM"] = "1:1"  # inherited from elsewhere: not this stderr
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgectl",
                "run",
                "--state-dir",
                str(tmp_path / "state"),
                "--metrics",
                "",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            timeout=60,
            check=False,
        )
    return (
        proc.returncode,
        proc.stdout.decode().splitlines(),
        err_path.read_text().splitlines(),
    )


def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(EIGHT_PHASE.read_text().replace("yellow = 3.5", "yellow = 2.0"))
    return path


@pytest.mark.parametrize("case", ["missing", "invalid", "bad --field"])
def test_a_config_error_exits_78_at_error_priority_under_journald(
    tmp_path: Path, case: str
) -> None:
    args = {
        "missing": ["--config", str(tmp_path / "nowhere.toml")],
        "invalid": ["--config", str(bad_config(tmp_path))],
        "bad --field": ["--config", str(EIGHT_PHASE), "--field", "ftp://cabinet"],
    }[case]
    rc, _, err = run_edgectl(tmp_path, *args, journal=True)
    assert rc == EX_CONFIG, err
    assert err, "nothing said on stderr"
    assert all(line.startswith("<3>") for line in err), err
    assert err[0].startswith("<3>edgectl: ")
    assert not any("Traceback" in line for line in err)


def test_without_the_journal_the_lines_stay_plain(tmp_path: Path) -> None:
    rc, _, err = run_edgectl(tmp_path, "--config", str(bad_config(tmp_path)), journal=False)
    assert rc == EX_CONFIG
    assert err[0] == f"edgectl: invalid configuration {tmp_path / 'bad.toml'}:"
    assert "yellow" in "\n".join(err)
    assert not any(line.startswith("<") for line in err)


def test_a_bad_device_url_found_at_start_is_a_config_error_logged_at_error(
    tmp_path: Path,
) -> None:
    """The URL's form is valid but its parameters are not: found when the field is built,
    after logging is configured — a JSON line at priority 3 on stdout, exit 78."""
    url = "modbus+tcp://127.0.0.1:1502?bogus=1"
    rc, out, _ = run_edgectl(
        tmp_path, "--config", str(EIGHT_PHASE), "--field", url, "--log-json", journal=True
    )
    assert rc == EX_CONFIG
    errors = [line for line in out if '"field_config_error"' in line]
    assert errors, out
    assert errors[0].startswith("<3>{")


def test_print_error_prefixes_every_line_only_on_the_journal_stream(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w+") as fh:
        st = os.fstat(fh.fileno())
        journal = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stream_is_journal(fh, journal)
        assert not stream_is_journal(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stream_is_journal(fh, {})
        assert not stream_is_journal(fh, {"JOURNAL_STREAM": "garbage"})
    assert not stream_is_journal(io.StringIO(), journal)  # no file descriptor at all
    plain = io.StringIO()
    print_error("edgectl: one", "two\nthree", stream=plain)
    assert plain.getvalue() == "edgectl: one\ntwo\nthree\n"


def test_a_state_directory_that_cannot_be_opened_is_one_error_line_not_a_traceback(
    tmp_path: Path,
) -> None:
    """The outbox cannot be opened (here the state directory is a file; on a cabinet, a
    read-only or broken SD card): one JSON line at error priority, exit 1 so that systemd
    tries again (the card may come back), no traceback."""
    config = tmp_path / "junction.toml"
    config.write_text(
        EIGHT_PHASE.read_text()
        + '\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\nallow_unsigned_commands = true\n'
    )
    (tmp_path / "state").write_text("not a directory")
    rc, out, err = run_edgectl(
        tmp_path, "--config", str(config), "--field", "memory://x", "--log-json", journal=True
    )
    assert rc == 1
    errors = [line for line in out if '"sync_start_failed"' in line]
    assert errors and errors[0].startswith("<3>{"), out
    assert "Traceback" not in "\n".join(out + err)
