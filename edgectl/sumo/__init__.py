"""Software-in-the-loop bench: the daemon's controller against Eclipse SUMO (SPEC §10).

Needs the ``sumo`` extra (eclipse-sumo, libsumo); libsumo is imported only when a run starts,
so importing this package is cheap and the daemon never pays for it.

Public API::

    run_bench(cfg, controller, *, seed=None, sumo_args=()) -> BenchResult
    derive_network(net_path) -> dict[tls_id, JunctionModel]
    JunctionModel.to_config(mode) -> edgectl.config.model.Config
"""

from edgectl.sumo._env import SumoUnavailable, sumo_home
from edgectl.sumo.controls import CONTROLLERS
from edgectl.sumo.model import JunctionModel, Loop, SignalGroup, Stage
from edgectl.sumo.network import derive_network
from edgectl.sumo.result import BenchError, BenchResult
from edgectl.sumo.runner import run_bench

__all__ = [
    "CONTROLLERS",
    "BenchError",
    "BenchResult",
    "JunctionModel",
    "Loop",
    "SignalGroup",
    "Stage",
    "SumoUnavailable",
    "derive_network",
    "run_bench",
    "sumo_home",
]
