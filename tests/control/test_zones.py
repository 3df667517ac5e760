"""Zone sensor diagnostics in the pure core: no data, stuck, implausible, recovery, and the
strategies' view (healthy zones only; a failed zone's lane falls back to its loops)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import Config, Zone
from edgectl.control.controller import Controller
from edgectl.control.types import EventCode, Inputs, ZoneReading
from edgectl.control.zones import ZoneBank, implausible

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "edgectl" / "examples" / "io_modules_zones.toml"

ZONE = Zone(id=2, phases=(2,), lanes=2, length_m=150.0, loops=(2, 9))


def reading(frame: int, **kw: object) -> ZoneReading:
    values: dict[str, object] = {
        "zone": 2,
        "frame": frame,
        "vehicles": 3,
        "halting": 2,
        "queue_m": 11.5,
        "mean_speed_mps": 4.6,
        "objects": ((0.0, 0.0), (7.0, 0.0), (60.0, 13.9)),
    }
    values.update(kw)
    return ZoneReading(**values)  # type: ignore[arg-type]


class Feed:
    """Drives a ZoneBank tick by tick (0.1 s) and keeps its events."""

    def __init__(self, *zones: Zone) -> None:
        self.bank = ZoneBank(zones or (ZONE,))
        self.tick = 0
        self.frame = 0
        self.events: list[tuple[float, int, int]] = []

    def run(self, seconds: float, make: object = "fresh") -> None:
        for _ in range(round(seconds * 10)):
            if make == "fresh":
                self.frame += 1
                readings: tuple[ZoneReading, ...] = (reading(self.frame),)
            elif make == "none":
                readings = ()
            elif make == "stuck":
                readings = (reading(self.frame),)
            else:
                assert callable(make)
                self.frame += 1
                readings = (make(self.frame),)
            for code, zone in self.bank.update(self.tick, readings):
                self.events.append((self.tick / 10, code, zone))
            self.tick += 1


def test_a_zone_comes_up_after_its_hold_off_and_is_seen() -> None:
    feed = Feed()
    assert feed.bank.is_failed(2) and feed.bank.healthy == {}
    feed.run(4.9)
    assert feed.bank.is_failed(2) and feed.events == []
    assert feed.bank.fault(2) is None  # coming up, not faulted
    feed.run(0.2)
    assert feed.events == [(5.0, EventCode.ZONE_RESTORED, 2)]
    assert not feed.bank.is_failed(2)
    assert feed.bank.healthy[2].frame == feed.frame - 1 or feed.bank.healthy[2].frame == feed.frame
    status = feed.bank.statuses[0]
    assert status.id == 2 and not status.failed and status.reading is not None


def test_a_zone_that_never_answers_is_reported_no_data_once() -> None:
    feed = Feed()
    feed.run(10.0, "none")
    assert feed.events == [(2.0, EventCode.ZONE_FAULT, 2)]
    assert feed.bank.fault(2) == "no_data"
    assert feed.bank.failed == {2}


@pytest.mark.parametrize(
    ("make", "fault", "at"),
    [
        ("none", "no_data", 7.9),  # no measurement for 2 s after the last one (5.9 s)
        ("stuck", "stuck", 8.9),  # the counter unchanged for 3 s since 5.9 s
        (lambda f: reading(f, halting=5), "implausible", 7.0),  # 1 s of halting > vehicles
    ],
)
def test_faults_fail_the_zone_and_it_recovers_after_a_clean_hold_off(
    make: object, fault: str, at: float
) -> None:
    feed = Feed()
    feed.run(6.0)  # up at 5.0
    assert not feed.bank.is_failed(2)
    feed.events.clear()
    feed.run(10.0, make)
    assert feed.events == [(at, EventCode.ZONE_FAULT, 2)]
    assert feed.bank.is_failed(2) and feed.bank.fault(2) == fault
    assert 2 not in feed.bank.healthy
    feed.run(4.9)
    assert feed.bank.is_failed(2)  # clean, but still in its hold-off
    feed.run(0.3)
    t, code, zone = feed.events[-1]
    assert (t, code, zone) == (21.0, EventCode.ZONE_RESTORED, 2)
    assert not feed.bank.is_failed(2) and feed.bank.fault(2) is None


def test_a_fault_during_the_hold_off_starts_it_again() -> None:
    feed = Feed()
    feed.run(6.0)
    feed.run(3.5, "stuck")
    feed.run(3.0)  # clean for 3 s
    feed.run(3.5, "stuck")  # stuck again: the hold-off starts over
    feed.run(4.0)
    assert feed.bank.is_failed(2)
    feed.run(1.2)
    assert not feed.bank.is_failed(2)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"vehicles": 62, "halting": 0, "objects": ()}, "vehicles 62 > 60"),
        ({"halting": 4}, "halting 4 > vehicles 3"),
        ({"vehicles": 1, "halting": 1}, "objects 3 > vehicles 1"),
        ({"queue_m": 160.0}, "queue 160.0 m > zone 150 m"),
        ({"mean_speed_mps": 45.0}, "mean speed 45.0 m/s > 41.7"),
        ({"objects": ((0.0, 0.0), (170.0, 10.0))}, "object at 170.0 m, 10.0 m/s"),
        ({"objects": ((0.0, 0.0), (20.0, 60.0))}, "object at 20.0 m, 60.0 m/s"),
    ],
)
def test_what_is_implausible(change: dict[str, object], why: str) -> None:
    assert implausible(ZONE, reading(1)) is None
    assert implausible(ZONE, reading(1, **change)) == why


def test_a_short_implausible_blip_does_not_fail_the_zone() -> None:
    feed = Feed()
    feed.run(6.0)
    feed.run(0.5, lambda f: reading(f, queue_m=400.0))
    feed.run(2.0)
    assert not feed.bank.is_failed(2)
    assert feed.events == [(5.0, EventCode.ZONE_RESTORED, 2)]


def test_disabled_checks() -> None:
    zone = ZONE.model_copy(update={"stuck_s": 0.0, "implausible_s": 0.0})
    feed = Feed(zone)
    feed.run(6.0)
    feed.run(20.0, "stuck")
    feed.run(5.0, lambda f: reading(f, halting=9))
    assert not feed.bank.is_failed(2)


def test_readings_of_zones_not_configured_are_ignored() -> None:
    feed = Feed()
    feed.bank.update(0, (reading(1, zone=9),))
    assert feed.bank.statuses[0].id == 2 and len(feed.bank.statuses) == 1


# --- through the controller ----------------------------------------------------------------


def _controller() -> tuple[Config, Controller]:
    config = load_config(EXAMPLE)
    return config, Controller(config)


def _readings(frame: int, zones: tuple[int, ...] = (2, 4, 6, 8)) -> tuple[ZoneReading, ...]:
    return tuple(reading(frame, zone=z) for z in zones)


def test_the_view_sees_healthy_zones_and_falls_back_for_failed_ones() -> None:
    _, ctl = _controller()
    seen: dict[float, dict[int, int]] = {}
    fallback: dict[float, tuple[int, ...]] = {}

    class Watch:
        def requests(self, view: object) -> object:
            from edgectl.control.types import NO_REQUESTS

            t = view.t  # type: ignore[attr-defined]
            seen[t] = {z: r.halting for z, r in view.zones.items()}  # type: ignore[attr-defined]
            fallback[t] = tuple(
                det
                for z in (2, 6)
                if view.zone_failed(z)  # type: ignore[attr-defined]
                for det in view.zone_loops(z)  # type: ignore[attr-defined]
            )
            return NO_REQUESTS

    ctl._strategy = Watch()  # type: ignore[assignment]  # a probe in place of actuated
    t = 0.0
    outs = []
    for n in range(1, 301):  # 30 s: the sensors answer from 3 s on, zone 6 no more from 15 s
        zones = () if t < 3.0 else (2, 4, 6, 8) if t < 15.0 else (2, 4, 8)
        outs.append(ctl.step(t, Inputs(zones=_readings(n, zones))))
        t = round(t + 0.1, 1)
    assert seen[7.9] == {}  # zones in their hold-off (the strategy runs from 5.1 s on)
    assert fallback[7.9] == (2, 9, 6, 11)
    assert seen[8.0] == {2: 2, 4: 2, 6: 2, 8: 2}
    assert fallback[8.0] == ()
    assert 6 not in seen[29.9] and fallback[29.9] == (6, 11)  # zone 6's loops
    last = outs[-1]
    assert [(z.id, z.failed, z.fault) for z in last.zones] == [
        (2, False, None),
        (4, False, None),
        (6, True, "no_data"),
        (8, False, None),
    ]
    assert "zone:failed:6" in last.alarms
    codes = [(e.code, e.param) for o in outs for e in o.events if e.code >= 220]
    # no data for the first 2 s (reported), up after the hold-off, then zone 6 lost
    assert codes == [*((220, z) for z in (2, 4, 6, 8)), *((221, z) for z in (2, 4, 6, 8)), (220, 6)]
    # the junction is unaffected: running normally throughout
    assert last.state.value == "normal"


def test_a_controller_without_zones_reports_none() -> None:
    config = load_config(ROOT / "edgectl" / "examples" / "io_modules.toml")
    ctl = Controller(config)
    out = ctl.step(0.0, Inputs(zones=_readings(1)))
    assert out.zones == ()
    assert ctl.view.zones == {} and ctl.view.zone_failed(2) and ctl.view.zone_loops(2) == ()
