"""firmware_sim: the signal-cabinet emulator for hardware-in-the-loop (SPEC §9).

Public API (pinned by ``tests/sim/test_api.py``)::

    Emulator        the cabinet served over Modbus TCP / RTU, real or virtual clock
    CabinetModel    the pure device model (registers, cabinet, traffic, faults)
    Cabinet         load switches + MMU (pure)
    TrafficModel    vehicles and pedestrians on the approaches (pure)
    FaultSpec, parse_fault, FaultKind, WireFaults
    DemandSchedule
    MmuFault

The emulator as a child process (``python -m firmware_sim``, its URL read from its first
line, stopped by PID) is :class:`firmware_sim.process.EmulatorProcess`.

The device profile format lives in :mod:`edgectl.cabinet.profile` (the daemon reads it too).
"""

from firmware_sim.api import Emulator
from firmware_sim.cabinet import Cabinet, MmuFault
from firmware_sim.faults import FaultKind, FaultSpec, WireFaults, parse_fault
from firmware_sim.model import CabinetModel, DemandSchedule
from firmware_sim.traffic import MovementStats, TrafficModel

__all__ = [
    "Cabinet",
    "CabinetModel",
    "DemandSchedule",
    "Emulator",
    "FaultKind",
    "FaultSpec",
    "MmuFault",
    "MovementStats",
    "TrafficModel",
    "WireFaults",
    "parse_fault",
]
