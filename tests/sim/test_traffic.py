"""The traffic model against textbook figures, in virtual time (no server)."""

from __future__ import annotations

import itertools
import statistics

import pytest

from edgectl.cabinet.channels import ChannelState as S
from edgectl.cabinet.profile import CabinetDetector, DetectorPosition, Movement
from firmware_sim.traffic import TrafficModel

DT = 0.1


def fixed_time(t: float, cycle: float, green: float, yellow: float, offset: float) -> S:
    p = (t - offset) % cycle
    return S.G if p < green else S.Y if p < green + yellow else S.R


def run_two_phase(model: TrafficModel, hours: float, cycle: float, green: float) -> None:
    for i in range(round(hours * 3600 / DT)):
        t = i * DT
        signals = {
            1: fixed_time(t, cycle, green, 3.0, 0.0),
            2: fixed_time(t, cycle, green, 3.0, cycle / 2),
        }
        model.step(t, DT, signals)


@pytest.mark.parametrize(("x", "seed"), [(0.5, 1), (0.6, 2)])
def test_mean_delay_matches_webster(x: float, seed: int) -> None:
    cycle, green, s = 60.0, 27.0, 1850.0
    # effective green = green + yellow used (2 s) - start-up lost time (2 s) = green
    lam = green / cycle
    q = x * lam * s / 3600.0  # veh/s
    movements = [
        Movement(id=m, channel=c, rate_vph=q * 3600, saturation_vph_per_lane=s)
        for m, c in (("main", 1), ("side", 2))
    ]
    model = TrafficModel(movements, seed=seed)
    run_two_phase(model, hours=6.0, cycle=cycle, green=green)
    uniform = cycle * (1 - lam) ** 2 / (2 * (1 - lam * x))
    random_ = x * x / (2 * q * (1 - x))
    webster = uniform + random_
    assert model.served > 0.95 * model.arrived
    assert model.delay_s_mean == pytest.approx(webster, rel=0.20)
    assert model.delay_s_mean > uniform  # the random term is there too


def test_queue_discharges_at_saturation_flow() -> None:
    s, lanes, lost = 1850.0, 2, 2.0
    mv = Movement(
        id="m",
        channel=1,
        lanes=lanes,
        rate_vph=5000,
        saturation_vph_per_lane=s,
        startup_lost_s=lost,
    )
    model = TrafficModel([mv], seed=3, keep_departures=True)
    cycle, green = 60.0, 20.0
    for i in range(round(1800 / DT)):
        t = i * DT
        model.step(t, DT, {1: fixed_time(t, cycle, green, 3.0, 30.0)})
    deps = model.departures("m")
    headways = [b[0] - a[0] for a, b in itertools.pairwise(deps) if b[0] - a[0] < 10]
    measured_vph = 3600 / statistics.mean(headways)
    assert measured_vph == pytest.approx(s * lanes, rel=0.02)
    # the first vehicle of each green leaves after the start-up lost time
    firsts = [d[0] for a, d in itertools.pairwise(deps) if d[0] - a[0] > 10]
    assert all(((f - 30.0) % cycle) == pytest.approx(lost, abs=DT + 1e-6) for f in firsts)
    # served per green = (green + yellow used - lost) * saturation flow
    per_green = len(deps) / (1800 / cycle)
    assert per_green == pytest.approx((green + 2.0 - lost) * s * lanes / 3600, rel=0.05)


