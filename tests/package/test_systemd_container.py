"""The .deb under a real systemd: what tests/ops only checked offline, checked for real.

A Debian 12 container boots with systemd as PID 1 (:mod:`tests.package.nspawn`: a cached
debootstrap root, ``systemd-nspawn`` with the unified cgroup hierarchy and ``bpf()``, so that
``DevicePolicy=`` is enforced). ``scripts/build-deb.sh`` builds the package from this
checkout, ``apt-get install ./edgectl_*.deb`` installs it offline, and the unit runs against
firmware_sim and mosquitto on the host (the container shares the host's network). The tests
run in file order on the one container; each starts from a stopped service.

Proved here: ``READY=1`` only after the field answered; the watchdog kills a wedged daemon
(SIGSTOP) and restarts it, the emulated MMU flashing meanwhile; ``systemctl stop`` hands over
to flash and exits by itself (inside ``TimeoutStopSec=``); a reload applies a good file and
refuses a bad one; a bad file ends ``failed`` with status 78 and no restart loop, its errors
at priority err; ``DevicePolicy=closed`` denies a device outside ``DeviceAllow=`` (EPERM)
while the same open outside the unit succeeds; ``ProtectSystem=strict`` leaves only the
state directory writable; the exposure of ``systemd-analyze security`` (online); an upgrade
keeps the configuration, the outbox and the sequence numbers; remove and purge.
Not proved: ``MemoryMax=`` (skipped unless the container's cgroup has the memory controller,
which a hybrid-hierarchy host does not give it), an allowed serial device (a container has
none).

Cost: debootstrap ~1 min the first time (cached in ``EDGECTL_CONTAINER_CACHE``, default
``/var/cache/edgectl-tests``), the package build ~15 s, the tests ~1.5 min. Skipped, saying
why, without root, systemd-nspawn/debootstrap (``apt-get install systemd-container
debootstrap``), a writable cgroup v2 tree, mosquitto, or when the container cannot boot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import edgectl
from edgectl.commands.examples import example_text
from edgectl.testing.broker import free_port
from edgectl.testing.mosquitto import MosquittoBroker, mosquitto_available
from firmware_sim.process import EmulatorProcess

from . import nspawn

ROOT = Path(__file__).resolve().parents[2]
UNIT = "edgectl.service"
CONFIG = "/etc/edgectl/edgectl.toml"
KEY = "/etc/edgectl/command.key"
MAX_EXPOSURE = 2.0
FLASH = {"FR", "FY"}
CHANNELS = set(range(1, 13))  # eight_phase.toml: 8 vehicle + 4 pedestrian channels
VEHICLES = set(range(1, 9))

REASON = nspawn.unavailable() or (None if mosquitto_available() else "mosquitto not installed")
pytestmark = [
    pytest.mark.package,
    pytest.mark.timeout(900),
    pytest.mark.skipif(REASON is not None, reason=f"no systemd container: {REASON}"),
]


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def daemon_config(field_url: str, broker_url: str, *, plan: int = 1, bad: bool = False) -> str:
    """The packaged example junction with a production tail for this bench; ``bad``: a
    yellow of 2 s, which check-config refuses."""
    junction = example_text("eight_phase")
    assert junction.count("\nplan = 1\n") == 1
    junction = junction.replace("\nplan = 1\n", f"\nplan = {plan}\n")
    if bad:
        junction = junction.replace("\nyellow = 3.5\n", "\nyellow = 2.0\n", 1)
    return (
        junction
        + f"""
[[field.devices]]
name = "cabinet"
url = "{field_url}"
role = "cabinet"
profile = "builtin:nema-cabinet"

[mqtt]
url = "{broker_url}"
command_key_file = "{KEY}"

[daemon]
state_dir = "/var/lib/edgectl"
# the container shares the host's network: no fixed port
metrics_listen = ""
"""
    )


def events(lines: list[str], name: str) -> list[dict[str, Any]]:
    """The daemon's JSON log lines whose ``event`` is ``name``."""
    found = []
    for line in lines:
        if line.startswith("{") and f'"event":"{name}"' in line:
            found.append(json.loads(line))
    return found


def first(lines: list[str], predicate: Callable[[str], bool], what: str) -> int:
    for i, line in enumerate(lines):
        if predicate(line):
            return i
    raise AssertionError(f"no {what} in the journal:\n" + "\n".join(lines[-40:]))


