"""Helpers of the hardware-in-the-loop tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.profile import load_profile
from edgectl.config.model import DaemonConfig
from edgectl.testing.checker import Finding, channel_minimums, check_record

ROOT = Path(__file__).resolve().parents[2]
EIGHT_PHASE = ROOT / "edgectl" / "examples" / "eight_phase.toml"
# The daemon holds its clock when a frame reaches the cabinet later than the link's usual
# latency + 20 ms (edgectl.daemon.supervisor.DeliveryClock), so an interval shown can be
# shorter than the engine's count of ticks by at most that threshold plus scheduling noise:
# 30 ms in all.
RECORD_JITTER_S = 0.03
# Protected / permissive lefts of edgectl/examples/eight_phase.toml: left channel → the phase whose
# traffic it yields to (the opposing through), and the nema-cabinet MMU's FYA card to match
# (the opposing through's channel and its pedestrian channel).
FYA_LEFTS = {1: 2, 3: 4, 5: 6, 7: 8}
FYA_CARD = {1: [2, 9], 3: [4, 10], 5: [6, 11], 7: [8, 12]}


def with_arrows(config: DaemonConfig) -> DaemonConfig:
    """``config`` with its left-turn channels shown as flashing yellow arrows."""
    channels = tuple(
        c.model_copy(update={"permissive": FYA_LEFTS[c.id]}) if c.id in FYA_LEFTS else c
        for c in config.channels
    )
    return config.model_copy(update={"channels": channels})


def fya_profile(workdir: Path) -> Path:
    """The builtin nema-cabinet profile with the MMU in FYA mode (``[cabinet.mmu] fya``)."""
    text = (
        resources.files("edgectl.cabinet")
        .joinpath("profiles", "nema-cabinet.toml")
        .read_text(encoding="utf-8")
    )
    card = ", ".join(f"{a} = {to}" for a, to in FYA_CARD.items())
    assert text.count("\n[cabinet.mmu]\n") == 1
    path = workdir / "nema-cabinet-fya.toml"
    path.write_text(
        text.replace("\n[cabinet.mmu]\n", f"\n[cabinet.mmu]\nfya = {{ {card} }}\n"),
        encoding="utf-8",
    )
    wiring = load_profile(path).cabinet
    assert wiring is not None
    assert {a: list(to) for a, to in wiring.mmu.fya.items()} == FYA_CARD
    return path


def record_findings(
    config: DaemonConfig, record: Path, conflicts: list[list[int]]
) -> list[Finding]:
    plan = config.plan(config.control.plan)
    mins = channel_minimums(config, plan)
    return check_record(
        record,
        [(a, b) for a, b in conflicts],
        mins.yellow,
        mins.red_clear,
        mins.ped_clear,
        tolerance=RECORD_JITTER_S,
    )


def greens_per_channel(rows: list[tuple[float, int, str]], after: float = 0.0) -> dict[int, int]:
    """How often each channel turned green (or walk) after ``after`` seconds."""
    counts: dict[int, int] = {}
    for t, ch, state in rows:
        if t >= after and state in (ChannelState.G.name, ChannelState.W.name):
            counts[ch] = counts.get(ch, 0) + 1
    return counts
