"""sd_notify against a real AF_UNIX datagram socket (filesystem path and abstract name)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl.ops.sdnotify import Notifier, NotifyListener


@pytest.fixture(params=["filesystem", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifyListener]:
    with NotifyListener(tmp_path if request.param == "filesystem" else None) as lst:
        assert lst.address.startswith("/" if request.param == "filesystem" else "@")
        yield lst


def test_each_message_reaches_the_socket(listener: NotifyListener) -> None:
    with Notifier(listener.address) as n:
        assert n.enabled
        assert n.ready(status="mode actuated, plan 1")
        note = listener.receive(timeout=2)
        assert note.fields == {"READY": "1", "STATUS": "mode actuated, plan 1"}
        assert note.pid == os.getpid()
        assert n.status("mode coordinated\nplan 3")  # one line only
        assert listener.receive(timeout=2).fields == {"STATUS": "mode coordinated plan 3"}
        assert n.watchdog()
        assert listener.receive(timeout=2).fields == {"WATCHDOG": "1"}
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert n.reloading()
        msg = listener.receive(timeout=2).fields
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert msg["RELOADING"] == "1"
        assert before <= int(msg["MONOTONIC_USEC"]) <= after
        assert n.stopping()
        assert listener.receive(timeout=2).fields == {"STOPPING": "1"}
        assert n.sent == 5
        assert n.failures == 0
    assert len(listener.received) == 5


def test_listener_times_out(listener: NotifyListener) -> None:
    with pytest.raises(TimeoutError):
        listener.receive(timeout=0.05)
    assert listener.drain() == []


async def test_a_child_process_notifies_with_its_own_pid(listener: NotifyListener) -> None:
    """What the daemon tests do: a child with NOTIFY_SOCKET/WATCHDOG_USEC in its env."""
    code = (
        "from edgectl.ops.sdnotify import Notifier\n"
        "n = Notifier.from_env()\n"
        "assert n.watchdog_ping_interval == 1.5, n.watchdog_ping_interval\n"
        "n.ready('up')\n"
        "assert n.watchdog() is True\n"
        "assert n.watchdog() is False  # not due: a quarter interval has not passed\n"
        "assert n.watchdog(force=True) is True\n"
        "n.stopping()\n"
    )
    env = {**os.environ, **listener.env(watchdog_sec=3)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env)
    try:
        async with asyncio.timeout(20):
            ready = await listener.wait_for("READY", "1")
            stopping = await listener.wait_for("STOPPING")
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert ready.pid == proc.pid
    assert ready.get("STATUS") == "up"
    assert stopping.pid == proc.pid
    assert [sorted(n.fields) for n in listener.received] == [
        ["READY", "STATUS"],
        ["WATCHDOG"],
        ["WATCHDOG"],
        ["STOPPING"],
    ]
    assert listener.received[1].at <= listener.received[2].at


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
        sock.settimeout(2)
        assert sock.recv(100) == b"WATCHDOG=1"
    assert n.failures == 1
    n.close()


def test_full_receive_queue_does_not_block(tmp_path: Path) -> None:
    """A service manager that stops reading must not stall the control loop."""
    with NotifyListener(tmp_path) as listener:
        n = Notifier(listener.address)
        started = time.monotonic()
        results = [n.watchdog() for _ in range(5000)]
        assert time.monotonic() - started < 5.0
        assert results[0] is True
        assert results[-1] is False  # queue full → EAGAIN, counted
        assert n.failures == results.count(False) > 0
        assert len(listener.drain()) == results.count(True)
        n.close()


def test_watchdog_interval_from_env() -> None:
    with NotifyListener() as listener:
        env = listener.env(watchdog_sec=10)
        n = Notifier.from_env(env)
        assert n.watchdog_enabled
        assert n.watchdog_timeout == 10.0
        assert n.watchdog_ping_interval == 5.0

        mine = Notifier.from_env(listener.env(watchdog_sec=10, pid=os.getpid()))
        assert mine.watchdog_timeout == 10.0

        other = Notifier.from_env(listener.env(watchdog_sec=10, pid=os.getpid() + 1))
        assert other.enabled
        assert other.watchdog_timeout is None
        assert other.watchdog_ping_interval is None

        bad = Notifier.from_env({**env, "WATCHDOG_USEC": "soon"})
        assert bad.watchdog_timeout is None


def test_filesystem_listener_removes_its_socket(tmp_path: Path) -> None:
    with NotifyListener(tmp_path) as listener:
        assert Path(listener.address).exists()
    assert not Path(listener.address).exists()


def test_watchdog_pings_every_quarter_interval(listener: NotifyListener) -> None:
    """Called on every 0.1 s tick, it sends one ping per WatchdogSec/4 (virtual clock)."""
    now = [0.0]
    n = Notifier(listener.address, watchdog_usec=2_000_000, clock=lambda: now[0])
    assert n.watchdog_spacing == 0.5
    sent_at = []
    for tick in range(30):  # 3 s of ticks
        now[0] = tick * 0.1
        if n.watchdog():
            sent_at.append(round(now[0], 1))
    assert sent_at == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert len(listener.drain()) == 6
    n.close()
