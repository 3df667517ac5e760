"""``cabinet-v1`` as a v2 profile is the same on the wire as the v1 encoder (registers.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldcheck import load_field_profile
from edgectl.cabinet.fieldcodec import decode_inputs as decode_v2
from edgectl.cabinet.fieldcodec import encode_inputs as encode_v2
from edgectl.cabinet.fieldcodec import encode_outputs
from edgectl.cabinet.fieldmap import ObjectType
from edgectl.cabinet.planner import FieldPlan, ReadRequest, WriteRequest
from edgectl.cabinet.profile import load_profile
from edgectl.cabinet.registers import (
    MMU_RESET_MAGIC,
    CabinetMap,
    CabinetSnapshot,
    decode_inputs,
    encode_frame,
    encode_inputs,
)

from .test_planner import snapshots

PLAN = FieldPlan(load_field_profile("builtin:cabinet-v1"))
CMAP = CabinetMap.from_profile(load_profile("builtin:nema-cabinet"))
IR = ObjectType.INPUT_REGISTER
HR = ObjectType.HOLDING_REGISTER


def test_one_read_of_the_whole_input_block() -> None:
    span = CMAP.input_span
    assert PLAN.reads == (ReadRequest("cabinet", IR, span.address, span.count),)
    assert PLAN.reads[0].function == 4


@settings(max_examples=300, deadline=None)
@given(
    frame=st.dictionaries(st.integers(1, 32), st.sampled_from(list(ChannelState)), max_size=32),
    heartbeat=st.integers(0, 0xFFFF),
    previous=st.none() | st.integers(0, 0xFFFF),
)
def test_one_fc16_frame_write_per_tick(
    frame: dict[int, ChannelState], heartbeat: int, previous: int | None
) -> None:
    """What CabinetDevice.submit + _write_frame send: the 32 channel codes and the
    heartbeat, one FC16 at register 0 — every tick, changed or not."""
    image = encode_outputs(PLAN, frame, heartbeat)
    before = None if previous is None else encode_outputs(PLAN, frame, previous)
    old = [*encode_frame(frame, CMAP.channel_outputs.count), heartbeat]
    assert CMAP.frame_contiguous
    assert PLAN.writes(image, before) == [
        WriteRequest("cabinet", HR, CMAP.channel_outputs.address, tuple(old))
    ]
    assert PLAN.writes(image, before)[0].function == 16


def test_mmu_reset_is_the_magic_value() -> None:
    assert PLAN.reset_writes() == [
        WriteRequest("cabinet", HR, CMAP.mmu_reset.address, (MMU_RESET_MAGIC,))
    ]
    assert PLAN.reset_writes()[0].function == 16


@settings(max_examples=300, deadline=None)
@given(snap=snapshots(32, 64, 64))
def test_served_input_block_is_byte_identical(snap: CabinetSnapshot) -> None:
    old = encode_inputs(snap, CMAP)
    new = encode_v2(PLAN, snap)[("cabinet", IR)]
    assert sorted(new) == list(range(len(old)))
    assert [new[a] for a in range(len(old))] == old
    # and either decoder reads either image the same
    image = {("cabinet", IR): dict(enumerate(old))}
    assert decode_v2(PLAN, image, snap.t) == decode_inputs(old, CMAP, snap.t) == snap
