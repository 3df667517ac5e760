"""The MMU in flashing yellow arrow (FYA) mode, as a pure model (no server, virtual time).

The card (``[cabinet.mmu] fya``) names each left-turn arrow channel and the channels it yields
to. An arrow's FY, and the steady Y that ends it, may be shown beside those channels; towards
every other conflicting channel the FY is a right of way; an FY ends in Y. Frames made only of
flash colours stay the controller's own flash, unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from pydantic import ValidationError

from edgectl.cabinet.channels import ChannelState as S
from edgectl.cabinet.profile import CabinetWiring, MmuFaultKind, load_profile
from firmware_sim.cabinet import Cabinet
from firmware_sim.model import CabinetModel
from firmware_sim.record import summary

_PROFILE = load_profile("builtin:nema-cabinet")
assert _PROFILE.cabinet is not None
NEMA = _PROFILE.cabinet
# nema-cabinet: vehicle channels 1-8 = phases 1-8 (1, 3, 5, 7 the lefts), pedestrian channels
# 9-12 = phases 2/4/6/8. Left 1 turns across through 2 (and its crossing, 9), 5 across 6
# (11), 3 across 4 (10), 7 across 8 (12).
FYA = {1: (2, 9), 3: (4, 10), 5: (6, 11), 7: (8, 12)}
ALL_RED = dict.fromkeys(range(1, 9), S.R) | dict.fromkeys(range(9, 13), S.DW)
FLASH = dict.fromkeys(range(1, 9), S.FR) | dict.fromkeys(range(9, 13), S.OFF)


def with_fya(wiring: CabinetWiring, fya: Mapping[int, Sequence[int]]) -> CabinetWiring:
    data = wiring.model_dump()
    data["mmu"]["fya"] = {a: tuple(to) for a, to in fya.items()}
    return CabinetWiring.model_validate(data)


WIRING = with_fya(NEMA, FYA)


class Drive:
    """A controller writing one frame (and a changed heartbeat) every 0.1 s."""

    def __init__(self, wiring: CabinetWiring = WIRING) -> None:
        self.cab = Cabinet(wiring)
        self.t = 0.0
        self.hb = 0

    def hold(self, frame: dict[int, S], seconds: float, *, rewrite: bool = True) -> None:
        """Show ``frame`` for ``seconds``; ``rewrite=False``: written once, then only the
        heartbeat changes (a controller that writes a frame per change)."""
        for i in range(round(seconds / 0.1)):
            self.hb += 1
            self.cab.heartbeat(self.t, self.hb)
            if rewrite or i == 0:
                self.cab.frame(self.t, frame)
            self.t = round(self.t + 0.1, 6)
            self.cab.step(self.t)

    def take_over(self) -> None:
        self.hold(ALL_RED, 0.5)
        assert self.cab.in_control


def main_street(**states: S) -> dict[int, S]:
    out = dict(ALL_RED)
    out.update({int(k.removeprefix("c")): v for k, v in states.items()})
    return out


def fya_cycle(d: Drive) -> None:
    """Two cycles of a NEMA dual ring with protected / permissive lefts: leading protected
    lefts, arrows flashing with the opposing through and ending with its yellow (as edgectl's
    engine runs them), and a lagging left going from its arrow to its green arrow."""
    for _ in range(2):
        # leading protected lefts 1 + 5, then the main street with both arrows flashing
        d.hold(main_street(c1=S.G, c5=S.G), 6.0)
        d.hold(main_street(c1=S.Y, c5=S.Y), 3.5)
        d.hold(ALL_RED, 1.5)
        d.hold(main_street(c2=S.G, c6=S.G, c9=S.W, c11=S.W, c1=S.FY, c5=S.FY), 7.0)
        d.hold(main_street(c2=S.G, c6=S.G, c9=S.FDW, c11=S.FDW, c1=S.FY, c5=S.FY), 19.0)
        d.hold(main_street(c2=S.G, c6=S.G, c1=S.FY, c5=S.FY), 5.0)
        # the arrows end with the opposing yellow
        d.hold(main_street(c2=S.Y, c6=S.Y, c1=S.Y, c5=S.Y), 4.0)
        d.hold(ALL_RED, 2.0)
        # side street: arrows 3 + 7 flash with 4 + 8 and their pedestrians, no protected left
        d.hold(main_street(c4=S.G, c8=S.G, c10=S.W, c12=S.W, c3=S.FY, c7=S.FY), 7.0)
        d.hold(main_street(c4=S.G, c8=S.G, c3=S.FY, c7=S.FY), 10.0)
        d.hold(main_street(c4=S.Y, c8=S.Y, c3=S.Y, c7=S.Y), 4.0)
        d.hold(ALL_RED, 2.0)
        # a lagging protected left: 7 goes from its arrow straight to its green arrow
        d.hold(main_street(c4=S.G, c8=S.G, c3=S.FY, c7=S.FY), 10.0)
        d.hold(main_street(c4=S.G, c3=S.FY, c8=S.Y, c7=S.FY), 4.0)
        d.hold(main_street(c4=S.G, c3=S.FY, c7=S.FY), 2.0)
        d.hold(main_street(c4=S.G, c3=S.FY, c7=S.G), 8.0)
        d.hold(main_street(c4=S.Y, c3=S.Y, c7=S.Y), 4.0)
        d.hold(ALL_RED, 2.0)


def test_a_legal_fya_sequence_never_trips() -> None:
    d = Drive()
    d.take_over()
    fya_cycle(d)
    assert d.cab.faults == []
    assert d.cab.in_control
    shown = [(c, s) for _, c, s in d.cab.changes]
    assert (1, S.FY) in shown and (3, S.FY) in shown and (7, S.G) in shown


def test_the_card_is_what_allows_it() -> None:
    """Without the fya card the same sequence is a conflict: FY is a right of way."""
    d = Drive(NEMA)
    d.take_over()
    fya_cycle(d)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT
    assert d.cab.latched.channels == {1, 2, 5, 6, 9, 11}


def test_an_fya_frame_is_checked_as_a_normal_frame() -> None:
    """{arrow FY, opposing G, all else R} is not the controller's flash: its transitions
    are checked (here: the opposing green going straight to red)."""
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    assert not d.cab.tripped
    d.hold(main_street(c1=S.FY), 0.1)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.NO_YELLOW
    assert d.cab.latched.channels == {2}


@pytest.mark.parametrize(
    ("frame", "channels"),
    [
        (main_street(c1=S.FY, c4=S.G), {1, 4}),  # a side-street green
        (main_street(c1=S.FY, c2=S.G, c10=S.W), {1, 2, 10}),  # a crossing it does not yield to
        (main_street(c1=S.FY, c4=S.Y), {1, 4}),  # a yellow is a right of way too
        (main_street(c3=S.FY, c6=S.G), {3, 6}),  # the main street, to a side-street arrow
        (main_street(c5=S.FY, c8=S.G, c12=S.W), {5, 8, 12}),  # another arrow's opposing
    ],
)
def test_fy_beside_a_conflicting_green_it_does_not_yield_to_trips_after_conflict_s(
    frame: dict[int, S], channels: set[int]
) -> None:
    d = Drive()
    d.take_over()
    d.hold(frame, 0.3)  # conflicting for 0.3 s: tolerated
    assert not d.cab.tripped
    d.hold(frame, 0.1)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT
    assert d.cab.latched.channels == channels
    assert all(s in (S.FR, S.FY) for s in d.cab.shown.values())  # the cabinet flashes


def test_a_frame_held_without_rewrites_trips_too() -> None:
    """The conflict timer runs between frames (a controller writing one frame per change)."""
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G, c8=S.G), 1.0, rewrite=False)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT
    assert d.cab.latched.channels == {1, 2, 8}


@pytest.mark.parametrize(
    "frame",
    [
        main_street(c1=S.G, c2=S.G),  # the arrow's protected green beside the opposing one
        main_street(c1=S.Y, c2=S.G),  # its protected yellow (after a green, not an arrow)
    ],
)
def test_the_arrow_s_own_green_and_yellow_still_conflict_with_the_opposing_through(
    frame: dict[int, S],
) -> None:
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.G), 5.0)
    d.hold(frame, 0.5)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT
    assert d.cab.latched.channels == {1, 2}


def test_the_yellow_ending_an_arrow_may_not_outlive_its_fy() -> None:
    """After the arrow's ending yellow and a red, a new yellow on the arrow is protected."""
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    d.hold(main_street(c1=S.Y, c2=S.Y), 4.0)
    assert not d.cab.tripped
    d.hold(ALL_RED, 2.0)
    d.hold(main_street(c1=S.G), 5.0)
    d.hold(main_street(c1=S.Y, c2=S.G), 0.5)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.CONFLICT