@dataclass
class Service:
    """edgectl.service in the container, with its bench on the host."""

    c: nspawn.Container
    broker_url: str
    workdir: Path

    def configure(self, field_url: str, *, plan: int = 1, bad: bool = False) -> None:
        self.c.write(CONFIG, daemon_config(field_url, self.broker_url, plan=plan, bad=bad))

    def show(self, *props: str) -> dict[str, str]:
        return self.c.show(UNIT, *props)

    def state(self) -> str:
        return self.show("ActiveState")["ActiveState"]

    def main_pid(self) -> int:
        return int(self.show("MainPID")["MainPID"])

    def journal(self, after: int = 0, priority: int = 7) -> list[str]:
        return self.c.journal(UNIT, after=after, priority=priority)

    def reset(self) -> None:
        """Stopped, no failed state, counters back to zero."""
        self.c.run("systemctl", "stop", UNIT, check=False)
        self.c.run("systemctl", "reset-failed", UNIT, check=False)

    def emulator(self, port: int | None = None) -> EmulatorProcess:
        listen = f"modbus+tcp://127.0.0.1:{port or 0}"
        return EmulatorProcess(
            self.workdir, listen=listen, seed=3, name=f"sim{time.monotonic_ns()}"
        )

    def start_on(self, emu: EmulatorProcess) -> None:
        """Configured for ``emu`` and started (``systemctl`` returns on READY=1)."""
        self.configure(emu.url)
        self.c.run("systemctl", "restart", UNIT)

    def running_normally(self, emu: EmulatorProcess) -> None:
        """:meth:`start_on`, then past the start-up flash and all-red (the emulator's
        traffic may call a preemption: that is service too)."""
        self.start_on(emu)
        wait_until(
            lambda: re.search(r"state=(normal|preempt)", self.show("StatusText")["StatusText"]),
            60,
            "signals in service after the start-up flash",
        )


@pytest.fixture(scope="module")
def debian_root() -> Path:
    try:
        return nspawn.debian_root()
    except nspawn.ContainerUnavailable as exc:
        pytest.skip(str(exc))


