"""``Type=notify`` as systemd sees it: ``edgectl run`` against firmware_sim, NOTIFY_SOCKET at a
:class:`NotifyListener`, WatchdogSec=2 s.

One session (about 18 s): the emulator answers nothing for its first 2 s (so the field cannot
be polled), the control loop is wedged for 3 s at controller time 9 s (the daemon's test hook
``EDGECTL_TEST_WEDGE_AFTER_S``: a blocking sleep in the event loop), the cabinet's MMU trips
on the missing heartbeat meanwhile, and SIGTERM comes once the pings are back.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgectl.daemon.loop import TEST_WEDGE_AFTER_ENV, TEST_WEDGE_FOR_ENV
from edgectl.ops.sdnotify import Notification, NotifyListener
from edgectl.testing.hil import DaemonProcess, Emulator, read_record
from edgectl.testing.mosquitto import free_port

from .conftest import EIGHT_PHASE, scrape

pytestmark = pytest.mark.hil

WATCHDOG_SEC = 2.0
SILENT_S = 2.0  # the emulator answers nothing for its first 2 s
WEDGE_AT_T = 9.0  # controller time (from READY): the start-up phases are green
WEDGE_FOR_S = 3.0
STARTUP_FLASH_S = 5.0  # edgectl/examples/eight_phase.toml
STARTUP_ALL_RED_S = 2.0
STATUS = re.compile(r"^mode=(\S+) plan=(\d+) state=(\S+) cabinet=(online|degraded|offline)$")
SAFE_STATES = {"FR", "FY", "OFF", "R", "DW"}


@dataclass
class Session:
    emulator_started: float  # time.monotonic() when the emulator printed its URL
    notes: list[Notification]
    daemon_pid: int
    records_at_ready: list[tuple[float, int, str]]
    record: list[tuple[float, int, str]]
    sigterm_at: float
    exit_code: int | None
    scraped: dict[str, float]  # the metrics endpoint after the wedge
    logs: list[dict[str, Any]] = field(default_factory=list)

    def with_key(self, key: str) -> list[Notification]:
        return [n for n in self.notes if key in n]

    @property
    def ready(self) -> Notification:
        return self.with_key("READY")[0]


def _collect(
    listener: NotifyListener,
    notes: list[Notification],
    done: Callable[[list[Notification]], bool],
    timeout: float,
    daemon: DaemonProcess,
) -> None:
    """Read notifications until ``done(notes)``; keep reading: systemd never stops listening."""
    deadline = time.monotonic() + timeout
    while not done(notes):
        assert daemon.process is not None
        if time.monotonic() > deadline:
            raise AssertionError(
                f"notifications {[n.fields for n in notes[-8:]]}\n{daemon.process.output()[-3000:]}"
            )
        if not daemon.process.running():
            notes.extend(listener.drain())
            return
        with contextlib.suppress(TimeoutError):
            notes.append(listener.receive(timeout=0.2))


def _state(note: Notification) -> str | None:
    match = STATUS.match(note.get("STATUS") or "")
    return match.group(3) if match else None


def _back_after_wedge(notes: list[Notification]) -> bool:
    """The pings paused for the wedge, came back, and the junction is in flash (MMU)."""
    pings = [n.at for n in notes if "WATCHDOG" in n]
    gaps = [i for i, (a, b) in enumerate(itertools.pairwise(pings)) if b - a > WATCHDOG_SEC]
    if not gaps or len(pings) - gaps[0] < 4:
        return False
    return any(_state(n) == "flash" for n in notes if n.at > pings[gaps[0]])


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    tmp = tmp_path_factory.mktemp("notify")
    sim = Emulator(tmp, seed=2, faults=[f"silent@0+{SILENT_S:g}"])
    with NotifyListener() as listener:
        sim.start()
        started = time.monotonic()
        env = listener.env(watchdog_sec=WATCHDOG_SEC)
        env[TEST_WEDGE_AFTER_ENV] = str(WEDGE_AT_T)
        env[TEST_WEDGE_FOR_ENV] = str(WEDGE_FOR_S)
        port = free_port()
        daemon = DaemonProcess(
            tmp, EIGHT_PHASE, sim.url, env=env, extra=["--metrics", f"127.0.0.1:{port}"]
        )
        notes: list[Notification] = []
        try:
            daemon.start()
            assert daemon.process is not None
            # until READY, reading the cabinet's record the moment it arrives
            _collect(listener, notes, lambda ns: any("READY" in n for n in ns), 30.0, daemon)
            at_ready = read_record(sim.record_path)
            _collect(listener, notes, _back_after_wedge, WEDGE_AT_T + WEDGE_FOR_S + 15.0, daemon)
            assert daemon.process.running(), daemon.process.output()[-3000:]
            scraped = scrape(f"http://127.0.0.1:{port}/metrics")
            sigterm_at = time.monotonic()
            daemon.process.send(signal.SIGTERM)
            _collect(listener, notes, lambda ns: False, 40.0, daemon)  # until it exits
            code = daemon.process.wait(5)
        finally:
            daemon.stop()
            sim.stop()
        yield Session(
            emulator_started=started,
            notes=notes,
            daemon_pid=daemon.process.pid,
            records_at_ready=at_ready,
            record=sim.record(),
            sigterm_at=sigterm_at,
            exit_code=code,
            scraped=scraped,
            logs=daemon.log_events(),
        )


def test_ready_only_once_the_field_is_polled_and_the_junction_is_safe(session: Session) -> None:
    ready = session.ready
    assert len(session.with_key("READY")) == 1
    # the emulator was silent for its first 2 s: no READY before it answered
    assert ready.at - session.emulator_started >= SILENT_S, ready.at - session.emulator_started
    # before READY: no WATCHDOG, only STATUS lines saying what the start is waiting for
    before = session.notes[: session.notes.index(ready)]
    assert before, "no STATUS while waiting for the silent cabinet"
    for note in before:
        assert set(note.fields) == {"STATUS"}, note.fields
        assert (note.get("STATUS") or "").startswith("starting: waiting for the field cabinet=")
    # the junction is in a safe state: start-up flash, and the cabinet was polled (not
    # offline) and had shown nothing but flash / red so far
    status = ready.get("STATUS") or ""
    match = STATUS.match(status)
    assert match, status
    assert match.group(3) == "startup_flash", status
    assert match.group(4) in ("online", "degraded"), status
    assert {st for _, _, st in session.records_at_ready} <= SAFE_STATES, session.records_at_ready
    logged = [e for e in session.logs if e.get("event") == "ready"]
    assert len(logged) == 1 and logged[0]["state"] == "startup_flash", logged
    # sent by the main process (NotifyAccess=main)
    assert {n.pid for n in session.notes} == {session.daemon_pid}


def test_startup_sequence_is_timed_from_ready(session: Session) -> None:
    """The unreachable cabinet did not eat into the start-up sequence: the cabinet showed
    start-up flash for 5 s after READY, then all-red for at least 2 s, then green."""
    # the controller's clock had not moved while the field was unreachable
    ready = [e for e in session.logs if e.get("event") == "ready"]
    assert ready[0]["t"] == 0.0, ready
    rows = session.record
    first_red = min(t for t, _, st in rows if st in ("R", "DW"))
    first_green = min(t for t, _, st in rows if st in ("G", "W"))
    # emulator time of READY, roughly: the emulator's clock started before it printed its URL,
    # and this process read the datagram a little after it was sent (by up to a few hundred
    # ms on a loaded machine) — hence the slack. Before the fix READY came in all-red, with
    # the flash over: a difference of 0 s.
    ready_t = session.ready.at - session.emulator_started
    assert first_red - ready_t >= STARTUP_FLASH_S - 0.5, (first_red, ready_t)
    assert first_green - first_red >= STARTUP_ALL_RED_S - 0.03, (first_red, first_green)
    assert not [r for r in rows if r[0] < first_red and r[2] not in ("FR", "FY", "OFF")]


def test_status_carries_mode_plan_and_link_health(session: Session) -> None:
    lines = [n.get("STATUS") or "" for n in session.with_key("STATUS")]
    assert len(lines) >= 3, lines
    parsed = []
    for line in lines:
        if line.startswith("starting: "):
            continue
        match = STATUS.match(line)
        assert match, line
        parsed.append(match.groups())
    # the configured mode, or flash while in flash (the MMU after the wedge); plan 1 throughout
    assert {(mode, plan) for mode, plan, state, _ in parsed if state != "flash"} == {
        ("actuated", "1")
    }, sorted(set(parsed))
    assert {plan for _, plan, _, _ in parsed} == {"1"}
    # link health: degraded while the cabinet was coming back from its silence, then online
    assert {health for *_, health in parsed} <= {"online", "degraded"}
    assert parsed[-1][3] == "online" or parsed[-1][2] == "flash", parsed[-1]
    # STATUS follows the start-up sequence as it happens, and the MMU flash after the wedge
    states = [state for _, _, state, _ in parsed]
    for expected in ("all_red", "normal", "flash"):
        assert expected in states, states
    assert states.index("all_red") < states.index("normal") < states.index("flash"), states


def _pings(session: Session) -> list[float]:
    return [n.at for n in session.with_key("WATCHDOG")]


def test_watchdog_cadence_is_a_quarter_interval(session: Session) -> None:
    # from READY until just before the wedge (controller time starts at READY)
    pings = [t for t in _pings(session) if t < session.ready.at + WEDGE_AT_T - 0.5]
    assert len(pings) >= 12, pings
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    # never more often than WatchdogSec/4 (a little slack for the listener's own timing) …
    assert min(gaps) >= WATCHDOG_SEC / 4 - 0.05, gaps
    # … and always well inside the half interval systemd asks for
    assert max(gaps) < WATCHDOG_SEC / 2, gaps


def test_watchdog_stops_while_the_loop_is_wedged(session: Session) -> None:
    wedged = [e for e in session.logs if e.get("event") == "test_wedge"]
    assert len(wedged) == 1, wedged
    pings = _pings(session)
    gaps = [(b - a, a) for a, b in itertools.pairwise(pings)]
    longest, since = max(gaps)
    # silent for the whole wedge: longer than WatchdogSec, so systemd would have killed it
    assert longest >= WEDGE_FOR_S - 0.1, gaps
    assert longest > WATCHDOG_SEC
    assert sorted(g for g, _ in gaps)[-2] < WATCHDOG_SEC / 2, "only one silence expected"
    # and the pings came back once ticks were on time again (here: the MMU had gone to
    # flash meanwhile, its heartbeat watchdog trips after 1 s — as on a real cabinet)
    assert any(t > since + longest for t in pings)
    # the metrics saw it too: the late tick is counted
    assert session.scraped["edgectl_late_ticks_total"] >= 1


def test_stopping_on_sigterm_and_exit_0(session: Session) -> None:
    stopping = session.with_key("STOPPING")
    assert len(stopping) == 1, [n.fields for n in session.notes[-5:]]
    assert 0 <= stopping[0].at - session.sigterm_at < 1.0
    assert session.exit_code == 0
    # the hand-over: the cabinet was left in flash
    last = {ch: st for _, ch, st in session.record}
    assert set(last.values()) <= {"FR", "FY", "OFF"}, last
    assert not [n for n in session.notes if n.at > stopping[0].at and "READY" in n]
