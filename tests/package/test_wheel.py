"""The wheel as a city installs it: built from this checkout, installed with its extras into a
fresh venv outside the checkout (no system site-packages, the versions of constraints.txt),
and every command a newcomer runs first, run from a directory that is not the checkout.

Cost: the wheel builds offline in well under a second (hatchling, from the dev extra); the
venv and the install take ~30 s (pip's cache makes a rerun fast; a first run downloads), the
demo 20 s of real time; the whole module ~1 min. Skipped, saying so, only when the
dependencies cannot be fetched (no index reachable).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import edgectl

from .support import make_secrets

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path

    def edgectl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EDGECTL_", "PYTHON", "VIRTUAL_ENV"))
        }
        return subprocess.run(
            [str(self.venv / "bin" / "edgectl"), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _index_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.is_relative_to(ROOT)
    dist = base / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("edgectl-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(CONSTRAINTS),
            f"{wheel}[demo,report]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if install.returncode != 0:
        if not _index_reachable():
            reason = "cannot install the wheel's dependencies: PyPI is unreachable"
            pytest.skip(f"{reason}: {install.stderr[-500:]}")
        pytest.fail(f"pip install of the wheel failed:\n{install.stdout}\n{install.stderr}")
    cwd = base / "cwd"
    cwd.mkdir()
    return Installed(wheel, venv, cwd)


def test_the_wheel_carries_its_data_license_and_types(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    version = edgectl.__version__
    assert installed.wheel.name == f"edgectl-{version}-py3-none-any.whl"
    assert {
        "edgectl/examples/eight_phase.toml",
        "edgectl/examples/two_phase.toml",
        "edgectl/examples/io_modules.toml",
        "edgectl/cabinet/profiles/nema-cabinet.toml",
        "edgectl/cabinet/profiles/two-phase.toml",
        "edgectl/cabinet/profiles/cabinet-v1.toml",
        "edgectl/cabinet/profiles/io-modules.toml",
        "edgectl/py.typed",
        "firmware_sim/py.typed",
        f"edgectl-{version}.dist-info/licenses/LICENSE",
    } <= names
    assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names)
    metadata = zipfile.ZipFile(installed.wheel).read(f"edgectl-{version}.dist-info/METADATA")
    text = metadata.decode()
    assert "Requires-Dist: amqtt" in text and "extra == 'demo'" in text
    assert "pydantic-settings" not in text


def test_version_comes_from_the_installed_package(installed: Installed) -> None:
    result = installed.edgectl("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"edgectl {edgectl.__version__}"
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import edgectl; print(edgectl.__file__)"],
        cwd=installed.cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(installed.venv), where  # not this checkout


def test_simulate_then_report_on_what_it_wrote(installed: Installed) -> None:
    sim = installed.edgectl("simulate", "--duration", "300", "--quiet", "--events-csv", "ev.csv")
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert "hz-0001" in sim.stdout and "0 violation(s)" in sim.stdout
    report = installed.edgectl("report", "ev.csv", "--out", "report", "--detector-phase", "2:2")
    assert report.returncode == 0, report.stdout + report.stderr
    for png in ("split_monitor.png", "purdue_phase2.png"):
        assert (installed.cwd / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_init_then_check_config(installed: Installed) -> None:
    secrets = make_secrets(installed.cwd / "etc")
    init = installed.edgectl("init", "--secrets-dir", str(secrets), "edgectl.toml")
    assert init.returncode == 0, init.stderr
    check = installed.edgectl("check-config", "edgectl.toml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "warning" not in check.stdout, check.stdout
    assert "ok: intersection hz-0001" in check.stdout


def test_demo_runs_for_20_seconds(installed: Installed) -> None:
    demo = installed.edgectl("demo", "--duration", "20", timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    last = demo.stdout.strip().splitlines()[-1]
    assert last.startswith("vehicles arrived ") and last.endswith("MMU not tripped"), last
