"""SIGHUP, bad then good: ``edgectl run`` against firmware_sim and a real mosquitto.

One session: the daemon runs plan 1 of ``edgectl/examples/eight_phase.toml`` from a copy of the
file;
the copy is rewritten with an invalid plan 1 and SIGHUP'd (refused), then with a valid plan 1
whose yellows are one second longer and SIGHUP'd again (accepted). What the cabinet showed —
the emulator's record — says which plan was in effect when.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgectl.config.loader import load_config
from edgectl.control.types import EventCode
from edgectl.ops.sdnotify import Notification, NotifyListener
from edgectl.testing.hil import DaemonProcess, Emulator
from edgectl.testing.mosquitto import MosquittoBroker, free_port, mosquitto_available

from .conftest import EIGHT_PHASE, MqttTap, events_named, scrape, wait_until

pytestmark = [
    pytest.mark.hil,
    pytest.mark.mqtt,
    pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed"),
]

ROOT = "citybrain/hz-0001"
OLD_YELLOW = {1: 3.5, 2: 4.0, 3: 3.5, 4: 4.0, 5: 3.5, 6: 4.0, 7: 3.5, 8: 4.0}  # channel → s
LONGER_S = 1.0  # the accepted plan's yellows are this much longer
LATE_S = 0.5  # a yellow this much longer than the old plan's is the new plan's


def _plan1(text: str, *replacements: tuple[str, str]) -> str:
    """``text`` with ``replacements`` applied to plan 1 only (the part before plan 2)."""
    head, sep, tail = text.partition("[[plans]]\nid = 2\n")
    assert sep, "plan 2 not found"
    for old, new in replacements:
        assert old in head, old
        head = head.replace(old, new)
    return head + sep + tail


ORIGINAL = EIGHT_PHASE.read_text(encoding="utf-8")
BAD = _plan1(  # every yellow invalid (2.0 and 7.0 s), and the left turns' min green
    ORIGINAL,
    ("yellow = 3.5", "yellow = 2.0"),
    ("yellow = 4.0", "yellow = 7.0"),
    ("min_green = 5.0", "min_green = 2.0"),
)
GOOD = _plan1(ORIGINAL, ("yellow = 3.5", "yellow = 4.5"), ("yellow = 4.0", "yellow = 5.0"))


@dataclass
class Session:
    emulator_started: float
    bad_at: float  # time.monotonic() of each SIGHUP
    good_at: float
    notes: list[Notification]
    record: list[tuple[float, int, str]]
    logs: list[dict[str, Any]]
    event_codes: list[int]
    scraped: dict[str, float]
    exit_code: int | None

    def emulator_time(self, mono: float) -> float:
        """The emulator's clock at ``mono``, at most (its clock started before its URL)."""
        return mono - self.emulator_started


def yellows(rows: list[tuple[float, int, str]]) -> list[tuple[int, float, float, float]]:
    """``(channel, green start, yellow start, yellow duration)`` of every complete yellow."""
    found = []
    green_at: dict[int, float] = {}
    yellow_at: dict[int, float] = {}
    for t, ch, st in rows:
        if ch in yellow_at and st != "Y":
            found.append((ch, green_at.get(ch, -1.0), yellow_at[ch], t - yellow_at.pop(ch)))
        if st == "G":
            green_at[ch] = t
        elif st == "Y":
            yellow_at[ch] = t
    return found


def _is_new(channel: int, duration: float) -> bool:
    return duration >= OLD_YELLOW[channel] + LATE_S


def _status_seen(listener: NotifyListener, text: str) -> bool:
    listener.drain()
    return any(text in (n.get("STATUS") or "") for n in listener.received)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    tmp = tmp_path_factory.mktemp("reload")
    config = tmp / "edgectl.toml"
    config.write_text(ORIGINAL, encoding="utf-8")
    port = free_port()
    with (
        MosquittoBroker() as broker,
        NotifyListener() as listener,
        MqttTap(broker.port, [f"{ROOT}/events"]) as tap,
    ):
        sim = Emulator(tmp, seed=11).start()
        started = time.monotonic()
        daemon = DaemonProcess(
            tmp,
            config,
            sim.url,
            broker=broker.url,
            env=listener.env(),
            extra=["--metrics", f"127.0.0.1:{port}"],
        )
        try:
            daemon.start()
            assert daemon.process is not None
            # in service (start-up phases 2 and 6 green): the bad file
            wait_until(
                lambda: _status_seen(listener, "state=normal"), 30, "normal service", daemon=daemon
            )
            config.write_text(BAD, encoding="utf-8")
            bad_at = time.monotonic()
            daemon.process.send(signal.SIGHUP)
            wait_until(
                lambda: events_named(daemon, "reload_rejected"),
                10,
                "reload_rejected",
                daemon=daemon,
                listener=listener,
            )
            # the start-up phases end (yellow): the engine is about to cross a barrier, where
            # a new plan takes effect. Then the good file.
            wait_until(
                lambda: any(ch in (2, 6) and st == "Y" for _, ch, st in sim.record()),
                60,
                "the end of the start-up phases",
                daemon=daemon,
                listener=listener,
            )
            # the good file
            config.write_text(GOOD, encoding="utf-8")
            good_at = time.monotonic()
            daemon.process.send(signal.SIGHUP)
            wait_until(
                lambda: events_named(daemon, "reload_accepted"),
                10,
                "reload_accepted",
                daemon=daemon,
                listener=listener,
            )
            wait_until(
                lambda: EventCode.CONFIG_REJECTED in tap.event_codes(),
                10,
                "event 205 on MQTT",
                daemon=daemon,
                listener=listener,
            )
            wait_until(
                lambda: EventCode.CONFIG_RELOADED in tap.event_codes(),
                10,
                "event 204 on MQTT",
                daemon=daemon,
                listener=listener,
            )
            # until the cabinet has shown a few of the new plan's yellows
            wait_until(
                lambda: sum(_is_new(ch, d) for ch, _, _, d in yellows(sim.record())) >= 2,
                90,
                "the new plan's yellows in the record",
                daemon=daemon,
                listener=listener,
            )
            scraped = scrape(f"http://127.0.0.1:{port}/metrics")
            daemon.process.send(signal.SIGTERM)
            code = daemon.process.wait(45)
        finally:
            daemon.stop()
            sim.stop()
        listener.drain()
        return Session(
            emulator_started=started,
            bad_at=bad_at,
            good_at=good_at,
            notes=list(listener.received),
            record=sim.record(),
            logs=daemon.log_events(),
            event_codes=tap.event_codes(),
            scraped=scraped,
            exit_code=code,
        )