def _index_reachable() -> bool:
    try:
        with socket.create_connection(("pypi.org", 443), timeout=5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Debs:
    deb: Path
    version: str
    upgrade: Path
    upgrade_version: str


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    """``scripts/build-deb.sh`` into a directory of the test's own, and the same package
    repacked with a higher version (an upgrade that changes nothing but the version)."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-deb.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if build.returncode != 0:
        if not _index_reachable():
            pytest.skip(f"cannot build the .deb: PyPI unreachable: {build.stderr[-500:]}")
        pytest.fail(f"build-deb.sh failed:\n{build.stdout}\n{build.stderr}")
    (deb,) = out.glob("edgectl_*.deb")
    fields = {
        name: subprocess.run(
            ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
        ).stdout.strip()
        for name in ("Version", "Architecture")
    }
    assert deb.name == f"edgectl_{fields['Version']}_{fields['Architecture']}.deb"
    unpacked = out / "repack"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(unpacked)], check=True, timeout=120)
    control = unpacked / "DEBIAN" / "control"
    newer = fields["Version"] + "+upgrade1"
    control.write_text(
        re.sub(r"(?m)^Version: .*$", f"Version: {newer}", control.read_text()), encoding="utf-8"
    )
    upgrade = out / "upgrade" / f"edgectl_{newer}_{fields['Architecture']}.deb"
    upgrade.parent.mkdir()
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(unpacked), str(upgrade)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(unpacked)
    return Debs(deb, fields["Version"], upgrade, newer)


@pytest.fixture(scope="module")
def host_broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as broker:
        yield broker


@dataclass(frozen=True)
class Installed:
    service: Service
    apt_output: str


@pytest.fixture(scope="module")
def installed(
    debian_root: Path,
    debs: Debs,
    host_broker: MosquittoBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    """The container booted, the package installed with apt (offline), a command key."""
    workdir = tmp_path_factory.mktemp("container")
    try:
        boot = nspawn.booted(debian_root, workdir)
        c = boot.__enter__()
    except nspawn.ContainerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        for deb in (debs.deb, debs.upgrade):
            c.copy_in(deb, f"/root/{deb.name}")
        apt = c.sh(f"cd /root && apt-get install -y ./{debs.deb.name} 2>&1")
        c.write(KEY, os.urandom(32).hex() + "\n", mode="0640", group="edgectl")
        yield Installed(Service(c, host_broker.url, workdir), apt)
    finally:
        boot.__exit__(None, None, None)


@pytest.fixture
def svc(installed: Installed) -> Iterator[Service]:
    installed.service.reset()
    yield installed.service
    installed.service.reset()


# --- the package -----------------------------------------------------------------------------


def test_apt_installs_it_offline_and_leaves_the_service_off(installed: Installed) -> None:
    c = installed.service.c
    # nothing but the package itself: everything it needs is in the minimal Debian 12
    assert "0 upgraded, 1 newly installed, 0 to remove" in installed.apt_output
    assert c.run("edgectl", "--version").stdout.strip() == f"edgectl {edgectl.__version__}"
    assert c.run("readlink", "/usr/bin/edgectl").stdout.strip() == "/opt/edgectl/venv/bin/edgectl"
    assert "/usr/bin/edgectl" in c.run("dpkg", "-L", "edgectl").stdout.split()
    # the same unit as systemd/edgectl.service, the user, /etc/edgectl as tmpfiles.d says
    assert c.run("cat", "/usr/lib/systemd/system/edgectl.service").stdout == (
        (ROOT / "systemd" / "edgectl.service").read_text()
    )
    assert c.run("id", "-nG", "edgectl").stdout.split() == ["edgectl", "dialout"]
    stat = c.run("stat", "-c", "%U:%G %a", "/etc/edgectl", "/usr/share/doc/edgectl/copyright")
    assert stat.stdout.split("\n")[:2] == ["root:edgectl 750", "root:root 644"]
    assert c.run("dpkg-query", "-W", "-f", "${Conffiles}", "edgectl").stdout.split()[0] == CONFIG
    # not enabled, not started: the skeleton needs the site's addresses and secrets first
    assert c.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() == "disabled"
    assert c.run("systemctl", "is-active", UNIT, check=False).stdout.strip() == "inactive"


def test_the_packaged_skeleton_only_lacks_the_sites_secrets(
    installed: Installed, debs: Debs
) -> None:
    """The conffile is `edgectl init`'s skeleton: check-config (in the container, as shipped)
    refuses it only for the secrets a site puts next to it."""
    c = installed.service.c
    c.run("dpkg-deb", "-x", f"/root/{debs.deb.name}", "/tmp/skeleton")
    check = c.run("edgectl", "check-config", "/tmp/skeleton" + CONFIG, check=False)
    assert check.returncode == 1
    errors = [s for s in (check.stdout + check.stderr).splitlines() if ": error: " in s]
    missing = sorted(re.findall(r": error: mqtt\.(\w+_file):", "\n".join(errors)))
    # (the command key is there: the fixture wrote /etc/edgectl/command.key)
    assert missing == ["ca_file", "password_file", "username_file"], errors
    assert len(errors) == len(missing), errors


# --- the unit under systemd ------------------------------------------------------------------


def test_ready_only_after_the_field_answered(svc: Service) -> None:
    port = free_port()  # nothing listens there yet
    svc.configure(f"modbus+tcp://127.0.0.1:{port}?unit=1")
    mark = svc.c.mark()
    svc.c.run("systemctl", "enable", "--now", "--no-block", UNIT)
    wait_until(
        lambda: len(events(svc.journal(mark), "device_offline")) >= 2,
        30,
        "connection attempts to the absent cabinet",
    )
    waiting = svc.show("ActiveState", "StatusText")
    assert waiting["ActiveState"] == "activating", waiting  # no READY=1 without the field
    assert waiting["StatusText"].startswith("starting: waiting for the field"), waiting
    emu = svc.emulator(port).start()
    try:
        wait_until(lambda: svc.state() == "active", 30, "READY=1 once the cabinet answers")
        lines = svc.journal(mark)
        answered = first(lines, lambda s: '"old":"offline"' in s, "the cabinet answering")
        ready = first(lines, lambda s: '"event":"ready"' in s, "ready")
        started = first(lines, lambda s: s.startswith("Started edgectl.service"), "Started")
        assert answered < ready < started
        assert svc.c.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    finally:
        svc.reset()
        emu.stop()
    svc.c.run("systemctl", "disable", UNIT)


def test_watchdog_restarts_a_wedged_daemon_while_the_mmu_flashes(svc: Service) -> None:
    emu = svc.emulator().start()
    try:
        svc.running_normally(emu)
        before = svc.show("MainPID", "NRestarts")
        wedged = int(before["MainPID"])
        mark = svc.c.mark()
        t_wedged = emu.now()
        svc.c.sh(f"kill -STOP {wedged}")
        wait_until(lambda: svc.main_pid() not in (0, wedged), 30, "a restart by the watchdog")
        t_restarted = emu.now()
        lines = svc.journal(mark)
        assert any("Watchdog timeout" in s for s in lines), lines
        assert any(f"Killing process {wedged} (edgectl) with signal SIGABRT" in s for s in lines)
        assert any("Failed with result 'watchdog'" in s for s in lines), lines
        assert int(svc.show("NRestarts")["NRestarts"]) == int(before["NRestarts"]) + 1
        # meanwhile the cabinet's MMU (its heartbeat watchdog) put every channel into flash
        flashed = {ch for t, ch, st in emu.record() if t_wedged < t < t_restarted and st in FLASH}
        assert flashed == CHANNELS, emu.record()[-30:]
        # the new daemon finds the MMU latched (watchdog), gets ready at once and takes the
        # junction over again (this once waited for TimeoutStartSec=: tests/daemon/
        # test_supervisor.py::test_a_restart_into_a_latched_mmu_gets_ready_...)
        wait_until(lambda: svc.state() == "active", 30, "READY=1 after the restart")
    finally:
        svc.reset()
        emu.stop()


def test_stop_hands_over_to_flash_and_exits_by_itself(svc: Service) -> None:
    emu = svc.emulator().start()
    try:
        svc.running_normally(emu)
        mark = svc.c.mark()
        t_stop = emu.now()
        svc.c.run("systemctl", "stop", UNIT)
        t_stopped = emu.now()
        # it exited by itself: no SIGKILL after TimeoutStopSec= (that would be Result=timeout)
        assert svc.show("ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}
        lines = svc.journal(mark)
        assert any(s == "edgectl.service: Deactivated successfully." for s in lines), lines
        assert not [s for s in lines if "timed out" in s or "Killing" in s], lines
        begin, end = events(lines, "shutdown_begin"), events(lines, "daemon_stopped")
        assert begin and end, lines
        print(f"hand-over: shutdown_begin {begin[0]['ts']} → daemon_stopped {end[0]['ts']}")
        shown: dict[int, str] = {}
        for t, ch, st in emu.record():
            if t <= t_stopped:
                shown[ch] = st
        # the vehicle channels flash, no pedestrian channel shows walk or its clearance
        assert {ch for ch, st in shown.items() if st in FLASH} >= VEHICLES, shown
        assert not {ch for ch, st in shown.items() if st in ("W", "FDW")}, shown
        flashing = [t for t, _, st in emu.record() if t_stop < t <= t_stopped and st in FLASH]
        assert flashing, "nothing went to flash after the stop"
        print(f"stop: flash {max(flashing) - t_stop:.1f} s, exit {t_stopped - t_stop:.1f} s")
    finally:
        svc.reset()
        emu.stop()


def test_reload_applies_a_good_file_and_refuses_a_bad_one(svc: Service) -> None:
    emu = svc.emulator().start()
    try:
        svc.start_on(emu)
        pid = svc.main_pid()
        mark = svc.c.mark()
        svc.configure(emu.url, plan=2)
        svc.c.run("systemctl", "reload", UNIT)
        accepted = wait_until(
            lambda: events(svc.journal(mark), "reload_accepted"), 20, "reload_accepted"
        )
        assert accepted[0]["plan"] == 2
        mark = svc.c.mark()
        svc.configure(emu.url, plan=2, bad=True)
        svc.c.run("systemctl", "reload", UNIT)
        rejected = wait_until(
            lambda: events(svc.journal(mark), "reload_rejected"), 20, "reload_rejected"
        )
        assert any("yellow" in p for p in rejected[0]["problems"]), rejected
        assert not events(svc.journal(mark), "reload_accepted")
        assert svc.show("ActiveState", "MainPID") == {"ActiveState": "active", "MainPID": str(pid)}
    finally:
        svc.reset()
        emu.stop()


def test_a_bad_config_fails_with_78_and_is_not_restarted(svc: Service) -> None:
    svc.configure("modbus+tcp://127.0.0.1:9?unit=1", bad=True)
    mark = svc.c.mark()
    assert svc.c.run("systemctl", "start", UNIT, check=False).returncode != 0
    failed = svc.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert failed == {
        "ActiveState": "failed",
        "Result": "exit-code",
        "ExecMainStatus": "78",
        "NRestarts": "0",
    }
    # RestartSec=2s: a restart loop would have started again by now
    time.sleep(5)
    assert svc.show("ActiveState", "NRestarts", "MainPID") == {
        "ActiveState": "failed",
        "NRestarts": "0",
        "MainPID": "0",
    }
    errors = svc.journal(mark, priority=3)  # err
    assert any("invalid configuration" in s for s in errors), errors
    assert any("yellow" in s for s in errors), errors


# --- the hardening, for real -----------------------------------------------------------------

OPEN = "import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)); print('opened')"

PROBE = """\
import errno, os, sys
for path in sys.argv[1:]:
    try:
        with open(path, "w") as fh:
            fh.write("x")
        os.unlink(path)
        print(path, "ok")
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
"""


def test_a_device_outside_device_allow_is_denied(svc: Service) -> None:
    """DevicePolicy=closed lets /dev/pts through by design, so the probe is the one other
    device node nspawn gives a container: /dev/net/tun (10:200), opened as a serial port."""
    c = svc.c
    if c.run("test", "-c", "/dev/net/tun", check=False).returncode != 0:
        pytest.skip("the container has no /dev/net/tun to probe DevicePolicy= with")
    c.run("chmod", "0666", "/dev/net/tun")
    # outside the unit, as the service user: the device opens (so no DAC or container limit)
    as_edgectl = ["setpriv", "--reuid=edgectl", "--regid=edgectl", "--init-groups"]
    assert c.run(*as_edgectl, "python3", "-c", OPEN, "/dev/net/tun").stdout.strip() == "opened"
    svc.configure("modbus+rtu:///dev/net/tun?baudrate=115200&unit=1")
    mark = c.mark()
    c.run("systemctl", "start", "--no-block", UNIT)
    denied = wait_until(
        lambda: [s for s in svc.journal(mark) if "/dev/net/tun" in s and "[Errno" in s],
        20,
        "a refused open of /dev/net/tun",
    )
    assert "[Errno 1] Operation not permitted" in denied[0], denied  # EPERM: the device cgroup
    assert svc.state() == "activating"  # the field never answered: no READY=1


def test_only_the_state_directory_is_writable(svc: Service) -> None:
    emu = svc.emulator().start()
    try:
        svc.start_on(emu)
        pid = svc.main_pid()
        status = dict(
            line.split(":", 1)
            for line in svc.c.run("cat", f"/proc/{pid}/status").stdout.splitlines()
        )
        assert status["NoNewPrivs"].strip() == "1"
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
        assert status["Seccomp"].strip() == "2"  # a filter
        paths = [
            "/var/lib/edgectl/probe",
            "/etc/edgectl/probe",
            "/opt/edgectl/probe",
            "/usr/lib/probe",
            "/var/lib/probe",
            "/var/log/probe",
        ]
        # outside the service even /etc/edgectl is writable for root ...
        outside = svc.c.run("python3", "-c", PROBE, "/etc/edgectl/probe").stdout
        assert outside.split() == ["/etc/edgectl/probe", "ok"]
        # ... in the daemon's mount namespace nothing but its state directory is, even for root
        inside = svc.c.run("nsenter", "-t", str(pid), "-m", "--", "python3", "-c", PROBE, *paths)
        result = dict(line.split() for line in inside.stdout.splitlines())
        assert result == {p: "ok" if p.startswith("/var/lib/edgectl/") else "EROFS" for p in paths}
        as_user = svc.c.run(
            "nsenter", "-t", str(pid), "-m", "--", "setpriv", "--reuid=edgectl",
            "--regid=edgectl", "--init-groups", "python3", "-c", PROBE, "/var/lib/edgectl/probe",
        )  # fmt: skip
        assert as_user.stdout.split() == ["/var/lib/edgectl/probe", "ok"]
    finally:
        svc.reset()
        emu.stop()


def test_security_exposure_at_most_2_under_systemd(svc: Service) -> None:
    out = svc.c.run("systemd-analyze", "security", "--no-pager", UNIT).stdout
    match = re.search(r"Overall exposure level for edgectl\.service: (\d+\.\d+)", out)
    assert match, out
    assert float(match.group(1)) <= MAX_EXPOSURE, out


def test_memory_max_where_the_container_can_enforce_it(svc: Service) -> None:
    emu = svc.emulator().start()
    try:
        svc.configure(emu.url)
        svc.c.run("systemctl", "start", UNIT)
        limit = svc.c.cgroup_of(UNIT) / "memory.max"
        if not limit.exists():
            pytest.skip(
                "MemoryMax= is not enforced in this container: its cgroup v2 tree has no "
                "memory controller (a hybrid-hierarchy host keeps it in v1)"
            )
        assert limit.read_text().strip() == str(512 * 1024 * 1024)
    finally:
        svc.reset()
        emu.stop()


# --- upgrade, remove, purge (last: they change the installation) -----------------------------


def _bdseqs(lines: list[str]) -> list[int]:
    return [int(e["bdseq"]) for e in events(lines, "mqtt_connected")]


def test_an_upgrade_keeps_config_outbox_and_sequence_numbers(
    svc: Service, installed: Installed, debs: Debs
) -> None:
    c = svc.c
    emu = svc.emulator().start()
    try:
        svc.configure(emu.url)
        mark = c.mark()
        c.run("systemctl", "enable", "--now", UNIT)
        bdseq = wait_until(lambda: _bdseqs(svc.journal(mark)), 20, "an MQTT session")[-1]
        pid = svc.main_pid()
        config, key = c.run("cat", CONFIG).stdout, c.run("cat", KEY).stdout
        outbox = c.run("stat", "-c", "%i", "/var/lib/edgectl/sync.sqlite3").stdout
        mark = c.mark()
        out = c.sh(f"cd /root && apt-get install -y ./{debs.upgrade.name} 2>&1")
        assert f"Unpacking edgectl ({debs.upgrade_version}) over ({debs.version})" in out, out
        version = c.run("dpkg-query", "-W", "-f", "${Version}", "edgectl").stdout
        assert version == debs.upgrade_version
        # the site's file is kept, the running service restarted on the new files, still enabled
        assert (c.run("cat", CONFIG).stdout, c.run("cat", KEY).stdout) == (config, key)
        assert c.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
        assert svc.state() == "active" and svc.main_pid() != pid
        # the outbox is the same file, and the birth sequence number goes on from where it was
        assert c.run("stat", "-c", "%i", "/var/lib/edgectl/sync.sqlite3").stdout == outbox
        assert wait_until(lambda: _bdseqs(svc.journal(mark)), 20, "the new session") == [bdseq + 1]
    finally:
        svc.reset()
        emu.stop()


def test_remove_keeps_config_and_state_and_purge_removes_them(svc: Service) -> None:
    c = svc.c
    emu = svc.emulator().start()
    try:
        svc.configure(emu.url)
        c.run("systemctl", "enable", "--now", UNIT)
        c.sh("apt-get remove -y edgectl 2>&1")
        assert svc.show("ActiveState", "LoadState") == {
            "ActiveState": "inactive",
            "LoadState": "not-found",
        }
        left = c.sh("ls -d /etc/edgectl/edgectl.toml /var/lib/edgectl/sync.sqlite3 /opt/edgectl "
                    "/usr/bin/edgectl /etc/systemd/system/multi-user.target.wants/edgectl.service "
                    "2>/dev/null; true")  # fmt: skip
        assert left.split() == ["/etc/edgectl/edgectl.toml", "/var/lib/edgectl/sync.sqlite3"]
        assert c.run("getent", "passwd", "edgectl", check=False).returncode == 0
        c.sh("apt-get purge -y edgectl 2>&1")
        gone = c.sh("ls -d /etc/edgectl /var/lib/edgectl 2>/dev/null; true")
        assert gone == ""
        for db in ("passwd", "group"):
            assert c.run("getent", db, "edgectl", check=False).returncode == 2
        assert c.run("dpkg", "-s", "edgectl", check=False).returncode != 0
    finally:
        emu.stop()
