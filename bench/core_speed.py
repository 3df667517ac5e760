"""Speed of the pure core: a 24-hour simulated run of the 8-phase junction at 0.1 s ticks.

Random (Poisson) demand from the queue model ``edgectl simulate`` uses
(:mod:`edgectl.control.demand`), the full Controller (strategy → engine → software conflict
monitor) on every tick. Prints simulated seconds per wall second.

    .venv/bin/python -m bench.core_speed [--hours 24] [--mode actuated] [--engine-only]

Target (issue 2): a 24 h run well under 30 s of wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgectl.config.loader import load_config
from edgectl.config.model import Mode
from edgectl.control.controller import Controller
from edgectl.control.demand import PoissonDemand
from edgectl.control.engine import Engine
from edgectl.control.types import Outputs

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "edgectl" / "examples" / "eight_phase.toml"))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine-only", action="store_true", help="engine without monitor")
    args = parser.parse_args()

    config = load_config(args.config)
    mode = Mode(args.mode) if args.mode else None
    demand = PoissonDemand(config, seed=args.seed)
    ticks = round(args.hours * 3600 * 10)
    # pre-generate nothing: the demand model is part of a real run's cost, but timed apart
    last: Outputs | None = None
    wall_demand = 0.0
    if args.engine_only:
        engine = Engine(config)
        start = time.perf_counter()
        for tick in range(ticks):
            t0 = time.perf_counter()
            inputs = demand.inputs(tick, last)
            wall_demand += time.perf_counter() - t0
            last = engine.step(tick / 10, inputs, inputs.requests)
        label = "engine"
    else:
        controller = Controller(config, mode=mode)
        start = time.perf_counter()
        for tick in range(ticks):
            t0 = time.perf_counter()
            inputs = demand.inputs(tick, last)
            wall_demand += time.perf_counter() - t0
            last = controller.step(tick / 10, inputs)
        label = f"controller ({controller.mode.value})"
    wall = time.perf_counter() - start
    core = wall - wall_demand
    simulated = ticks / 10
    print(f"{label}: {simulated:.0f} s simulated ({ticks} ticks) in {wall:.2f} s wall")
    us_total, us_core = wall / ticks * 1e6, core / ticks * 1e6
    print(f"  total      {simulated / wall:,.0f} simulated s per wall s ({us_total:.1f} µs/tick)")
    print(
        f"  core only  {simulated / core:,.0f} simulated s per wall s ({us_core:.1f} µs/tick)"
        f"  [demand model {wall_demand:.2f} s]"
    )
    print(f"  vehicles arrived {demand.arrived}, served {demand.served}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