def _logged(session: Session, name: str) -> list[dict[str, Any]]:
    return [e for e in session.logs if e.get("event") == name]


def test_bad_config_is_refused_with_every_reason(session: Session) -> None:
    rejected = _logged(session, "reload_rejected")
    assert len(rejected) == 1, rejected
    assert rejected[0]["level"] == "error"
    problems = " ".join(rejected[0]["problems"])
    assert "yellow" in problems and "min_green" in problems, problems
    assert len(rejected[0]["problems"]) >= 2
    # published as event 205 through the outbox
    assert session.event_codes.count(EventCode.CONFIG_REJECTED) == 1


def test_old_plan_kept_running_after_the_refusal(session: Session) -> None:
    """The refused file had every yellow invalid (2.0 / 7.0 s): the cabinet never showed one.
    The yellows that began after the refusal, of greens that began before the good SIGHUP,
    had the old plan's durations, and the junction stayed in service (no flash)."""
    good_t = session.emulator_time(session.good_at)
    bad_t = session.emulator_time(session.bad_at)
    rows = yellows(session.record)
    old = [(ch, g, y, d) for ch, g, y, d in rows if g < good_t - 0.5]
    assert [y for _, _, y, _ in old if y > bad_t], "no yellow after the refused reload"
    for ch, g, y, d in old:
        assert OLD_YELLOW[ch] - 0.03 <= d < OLD_YELLOW[ch] + LATE_S, (ch, g, y, d)
    assert all(2.5 < d < 6.5 for *_, d in rows), rows
    flash = [(t, ch) for t, ch, st in session.record if st in ("FR", "FY") and t > bad_t]
    assert min(flash, default=(math.inf, 0))[0] > good_t, flash[:3]  # only the final hand-over


def test_good_config_is_accepted_and_applied_at_a_safe_point(session: Session) -> None:
    accepted = _logged(session, "reload_accepted")
    assert len(accepted) == 1 and accepted[0]["plan"] == 1, accepted
    assert session.event_codes.count(EventCode.CONFIG_RELOADED) == 1
    good_t = session.emulator_time(session.good_at)
    after = [(ch, g, y, d) for ch, g, y, d in yellows(session.record) if y >= good_t]
    new = [row for row in after if _is_new(row[0], row[3])]
    assert len(new) >= 2, after
    # the new yellows are the plan's, exactly (never shorter)
    for ch, _, y, d in new:
        assert OLD_YELLOW[ch] + LONGER_S - 0.03 <= d <= OLD_YELLOW[ch] + LONGER_S + 0.15, (ch, y, d)
    # applied at a safe point, all at once: no green that began before the reload ended in
    # the new yellow, and once the new plan showed, the old one never came back
    assert all(g >= good_t - 0.5 for _, g, _, _ in new), new
    first = min(y for _, _, y, _ in new)
    assert all(_is_new(ch, d) for ch, _, y, d in after if y >= first), after
    # the engine logged the pattern change (event 131) after the reload was accepted
    changes = [
        e
        for e in session.logs
        if e.get("event") == "event" and e.get("code") == EventCode.COORD_PATTERN_CHANGE
    ]
    assert changes, "no pattern change logged"


def test_each_reload_is_announced_to_systemd(session: Session) -> None:
    """RELOADING=1 (with MONOTONIC_USEC) at each SIGHUP, READY=1 once it is decided."""
    keys = [
        "RELOADING" if "RELOADING" in n else "READY"
        for n in session.notes
        if "RELOADING" in n or "READY" in n
    ]
    assert keys == ["READY", "RELOADING", "READY", "RELOADING", "READY"], keys
    for n in session.notes:
        if "RELOADING" in n:
            assert int(n.get("MONOTONIC_USEC") or 0) > 0


def test_reloads_are_counted(session: Session) -> None:
    assert session.scraped['edgectl_config_reloads_total{result="rejected"}'] == 1.0
    assert session.scraped['edgectl_config_reloads_total{result="applied"}'] == 1.0
    assert session.exit_code == 0


def test_reloaded_file_is_valid(tmp_path: Path) -> None:
    """The two files really are what the test claims (one error list, one valid plan)."""
    good = tmp_path / "good.toml"
    good.write_text(GOOD, encoding="utf-8")
    plan = load_config(good).plan(1)
    assert {p: t.yellow for p, t in plan.timing.items()} == {
        p: y + LONGER_S for p, y in OLD_YELLOW.items()
    }
