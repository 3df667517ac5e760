"""A Debian 12 container with systemd as PID 1, for testing the .deb under a real systemd.

The recipe of issue 20: a ``debootstrap --variant=minbase`` root of bookworm (cached between
runs under :data:`CACHE`), booted with ``systemd-nspawn -b --volatile=overlay`` (every boot
starts from the pristine root; nothing a test does is kept) from a cgroup of our own under
the cgroup v2 tree, with the unified hierarchy and ``bpf()`` allowed - without them
``DevicePolicy=``/``DeviceAllow=`` are silently not enforced - and driven from the host with
``nsenter -t <the container's systemd> -a``. The container shares the host's network, so the
unit reaches a broker and an emulator on the host's 127.0.0.1.

Cost: the first debootstrap ~45-95 s (the Debian mirror apt is configured with), a boot about
a second. Everything started here is stopped by PID, and the cgroups nspawn leaves behind are
removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
# procps: /bin/kill of the unit's ExecReload= (a plain Debian 12 has it: Priority important)
INCLUDE = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "procps")
CACHE = Path(os.environ.get("EDGECTL_CONTAINER_CACHE", "/var/cache/edgectl-tests"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CONTAINER_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "SYSTEMD_COLORS": "0",
    "SYSTEMD_PAGER": "",
    "TERM": "dumb",
}


class ContainerUnavailable(RuntimeError):
    """The container could not be made or booted on this machine (a reason to skip)."""


def cgroup2_base() -> Path | None:
    """The writable cgroup v2 tree: ``/sys/fs/cgroup/unified`` (hybrid) or ``/sys/fs/cgroup``."""
    mounts = {}
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            _, where, kind, *_ = line.split()
            mounts[where] = kind
    for where in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if mounts.get(where) == "cgroup2" and os.access(where, os.W_OK):
            return Path(where)
    return None


def unavailable() -> str | None:
    """Why no container can boot here, or ``None``."""
    if sys.platform != "linux":
        return "systemd-nspawn needs Linux"
    if os.geteuid() != 0:
        return "booting a container needs root (systemd-nspawn, debootstrap, cgroups)"
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("nsenter", "util-linux"),
        ("dpkg-deb", "dpkg"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    if cgroup2_base() is None:
        return "no writable cgroup v2 hierarchy (/sys/fs/cgroup/unified or /sys/fs/cgroup)"
    return None


def debian_mirror() -> str:
    """The Debian mirror apt is configured with for ``SUITE`` (deb822 or one-line style)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text(encoding="utf-8").split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith((" ", "#")):
                    fields[key.strip()] = value.split()
            if SUITE in fields.get("Suites", []) and "deb" in fields.get("Types", []):
                return fields.get("URIs", [DEFAULT_MIRROR])[0]
    lists = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


def _unmount_below(path: Path) -> None:
    """Lazily unmount whatever an interrupted debootstrap left mounted under ``path``."""
    prefix = str(path) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, timeout=30)


def debian_root() -> Path:
    """The cached minbase root (made once, ~1 min; a lock keeps concurrent runs apart)."""
    key = hashlib.sha256(",".join((SUITE, *INCLUDE)).encode()).hexdigest()[:10]
    root = CACHE / f"{SUITE}-minbase-{key}"
    done = root.with_name(root.name + ".complete")
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and root.is_dir():
            return root
        partial = root.with_name(root.name + ".partial")
        for stale in (partial, root):
            if stale.exists():
                _unmount_below(stale)
                shutil.rmtree(stale)
        mirror = debian_mirror()
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}"]
        result = subprocess.run(
            [*argv, SUITE, str(partial), mirror],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        _unmount_below(partial)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-1500:]
            raise ContainerUnavailable(f"debootstrap {SUITE} from {mirror} failed: {output}")
        for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial.rename(root)
        done.write_text(f"{SUITE} {','.join(INCLUDE)} from {mirror}\n", encoding="utf-8")
    return root


def _pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def _container_init(cgroup: Path) -> int | None:
    """The host PID of the process that is PID 1 in its own namespace (the container's
    systemd), among the processes of ``cgroup``."""
    for pid in _pids(cgroup):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            nspid = next(line.split()[1:] for line in status.splitlines() if line[:6] == "NSpid:")
            if len(nspid) == 2 and nspid[1] == "1":
                return pid
    return None


