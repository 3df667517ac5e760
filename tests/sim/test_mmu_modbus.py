"""The MMU as a client sees it, over real TCP and the real pty: takeover, every fault kind,
no latch on a valid sequence, reset."""

from __future__ import annotations

from edgectl.cabinet.channels import ChannelState as S
from edgectl.cabinet.registers import MMU_RESET_MAGIC

from .conftest import Cabinet

# nema-cabinet: vehicle channels 1-8 = phases 1-8, pedestrian channels 9-12 = phases 2/4/6/8
ALL_RED = dict.fromkeys(range(1, 9), S.R) | dict.fromkeys(range(9, 13), S.DW)
STATUS_TRIPPED, STATUS_FLASH, STATUS_IN_CONTROL = 1, 2, 4


class Driver:
    """A minimal controller: one FC16 frame per 0.1 s of virtual time, heartbeat changing."""

    def __init__(self, cab: Cabinet) -> None:
        self.cab = cab
        self.hb = 0

    async def hold(self, states: dict[int, S], seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            self.hb = (self.hb + 1) & 0xFFFF
            await self.cab.frame({c: int(s) for c, s in states.items()}, self.hb)
            await self.cab.emu.advance(0.1)

    async def take_over(self) -> None:
        await self.hold(ALL_RED, 1.0)
        regs = await self.cab.read_inputs()
        assert regs[0] == STATUS_IN_CONTROL


def with_(states: dict[int, S], **changes: S) -> dict[int, S]:
    out = dict(states)
    for name, state in changes.items():
        out[int(name.removeprefix("c"))] = state
    return out


async def fault(cab: Cabinet) -> tuple[int, int, set[int]]:
    regs = await cab.read_inputs()
    bitmap = regs[2] | regs[3] << 16
    return regs[0], regs[1], {c for c in range(1, 33) if bitmap >> (c - 1) & 1}


async def test_startup_flash_until_takeover(cabinet: Cabinet) -> None:
    regs = await cabinet.read_inputs()
    assert regs[0] == STATUS_FLASH
    assert regs[10:22] == [S.FR] * 12
    assert regs[109] == 1  # profile_version
    # a non-all-red frame does not take over; the load switches ignore it
    await cabinet.frame({2: S.G, 6: S.G}, heartbeat=1)
    assert (await cabinet.read_inputs())[10:22] == [S.FR] * 12
    await cabinet.frame({}, heartbeat=2)  # all R (pedestrian channels R count as red)
    regs = await cabinet.read_inputs()
    assert regs[0] == STATUS_IN_CONTROL
    assert regs[4] == 2  # heartbeat_echo
    assert regs[10:22] == [S.R] * 12


async def test_valid_cycle_does_not_latch(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    for main, ped_main, side, ped_side in ((2, 9, 4, 10), (4, 10, 2, 9)):
        other = main + 4
        ped_other = ped_main + 2
        green = with_(ALL_RED, **{f"c{main}": S.G, f"c{other}": S.G})
        await d.hold(with_(green, **{f"c{ped_main}": S.W, f"c{ped_other}": S.W}), 7.0)
        await d.hold(with_(green, **{f"c{ped_main}": S.FDW, f"c{ped_other}": S.FDW}), 5.0)
        await d.hold(green, 2.0)
        await d.hold(with_(ALL_RED, **{f"c{main}": S.Y, f"c{other}": S.Y}), 3.0)
        await d.hold(ALL_RED, 1.5)
        assert side
        assert ped_side
    # protected lefts 1+5 then 1+2 (lagging through) within the same barrier
    await d.hold(with_(ALL_RED, c1=S.G, c5=S.G), 5.0)
    await d.hold(with_(ALL_RED, c1=S.Y, c5=S.G), 3.0)
    await d.hold(with_(ALL_RED, c1=S.R, c5=S.G, c2=S.G), 5.0)
    # the controller's own flash (a flash transfer G -> FR is allowed) and back via all-red
    await d.hold(dict.fromkeys(range(1, 13), S.FR), 2.0)
    await d.hold(ALL_RED, 2.0)
    status, kind, _ = await fault(cabinet)
    assert (status, kind) == (STATUS_IN_CONTROL, 0)
    assert cabinet.emu.model.cabinet.faults == []


async def test_conflict_latches_after_300_ms(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    # a ped walk conflicting with a green for 0.2 s is tolerated ...
    await d.hold(with_(ALL_RED, c2=S.G, c10=S.W), 0.2)
    await d.hold(with_(ALL_RED, c2=S.G), 0.5)
    assert (await fault(cabinet))[:2] == (STATUS_IN_CONTROL, 0)
    # ... 0.4 s is not
    await d.hold(with_(ALL_RED, c2=S.G, c4=S.G), 0.5)
    status, kind, channels = await fault(cabinet)
    assert status == STATUS_TRIPPED | STATUS_FLASH
    assert kind == 1
    assert channels == {2, 4}
    assert (await cabinet.read_inputs())[10:22] == [S.FR] * 12


async def test_short_yellow_latches(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    await d.hold(with_(ALL_RED, c2=S.G), 5.0)
    await d.hold(with_(ALL_RED, c2=S.Y), 2.0)
    await d.hold(ALL_RED, 0.2)
    assert await fault(cabinet) == (STATUS_TRIPPED | STATUS_FLASH, 2, {2})


async def test_green_to_red_latches(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    await d.hold(with_(ALL_RED, c6=S.G), 5.0)
    await d.hold(ALL_RED, 0.2)
    assert await fault(cabinet) == (STATUS_TRIPPED | STATUS_FLASH, 3, {6})


async def test_watchdog_latches_and_reset_clears(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    await cabinet.emu.advance(0.9)
    assert (await fault(cabinet))[1] == 0
    await cabinet.emu.advance(0.3)
    assert await fault(cabinet) == (STATUS_TRIPPED | STATUS_FLASH, 4, set())
    # frames do not clear a latch; a wrong reset value is refused; the magic value resets
    await d.hold(ALL_RED, 0.3)
    assert (await fault(cabinet))[1] == 4
    refused = await cabinet.write(33, [1])
    assert refused.isError()
    assert refused.exception_code == 3
    ok = await cabinet.write(33, [MMU_RESET_MAGIC])
    assert not ok.isError()
    assert await fault(cabinet) == (STATUS_FLASH, 0, set())
    await d.take_over()
    assert [f.kind.name for f in cabinet.emu.model.cabinet.faults] == ["WATCHDOG"]


async def test_invalid_state_for_channel_kind_latches(cabinet: Cabinet) -> None:
    d = Driver(cabinet)
    await d.take_over()
    await d.hold(with_(ALL_RED, c9=S.G), 0.1)
    assert await fault(cabinet) == (STATUS_TRIPPED | STATUS_FLASH, 6, {9})
