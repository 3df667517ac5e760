"""Hardware-in-the-loop: protected / permissive lefts (flashing yellow arrows) against
``firmware-sim`` over real Modbus TCP on loopback.

The daemon runs ``edgectl/examples/eight_phase.toml`` in actuated mode with its four left-turn
channels as flashing yellow arrows (``permissive`` = the opposing through), built exactly as
``edgectl run`` builds it (:func:`edgectl.testing.service.run_mode`). The emulator is a real
process with the ``nema-cabinet`` profile whose MMU is in FYA mode (``[cabinet.mmu] fya``: each
left → the opposing through and its crossing). Everything asserted comes from the emulator: its
record of what the load switches showed and its summary.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from edgectl.cabinet.channels import ChannelState
from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode
from edgectl.config.validation import validate_config
from edgectl.testing.hil import read_record
from edgectl.testing.service import ModeRun, run_mode

from .support import (
    EIGHT_PHASE,
    FYA_CARD,
    FYA_LEFTS,
    fya_profile,
    greens_per_channel,
    with_arrows,
)

pytestmark = pytest.mark.hil

DURATION_S = 75.0  # emulator time: start-up flash 5 s + all-red 2 s, then ~68 s of service
STARTUP_S = 7.0
# Every approach has traffic (the main street the most), so both barrier groups are served
# within the window: the arrows of 1/5 flash with 2/6, those of 3/7 with 4/8.
DEMAND = "time_s,p1,p2,p3,p4,p5,p6,p7,p8\n0,150,450,150,250,150,450,150,250\n"
SEED = 68  # every movement's first vehicle arrives within 13 s
FY, G, Y = ChannelState.FY.name, ChannelState.G.name, ChannelState.Y.name

Frames = list[tuple[float, dict[int, str]]]


@pytest.fixture(scope="module")
def arrows() -> DaemonConfig:
    config = with_arrows(load_config(EIGHT_PHASE))
    errors = [p for p in validate_config(config) if p.severity == "error"]
    assert errors == [], errors  # the arrows are valid where they are (warnings: as without)
    return config


@pytest.fixture(scope="module")
def fya_run(tmp_path_factory: pytest.TempPathFactory, arrows: DaemonConfig) -> ModeRun:
    """One session for every test of this module (about 80 s of wall time)."""
    workdir = tmp_path_factory.mktemp("fya-hil")
    demand = workdir / "demand.csv"
    demand.write_text(DEMAND, encoding="utf-8")
    return asyncio.run(
        run_mode(
            arrows,
            Mode.ACTUATED,
            workdir=workdir,
            duration_s=DURATION_S,
            seed=SEED,
            demand=demand,
            profile=str(fya_profile(workdir)),
        )
    )


def _frames(record: Path) -> Frames:
    """What every channel showed after each instant of the record (rows of one instant form
    one frame)."""
    shown: dict[int, str] = {}
    out: Frames = []
    for t, rows in itertools.groupby(read_record(record), key=lambda r: r[0]):
        shown.update({ch: st for _, ch, st in rows})
        out.append((t, dict(shown)))
    return out


def _record(run: ModeRun) -> Path:
    return run.workdir / f"sim-{run.mode.value}-{run.seed}-record.csv"


def test_the_mmu_in_fya_mode_never_tripped(fya_run: ModeRun) -> None:
    run = fya_run
    assert run.duration_s >= DURATION_S - 1.0
    assert run.summary["fya"] == {str(a): to for a, to in FYA_CARD.items()}
    assert run.summary["mmu"]["tripped"] is False, run.summary["mmu"]
    assert run.summary["mmu"]["faults"] == []
    # the whole window in normal operation after start-up: no flash since
    assert run.service.t_first_normal is not None
    assert run.service.left_normal == []


def test_the_arrows_flashed_with_the_opposing_green(fya_run: ModeRun) -> None:
    """Every left flashed its arrow, only ever while its opposing through was green (or, for
    the instant the through's green ends, with its yellow, which ends the arrow too)."""
    frames = _frames(_record(fya_run))
    flashed = dict.fromkeys(FYA_LEFTS, 0.0)
    for (t, shown), (t_next, _) in itertools.pairwise(frames):
        for ch, opposing in FYA_LEFTS.items():
            if shown[ch] == FY:
                assert shown[opposing] == G, f"t={t}: arrow {ch} FY with {opposing} {shown}"
                flashed[ch] += t_next - t
    for ch, seconds in flashed.items():
        assert seconds >= 5.0, f"arrow {ch} flashed {seconds:.1f} s in the window: {flashed}"


def test_every_arrow_ended_with_the_opposing_yellow(fya_run: ModeRun) -> None:
    frames = _frames(_record(fya_run))
    ends = 0
    for (_, before), (t, after) in itertools.pairwise(frames):
        for ch, opposing in FYA_LEFTS.items():
            if before[ch] == FY and after[ch] != FY:
                assert after[ch] == Y and after[opposing] == Y, f"t={t}: {before} → {after}"
                ends += 1
    assert ends >= len(FYA_LEFTS)


def test_the_independent_checker_finds_nothing(fya_run: ModeRun) -> None:
    """No conflict (an arrow only beside what it yields to), no arrow without an opposing
    green, every arrow ended in a yellow ≥ the plan's, every red clearance kept; and no green
    cut below its minimum."""
    run = fya_run
    assert run.record_findings == [], "\n".join(map(str, run.record_findings[:20]))
    assert run.phase_findings == [], "\n".join(map(str, run.phase_findings[:20]))


def test_left_turners_were_served(fya_run: ModeRun) -> None:
    """Every left's vehicles were served, a left that never had its protected green in the
    window by its arrow alone (under FY the emulator's vehicles proceed)."""
    greens = greens_per_channel(read_record(_record(fya_run)), after=STARTUP_S)
    for ch in FYA_LEFTS:
        mv = fya_run.summary["movements"][f"p{ch}"]
        assert mv["arrived"] >= 1, f"p{ch}: the seeded demand brought nobody (test premise)"
        how = "by its arrow alone" if greens.get(ch, 0) == 0 else "in the window"
        assert mv["served"] >= 1, f"p{ch}: {mv['arrived']} arrived, none served {how}"