@dataclass
class Container:
    """A booted container: commands run in it through ``nsenter``."""

    cgroup: Path
    console: Path
    nspawn: subprocess.Popen[bytes]
    init_pid: int = 0

    def run(
        self, *argv: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *argv],
            input=input,
            capture_output=True,
            text=True,
            env=CONTAINER_ENV,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{argv} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr}"
            )
        return result

    def sh(self, script: str, *, check: bool = True, timeout: float = 120) -> str:
        return self.run("/bin/sh", "-c", script, check=check, timeout=timeout).stdout

    def write(self, path: str, text: str, mode: str = "", group: str = "") -> None:
        """Write a file in the container (an existing file keeps its owner and mode)."""
        self.run("/bin/sh", "-c", 'cat > "$1"', "sh", path, input=text)
        if group:
            self.run("chgrp", group, path)
        if mode:
            self.run("chmod", mode, path)

    def copy_in(self, source: Path, path: str) -> None:
        with source.open("rb") as fh:
            subprocess.run(
                [
                    "nsenter",
                    "-t",
                    str(self.init_pid),
                    "-a",
                    "--",
                    "/bin/sh",
                    "-c",
                    'cat > "$1"',
                    "sh",
                    path,
                ],
                stdin=fh,
                env=CONTAINER_ENV,
                check=True,
                timeout=120,
            )

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    @staticmethod
    def mark() -> int:
        """Now, as a journal timestamp (µs; the container shares the host's clock): pass it
        to :meth:`journal` to read only what came after. (Not a cursor: journalctl 252's
        ``--after-cursor`` with a match skips the first matching entry.)"""
        return time.time_ns() // 1000

    def journal(self, unit: str, *, after: int = 0, priority: int = 7) -> list[str]:
        """The unit's journal messages received after ``after`` (:meth:`mark`), at
        ``priority`` or worse (3 = err), oldest first."""
        argv = ["journalctl", "-u", unit, "-o", "json", "--no-pager"]
        if after:
            argv.append(f"--since=@{after // 1_000_000 - 1}")
        lines = []
        for raw in self.run(*argv).stdout.splitlines():
            entry = json.loads(raw)
            message = entry.get("MESSAGE")
            if (
                isinstance(message, str)
                and int(entry["__REALTIME_TIMESTAMP"]) > after
                and int(entry.get("PRIORITY", 6)) <= priority
            ):
                lines.append(message)
        return lines

    def cgroup_of(self, unit: str) -> Path:
        """The host's view of a unit's cgroup in the container."""
        found = [p for p in self.cgroup.rglob(unit) if p.is_dir()]
        assert found, f"no cgroup {unit} under {self.cgroup}"
        return found[0]

    def shutdown(self, timeout: float = 60.0) -> None:
        """Halt the container (SIGTERM to nspawn), then kill what is left and remove the
        cgroups it leaves behind."""
        if self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.nspawn.wait(timeout)
        _kill_cgroup(self.cgroup)
        if self.nspawn.poll() is None:
            self.nspawn.kill()
            self.nspawn.wait(10)
        _remove_cgroup(self.cgroup)


def _kill_cgroup(cgroup: Path) -> None:
    if not cgroup.exists():
        return
    kill = cgroup / "cgroup.kill"
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
    else:
        for pid in _pids(cgroup):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _pids(cgroup) and time.monotonic() < deadline:
        time.sleep(0.1)


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir the cgroup tree, deepest first (a cgroup goes once its processes are reaped)."""
    deadline = time.monotonic() + 10
    while cgroup.exists():
        dirs = sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, cgroup]:
            with contextlib.suppress(FileNotFoundError, OSError):
                d.rmdir()
        if cgroup.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot remove cgroup {cgroup}: {_pids(cgroup)}")
            time.sleep(0.1)


@contextlib.contextmanager
def booted(root: Path, workdir: Path, *, boot_timeout: float = 60.0) -> Iterator[Container]:
    """Boot ``root`` (read-only: ``--volatile=overlay``) and yield it once systemd is up."""
    base = cgroup2_base()
    if base is None:
        raise ContainerUnavailable("no writable cgroup v2 hierarchy")
    cgroup = base / f"edgectl-test-{os.getpid()}-{time.monotonic_ns()}"
    console = workdir / "console.log"
    argv = [
        "systemd-nspawn", "-q", "-D", str(root), "-b", "--register=no", "--keep-unit",
        "--console=read-only", "--volatile=overlay", "--system-call-filter=bpf",
    ]  # fmt: skip
    env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
    cgroup.mkdir()
    with console.open("wb") as log:
        # the shell moves itself into our cgroup, then becomes nspawn
        nspawn = subprocess.Popen(
            ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs"), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    container = Container(cgroup, console, nspawn)
    try:
        container.init_pid = _wait_for_boot(container, boot_timeout)
        yield container
    finally:
        container.shutdown()


def _wait_for_boot(container: Container, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        if container.nspawn.poll() is not None:
            break
        pid = _container_init(container.cgroup)
        if pid is not None:
            container.init_pid = pid
            state = container.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return pid
        time.sleep(0.2)
    tail = container.console.read_text(errors="replace")[-2000:]
    raise ContainerUnavailable(f"the container did not boot (state {state!r}): {tail}")
