"""Ground truth: the channel-change record (``--record``) and the summary (``--summary``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from firmware_sim.model import CabinetModel

__all__ = ["Recorder", "summary", "write_summary"]


class Recorder:
    """CSV ``time_s,channel,state``: one row per change of what the load switches show.

    The state is the letter name (R, Y, G, DW, FDW, W, FR, FY, OFF); the state of every
    channel at t=0 is the first rows.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = path.open("w", encoding="utf-8", newline="")
        self._fh.write("time_s,channel,state\n")
        self.rows = 0

    def drain(self, model: CabinetModel) -> None:
        """Write the changes the cabinet accumulated since the last call."""
        changes = model.cabinet.changes
        if self._fh is None or not changes:
            changes.clear()
            return
        for t, channel, state in changes:
            self._fh.write(f"{t:.3f},{channel},{state.name}\n")
        self.rows += len(changes)
        changes.clear()
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def summary(model: CabinetModel) -> dict[str, Any]:
    """The JSON summary of SPEC §9 (plus per-movement figures and counters)."""
    wiring = model.wiring
    cab = model.cabinet
    traffic = model.traffic
    movements: dict[str, Any] = {}
    for m in wiring.movements:
        stats = traffic.stats(m.id)
        movements[m.id] = {
            "channel": m.channel,
            "arrived": stats.arrived,
            "served": stats.served,
            "served_flash": stats.served_flash,
            "in_queue": traffic.on_approach(m.id),
            "delay_s_mean": round(stats.delay_s_mean, 3),
            "delay_s_max": round(stats.delay_max_s, 3),
            "delay_s_mean_with_waiting": round(
                traffic.delay_s_mean_with_waiting(model.now, m.id), 3
            ),
            "waiting_s_max": round(traffic.longest_wait(m.id, model.now), 3),
        }
    return {
        "profile": model.profile.name,
        "seed": model.seed,
        "duration_s": round(model.now, 3),
        "channels": {str(c.id): {"kind": c.kind.value, "phase": c.phase} for c in wiring.channels},
        "conflicts": [list(p) for p in wiring.conflicts()],
        "fya": {str(a): sorted(to) for a, to in sorted(wiring.mmu.fya.items())},
        "mmu": {
            "tripped": bool(cab.faults),
            "latched": cab.tripped,
            "faults": [
                {"t": round(f.t, 3), "kind": f.kind.name.lower(), "channels": sorted(f.channels)}
                for f in cab.faults
            ],
        },
        "vehicles": {
            "arrived": traffic.arrived,
            "served": traffic.served,
            "served_flash": traffic.served_flash,
            "in_queue": sum(traffic.on_approach(m) for m in traffic.movement_ids),
        },
        "delay_s_mean": round(traffic.delay_s_mean, 3),
        "delay_s_mean_with_waiting": round(traffic.delay_s_mean_with_waiting(model.now), 3),
        "movements": movements,
        "frames_received": cab.frames_received,
        "heartbeats": cab.heartbeats,
        "power_cycles": model.power_cycles,
        "faults_injected": list(model.faults_injected),
    }


def write_summary(data: dict[str, Any], path: Path) -> None:
    """Write the summary atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
