"""The green wave's ETAs and command load, on synthetic noisy trips (no junction, no SUMO).

A vehicle drives a corridor of stop lines: it cruises at ``--speed`` with slow speed
variation, waits ``--stop-s`` in a queue once before the third stop line, and its GPS fix
(every second) has noise on position and speed. :class:`edgectl.centre.route.GreenWave` runs
on the fixes; each send's predicted arrival is compared with the true arrival at that stop
line. Printed: commands per junction and trip (sends, updates, cancels) and, every second,
the error of the arrival each junction holds (held ETA − true arrival), by how far the vehicle
truly is from the stop line. A positive error is the dangerous one: the vehicle arrives that
much before the junction expects it, so more than ``flush`` (8 s) ahead of it means the queue
may not have flushed. The junctions start clearing about ``lead`` (33 s on eight_phase)
before the ETA: the 20–40 s band is the one that matters.

    .venv/bin/python -m bench.green_wave [--seeds 20] [--free-flow] [--resend 2]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections import defaultdict

from edgectl.centre.route import Cancel, GreenWave, Route, RouteStop, Send

STOPS_M = (400.0, 800.0, 1300.0, 1700.0, 2200.0, 2600.0)
BANDS = {"0-20 s": (0.0, 20.0), "20-40 s": (20.0, 40.0), "40+ s": (40.0, math.inf)}
FLUSH_S = 8.0


def trip(
    seed: int, speed: float, stop_s: float, pos_noise: float, speed_noise: float
) -> tuple[list[tuple[float, float, float]], dict[int, float]]:
    """GPS fixes ``(t, position, speed)`` a second apart and the true arrival at each stop."""
    rng = random.Random(seed)
    dt = 0.1
    t, x, v = 0.0, 0.0, speed
    stop_at = STOPS_M[2] - 60.0  # the queue before the third stop line
    waited = 0.0
    fixes: list[tuple[float, float, float]] = []
    arrivals: dict[int, float] = {}
    next_fix = 0.0
    while x < STOPS_M[-1] + 50.0:
        if x >= stop_at and waited < stop_s:
            v = max(0.0, v - 4.0 * dt)  # brake into the queue, wait, then go on
            if v == 0.0:
                waited += dt
        else:
            target = speed * (1.0 + 0.15 * math.sin(t / 17.0 + seed))
            v += max(-3.0 * dt, min(2.0 * dt, target - v))
        x_new = x + v * dt
        for i, s in enumerate(STOPS_M):
            if x < s <= x_new:
                arrivals[i] = t + (s - x) / max(v, 1e-6) * 1.0
        x, t = x_new, t + dt
        if t >= next_fix:
            fixes.append(
                (t, x + rng.gauss(0.0, pos_noise), max(0.0, v + rng.gauss(0.0, speed_noise)))
            )
            next_fix += 1.0
    return fixes, arrivals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--speed", type=float, default=14.0)
    parser.add_argument("--stop-s", type=float, default=20.0)
    parser.add_argument("--pos-noise", type=float, default=3.0)
    parser.add_argument("--speed-noise", type=float, default=1.0)
    parser.add_argument("--resend", type=float, default=2.0)
    parser.add_argument("--horizon", type=float, default=120.0)
    parser.add_argument("--free-flow", action="store_true")
    args = parser.parse_args()

    route = Route("bench", tuple(RouteStop(f"j{i + 1}", (2, 6), s) for i, s in enumerate(STOPS_M)))
    counts: dict[str, list[int]] = defaultdict(list)
    errors: dict[str, list[float]] = defaultdict(list)
    for seed in range(1, args.seeds + 1):
        fixes, arrivals = trip(seed, args.speed, args.stop_s, args.pos_noise, args.speed_noise)
        wave = GreenWave(
            route,
            resend_s=args.resend,
            horizon_s=args.horizon,
            free_flow_mps=args.speed if args.free_flow else None,
        )
        seen: set[str] = set()
        per: dict[str, int] = defaultdict(int)
        for t, x, v in fixes:
            for item in wave.update(t, x, v):
                if isinstance(item, Cancel):
                    per["cancels"] += 1
                    continue
                assert isinstance(item, Send)
                per["updates" if item.request in seen else "sends"] += 1
                seen.add(item.request)
            for request in wave.held:
                index = wave.request_ids.index(request)
                held_arrival = wave.held_arrival(request)
                to_go = arrivals[index] - t
                if to_go < 0:
                    continue
                band = next(b for b, (lo, hi) in BANDS.items() if lo <= to_go < hi)
                errors[band].append(held_arrival - arrivals[index])
        wave.finish()
        for key in ("sends", "updates", "cancels"):
            counts[key].append(per[key])
    n = len(STOPS_M)
    result: dict[str, object] = {
        "seeds": args.seeds,
        "options": {k: v for k, v in vars(args).items() if k != "seeds"},
        "per_junction": {k: round(sum(v) / (len(v) * n), 2) for k, v in counts.items()},
        "eta_error_s": {
            band: {
                "n": len(e),
                "median": round(statistics.median(e), 1),
                "p10": round(sorted(e)[len(e) // 10], 1),
                "p90": round(sorted(e)[(9 * len(e)) // 10], 1),
                "max": round(max(e), 1),
                "over_flush": round(sum(x > FLUSH_S for x in e) / len(e), 3),
            }
            for band, e in sorted(errors.items())
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
