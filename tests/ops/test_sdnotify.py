"""sd_notify against a real AF_UNIX datagram socket (filesystem path and abstract name)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.ops.sdnotify import Notifier


class Listener:
    """What systemd does: a datagram socket that receives notifications."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # as it would appear in $NOTIFY_SOCKET

    def receive(self, timeout: float = 2.0) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())


@pytest.fixture
def fs_listener(tmp_path: Path) -> Iterator[Listener]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        yield Listener(sock, str(path))


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"edgectl-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        yield Listener(sock, "@" + name)


@pytest.fixture(params=["filesystem", "abstract"])
def listener(
    request: pytest.FixtureRequest, fs_listener: Listener, abstract_listener: Listener
) -> Listener:
    return fs_listener if request.param == "filesystem" else abstract_listener


def test_each_message_reaches_the_socket(listener: Listener) -> None:
    with Notifier(listener.address) as n:
        assert n.enabled
        assert n.ready(status="mode actuated, plan 1")
        assert listener.receive() == {"READY": "1", "STATUS": "mode actuated, plan 1"}
        assert n.status("mode coordinated\nplan 3")  # one line only
        assert listener.receive() == {"STATUS": "mode coordinated plan 3"}
        assert n.watchdog()
        assert listener.receive() == {"WATCHDOG": "1"}
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert n.reloading()
        msg = listener.receive()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert msg["RELOADING"] == "1"
        assert before <= int(msg["MONOTONIC_USEC"]) <= after
        assert n.stopping()
        assert listener.receive() == {"STOPPING": "1"}
        assert n.sent == 5
        assert n.failures == 0


def test_unset_socket_is_a_no_op() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert not n.watchdog_enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.failures == 0


def test_relative_path_is_refused_without_raising() -> None:
    n = Notifier("relative/path")
    assert not n.enabled
    assert n.ready() is False


def test_missing_socket_is_counted_never_raised(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "nobody-listens"))
    assert n.enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.failures == 2


def test_recovers_when_the_listener_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    n = Notifier(str(path))
    assert n.watchdog() is False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        assert n.watchdog() is True
        assert Listener(sock, str(path)).receive() == {"WATCHDOG": "1"}
    assert n.failures == 1
    n.close()


def test_full_receive_queue_does_not_block(fs_listener: Listener) -> None:
    """A service manager that stops reading must not stall the control loop."""
    n = Notifier(fs_listener.address)
    started = time.monotonic()
    results = [n.watchdog() for _ in range(5000)]
    assert time.monotonic() - started < 5.0
    assert results[0] is True
    assert results[-1] is False  # queue full → EAGAIN, counted
    assert n.failures == results.count(False) > 0
    n.close()


def test_watchdog_interval_from_env(abstract_listener: Listener) -> None:
    env = {"NOTIFY_SOCKET": abstract_listener.address, "WATCHDOG_USEC": "10000000"}
    n = Notifier.from_env(env)
    assert n.watchdog_enabled
    assert n.watchdog_timeout == 10.0
    assert n.watchdog_ping_interval == 5.0

    mine = Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_timeout == 10.0

    other = Notifier.from_env({**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.enabled
    assert other.watchdog_timeout is None
    assert other.watchdog_ping_interval is None

    bad = Notifier.from_env({**env, "WATCHDOG_USEC": "soon"})
    assert bad.watchdog_timeout is None
