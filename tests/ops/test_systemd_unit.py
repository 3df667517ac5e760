"""The systemd unit: verified by systemd itself, and its hardening scored.

``systemd-analyze verify`` checks that every ``Exec*`` binary exists. ``/usr/bin/edgectl`` is
where a package installs it, not where this checkout's venv puts it, so the unit is verified
as a copy whose ``ExecStart=`` names this venv's ``edgectl`` script (same arguments); a
separate test shows that the only complaint about the original is that missing binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD / "edgectl.service"
MAX_EXPOSURE = 2.0

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    analyze is None, reason="systemd-analyze not installed: unit verify/security not checked"
)


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found[key.strip()].append(value.strip())
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_unit_says_what_spec_11_asks() -> None:
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert d["ExecStart"] == ["/usr/bin/edgectl run --config /etc/edgectl/edgectl.toml"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["Restart"] == ["always"]
    # a configuration error (edgectl run exits 78, EX_CONFIG) is not restarted for ever
    assert d["RestartPreventExitStatus"] == [str(os.EX_CONFIG)]
    assert "SuccessExitStatus" not in d  # 78 must stay a failure: the unit ends failed
    # stderr lines prefixed <3> reach the journal at error priority
    assert d.get("SyslogLevelPrefix", ["yes"]) == ["yes"]
    assert d.get("StandardError", ["journal"]) == ["journal"]
    assert d["StateDirectory"] == ["edgectl"]
    assert d["ConfigurationDirectory"] == ["edgectl"]
    assert d["SupplementaryGroups"] == ["dialout"]
    assert {"char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw"} <= set(d["DeviceAllow"])
    watchdog = re.fullmatch(r"(\d+)s", d["WatchdogSec"][0])
    assert watchdog
    assert 1 <= int(watchdog.group(1)) <= 30
    assert d["TimeoutStopSec"]
    assert d["RestartSec"]
    # the network it needs stays reachable
    assert set(d["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "PrivateNetwork" not in d


def verifiable_copy(tmp_path: Path) -> Path:
    script = Path(sys.executable).with_name("edgectl")
    if not script.exists():
        pytest.skip(f"{script} missing: install the project into the venv (pip install -e .)")
    text = UNIT.read_text().replace("ExecStart=/usr/bin/edgectl ", f"ExecStart={script} ")
    assert text != UNIT.read_text()
    copy = tmp_path / UNIT.name  # the unit name must stay edgectl.service
    copy.write_text(text)
    return copy


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    assert analyze is not None
    copy = verifiable_copy(tmp_path)
    result = run(analyze, "verify", str(copy))
    problems = [line for line in result.stderr.splitlines() if "edgectl" in line]
    assert result.returncode == 0, result.stderr
    assert problems == []


@needs_analyze
def test_original_unit_only_lacks_the_installed_binary() -> None:
    assert analyze is not None
    result = run(analyze, "verify", str(UNIT))
    problems = [line for line in result.stderr.splitlines() if "edgectl" in line]
    if Path("/usr/bin/edgectl").exists():
        assert result.returncode == 0, result.stderr
    else:
        assert problems == [
            "edgectl.service: Command /usr/bin/edgectl is not executable: No such file or directory"
        ]


@needs_analyze
def test_security_exposure_at_most_2() -> None:
    assert analyze is not None
    result = run(analyze, "security", "--offline=true", "--no-pager", str(UNIT))
    match = re.search(r"Overall exposure level for edgectl\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, result.stdout


@needs_analyze
def test_security_threshold_is_enforced_by_systemd_too() -> None:
    """``--threshold`` makes systemd-analyze itself fail above 20 (its scale ×10)."""
    assert analyze is not None
    result = run(
        analyze,
        "security",
        "--offline=true",
        "--no-pager",
        f"--threshold={int(MAX_EXPOSURE * 10)}",
        str(UNIT),
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="systemd-sysusers/systemd-tmpfiles not installed",
)
def test_sysusers_and_tmpfiles_apply_to_a_scratch_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\ndialout:x:20:\n")
    for kind in ("sysusers", "tmpfiles"):
        target = root / f"usr/lib/{kind}.d/edgectl.conf"
        target.parent.mkdir(parents=True)
        shutil.copy(SYSTEMD / f"edgectl.{kind}.conf", target)

    users = run("systemd-sysusers", f"--root={root}", "edgectl.conf")
    assert users.returncode == 0, users.stderr
    passwd = (root / "etc/passwd").read_text()
    assert re.search(r"^edgectl:x:\d+:\d+:[^:]*:/var/lib/edgectl:", passwd, re.M)
    assert re.search(r"^dialout:x:20:edgectl$", (root / "etc/group").read_text(), re.M)

    if os.geteuid() != 0:
        return  # tmpfiles must chown /etc/edgectl to the new group: root only
    files = run("systemd-tmpfiles", f"--root={root}", "--create", "edgectl.conf")
    assert files.returncode == 0, files.stderr
    etc = root / "etc/edgectl"
    assert etc.is_dir()
    assert etc.stat().st_mode & 0o777 == 0o750
    group = re.search(r"^edgectl:x:(\d+):", (root / "etc/group").read_text(), re.M)
    assert group
    assert etc.stat().st_gid == int(group[1])