def test_detector_occupancy_of_free_flowing_and_queued_vehicles() -> None:
    # 15 m/s; a wide approach so that vehicles hardly ever wait for the one ahead
    mv = Movement(
        id="m", channel=1, rate_vph=200, speed_kmh=54.0, lanes=3, saturation_vph_per_lane=3000
    )
    dets = [
        CabinetDetector(id=1, movement="m", position=DetectorPosition.STOP_BAR),
        CabinetDetector(id=2, movement="m", position=DetectorPosition.ADVANCE, distance_m=40),
    ]
    model = TrafficModel([mv], dets, seed=5)
    on_time = {1: 0.0, 2: 0.0}
    for i in range(round(3600 / DT)):  # always green: free flow
        t = i * DT
        model.step(t, DT, {1: S.G})
        for d in model.presence(t + DT):
            on_time[d] += DT
    per_vehicle = (4.5 + 2.0) / 15.0  # 0.43 s per vehicle
    expected = model.arrived * per_vehicle
    assert on_time[2] == pytest.approx(expected, rel=0.15)
    assert on_time[1] == pytest.approx(expected, rel=0.15)
    assert model.delay_s_mean < 0.1  # on a permanent green nobody waits
    # red: the head vehicle sits on the stop-bar loop; the queue grows back over the advance
    t0 = 3600.0
    occupied_stop = []
    for i in range(round(600 / DT)):
        t = t0 + i * DT
        model.step(t, DT, {1: S.R})
        occupied_stop.append(1 in model.presence(t + DT))
    assert all(occupied_stop[-100:])
    assert model.queue_length("m", t0 + 600) * 7.0 / 3 > 40.0  # 3 lanes
    assert 2 in model.presence(t0 + 600)


def test_longest_delay_and_the_vehicles_still_waiting() -> None:
    model = TrafficModel([Movement(id="m", channel=1, rate_vph=600)], seed=4, keep_departures=True)
    for i in range(round(60 / DT)):  # a minute of red: everybody who reaches the line waits
        model.step(i * DT, DT, {1: S.R})
    now = 60.0
    waits = model.waits("m", now)
    assert len(waits) >= 3
    assert model.longest_wait("m", now) == pytest.approx(max(waits))
    assert model.delay_s_mean == 0.0  # the served only: nobody yet
    assert model.delay_s_mean_with_waiting(now) == pytest.approx(statistics.mean(waits))
    assert model.delay_s_mean_with_waiting(now, "m") == model.delay_s_mean_with_waiting(now)
    for i in range(round(60 / DT), round(120 / DT)):  # then a minute of green
        model.step(i * DT, DT, {1: S.G})
    stats = model.stats("m")
    assert stats.delay_max_s == max(d for _, d in model.departures("m"))
    assert stats.delay_max_s >= max(waits)  # the head of the queue waited at least that long
    assert model.longest_wait("m", 120.0) == 0.0  # the green cleared the queue


def test_vehicles_left_under_flash_are_counted_apart() -> None:
    """A vehicle that leaves under flashing red (the hand-over flash of a stopped controller)
    counts as served, and as ``served_flash``: a test can tell it from the controller's
    service. Green, yellow and flashing yellow are not flash service."""
    model = TrafficModel([Movement(id="m", channel=1, rate_vph=900)], seed=6)
    for i in range(round(60 / DT)):  # a minute of green: the controller serves them
        model.step(i * DT, DT, {1: S.G})
    on_green = model.served
    assert on_green > 0 and model.served_flash == 0
    for i in range(round(60 / DT), round(90 / DT)):
        model.step(i * DT, DT, {1: S.FY})
    assert model.served_flash == 0
    for i in range(round(90 / DT), round(150 / DT)):  # then the cabinet flashes red
        model.step(i * DT, DT, {1: S.FR})
    flashed = model.stats("m").served_flash
    assert flashed > 0
    assert model.served_flash == flashed
    assert model.served == model.stats("m").served >= on_green + flashed


def test_seeded_and_reproducible() -> None:
    def run(seed: int) -> tuple[int, int, float]:
        mv = [Movement(id="a", channel=1, rate_vph=600), Movement(id="b", channel=2)]
        model = TrafficModel(mv, seed=seed)
        run_two_phase(model, hours=0.25, cycle=60.0, green=27.0)
        return model.arrived, model.served, model.delay_s_mean

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_pedestrian_buttons_at_their_rate() -> None:
    from edgectl.cabinet.profile import PedestrianButton

    model = TrafficModel([], pedestrians=[PedestrianButton(phase=4, rate_per_h=360)], seed=1)
    presses = 0
    for i in range(round(3600 / DT)):
        presses += 4 in model.step(i * DT, DT, {})
    assert presses == pytest.approx(360, rel=0.15)