@pytest.mark.parametrize("end", [S.R, S.OFF])
def test_an_arrow_must_end_in_yellow(end: S) -> None:
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    d.hold(main_street(c1=S.FY, c2=S.Y), 4.0)
    assert not d.cab.tripped
    d.hold(main_street(c1=end), 0.1)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.NO_YELLOW
    assert d.cab.latched.channels == {1}


def test_the_yellow_ending_an_arrow_is_timed() -> None:
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    d.hold(main_street(c1=S.Y, c2=S.Y), 2.6)
    d.hold(ALL_RED, 0.1)
    assert d.cab.latched is not None
    assert d.cab.latched.kind == MmuFaultKind.SHORT_YELLOW
    assert d.cab.latched.channels == {1, 2}


def test_fy_on_a_channel_that_is_no_arrow_is_a_right_of_way() -> None:
    d = Drive(with_fya(NEMA, {1: (2, 9)}))
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    d.hold(main_street(c1=S.Y, c2=S.Y), 4.0)
    d.hold(ALL_RED, 2.0)
    assert not d.cab.tripped
    d.hold(main_street(c3=S.FY, c4=S.G), 0.5)  # 3 is no arrow on this card
    assert d.cab.latched is not None
    assert d.cab.latched.channels == {3, 4}


@pytest.mark.parametrize("rewrite", [True, False])
def test_flash_frames_are_still_not_checked(rewrite: bool) -> None:
    """The controller's own flash (every channel FR/FY/OFF/DW), yellow on conflicting
    channels included, is shown unchecked however long it lasts and whether or not it is
    rewritten; leaving it for all-red, FY → R included, is no missing yellow."""
    d = Drive()
    d.take_over()
    d.hold(main_street(c1=S.FY, c2=S.G), 5.0)
    flash = FLASH | {1: S.FY, 2: S.FY, 4: S.FY, 6: S.FY}
    d.hold(flash, 3.0, rewrite=rewrite)  # a flash transfer straight from G and an arrow
    assert not d.cab.tripped
    assert d.cab.shown == flash
    d.hold(ALL_RED, 2.0)
    d.hold(main_street(c1=S.FY, c2=S.G), 2.0)
    assert d.cab.faults == []
    assert d.cab.in_control


@pytest.mark.parametrize(
    ("fya", "why"),
    [
        ({13: (2,)}, "unknown arrow channel 13"),
        ({9: (2,)}, "not a vehicle channel"),  # a pedestrian channel shows no arrow
        ({1: ()}, "yields to no channel"),
        ({1: (2, 13)}, "unknown channel 13"),
        ({1: (1,)}, "yields to itself"),
    ],
)
def test_the_card_is_validated(fya: dict[int, tuple[int, ...]], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        with_fya(NEMA, fya)


def test_the_summary_lists_the_arrows() -> None:
    profile = _PROFILE.model_copy(update={"cabinet": WIRING})
    data = summary(CabinetModel(profile))
    assert data["fya"] == {"1": [2, 9], "3": [4, 10], "5": [6, 11], "7": [8, 12]}
    assert [1, 2] in data["conflicts"]  # the card still forbids 1 and 2 non-red together
    assert summary(CabinetModel(_PROFILE))["fya"] == {}
