"""The request planner and the codec of v2 profiles, as properties over random inputs."""

from __future__ import annotations

import itertools
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from edgectl.cabinet.channels import ChannelState
from edgectl.cabinet.fieldcheck import load_field_profile
from edgectl.cabinet.fieldcodec import (
    decode_inputs,
    decode_outputs,
    encode_inputs,
    encode_outputs,
)
from edgectl.cabinet.fieldmap import FieldProfile, ObjectType
from edgectl.cabinet.planner import FieldPlan, cover
from edgectl.cabinet.registers import CabinetSnapshot

CABINET_V1 = FieldPlan(load_field_profile("builtin:cabinet-v1"))
IO_MODULES = FieldPlan(load_field_profile("builtin:io-modules"))

spans_st = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(
    spans=spans_st, limit=st.sampled_from([1, 2, 16, 123, 125, 1968, 2000]), gap=st.integers(0, 20)
)
def test_cover_covers_every_span_within_the_limit(
    spans: list[tuple[int, int]], limit: int, gap: int
) -> None:
    requests = cover(spans, limit=limit, gap=gap)
    covered = set()
    for address, count in requests:
        assert 1 <= count <= limit
        covered |= set(range(address, address + count))
    for lo, hi in spans:
        assert set(range(lo, hi)) <= covered
    # requests are ordered and disjoint: nothing is read twice
    for (a1, c1), (a2, _) in itertools.pairwise(requests):
        assert a1 + c1 <= a2


@settings(max_examples=300, deadline=None)
@given(spans=spans_st, limit=st.sampled_from([16, 125, 2000]))
def test_cover_with_no_gap_reads_nothing_unmapped(spans: list[tuple[int, int]], limit: int) -> None:
    mapped = {a for lo, hi in spans for a in range(lo, hi)}
    for address, count in cover(spans, limit=limit, gap=0):
        assert set(range(address, address + count)) <= mapped


@settings(max_examples=300, deadline=None)
@given(spans=spans_st, limit=st.sampled_from([16, 125]))
def test_cover_is_no_worse_than_one_request_per_run(
    spans: list[tuple[int, int]], limit: int
) -> None:
    """Merging never costs requests: at most one per maximal run, plus the splits a run
    longer than the limit needs."""
    mapped = sorted({a for lo, hi in spans for a in range(lo, hi)})
    runs: list[list[int]] = []
    for a in mapped:
        if runs and runs[-1][1] == a:
            runs[-1][1] = a + 1
        else:
            runs.append([a, a + 1])
    bound = sum(-(-(hi - lo) // limit) for lo, hi in runs)
    assert len(cover(spans, limit=limit, gap=0)) <= bound
    assert len(cover(spans, limit=limit, gap=limit)) <= bound


# --- random profiles: every mapped address read, no request over the PDU limit -------------

place_st = st.tuples(
    st.sampled_from(["a", "b"]),
    st.sampled_from(list(ObjectType)),
    st.integers(0, 3000),
    st.integers(1, 16),
)


def _profile(entries: list[tuple[str, ObjectType, int, int]], gap: int) -> FieldProfile:
    maps = []
    for i, (dev, otype, address, n) in enumerate(entries, start=1):
        first = i * 16 - 15  # disjoint detector numbers per entry
        maps.append(
            {
                "signal": f"detector.{first}-{first + n - 1}" if first + n - 1 <= 64 else "ped.1",
                "device": dev,
                "type": otype.value,
                "address": address,
                **({} if otype.is_bit else {"bit": 0}),
            }
        )
    return FieldProfile.model_validate(
        {
            "format": 2,
            "name": "random",
            "devices": [{"name": "a", "read_gap": gap}, {"name": "b", "unit": 2}],
            "map": maps,
        }
    )


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(place_st, min_size=1, max_size=4), gap=st.integers(0, 125))
def test_every_mapped_object_is_read_within_the_pdu_limits(
    entries: list[tuple[str, ObjectType, int, int]], gap: int
) -> None:
    plan = FieldPlan(_profile(entries, gap))
    read = {
        (r.device, r.otype, a) for r in plan.reads for a in range(r.address, r.address + r.count)
    }
    for r in plan.reads:
        assert 1 <= r.count <= r.otype.max_read
        assert r.address + r.count <= 0x10000
    for p in plan.inputs:
        for address, _ in p.cells():
            assert (p.device, p.otype, address) in read


# --- encode / decode round trips ------------------------------------------------------------

STATES = list(ChannelState)
VEHICLE = [
    ChannelState.OFF,
    ChannelState.R,
    ChannelState.Y,
    ChannelState.G,
    ChannelState.FR,
    ChannelState.FY,
]
PED = [ChannelState.OFF, ChannelState.DW, ChannelState.FDW, ChannelState.W]


@settings(max_examples=300, deadline=None)
@given(
    vehicles=st.lists(st.sampled_from(VEHICLE), min_size=8, max_size=8),
    peds=st.lists(st.sampled_from(PED), min_size=4, max_size=4),
    heartbeat=st.integers(0, 0xFFFF),
)
def test_io_modules_frame_round_trip_and_readback(
    vehicles: list[ChannelState], peds: list[ChannelState], heartbeat: int
) -> None:
    frame = {i + 1: s for i, s in enumerate(vehicles + peds)}
    images = encode_outputs(IO_MODULES, frame, heartbeat)
    decoded, beat = decode_outputs(IO_MODULES, images)
    assert decoded == frame
    assert beat == heartbeat & 1  # one coil: the heartbeat toggles
    # the relay modules read their coils back: the readback is the frame
    snap = decode_inputs(IO_MODULES, images, 0.0)
    assert dict(snap.readback) == frame


@settings(max_examples=300, deadline=None)
@given(
    frame=st.dictionaries(st.integers(1, 32), st.sampled_from(STATES), max_size=32),
    hb=st.integers(0, 0xFFFF),
)
def test_cabinet_v1_frame_round_trip(frame: dict[int, ChannelState], hb: int) -> None:
    images = encode_outputs(CABINET_V1, frame, hb)
    decoded, beat = decode_outputs(CABINET_V1, images)
    assert beat == hb
    assert decoded == {ch: frame.get(ch, ChannelState.OFF) for ch in range(1, 33)}


def snapshots(channels: int, detectors: int, counts: int) -> st.SearchStrategy[CabinetSnapshot]:
    return st.builds(
        CabinetSnapshot,
        t=st.just(0.0),
        presence=st.frozensets(st.integers(1, detectors)),
        ped_buttons=st.frozensets(st.sampled_from([2, 4, 6, 8])),
        readback=st.lists(st.sampled_from(STATES), min_size=channels, max_size=channels).map(
            lambda s: MappingProxyType({i + 1: v for i, v in enumerate(s)})
        ),
        mmu_tripped=st.booleans(),
        cabinet_flash=st.booleans(),
        in_control=st.booleans(),
        mmu_fault=st.integers(0, 6),
        mmu_fault_channels=st.frozensets(st.integers(1, 32)) if counts else st.just(frozenset()),
        heartbeat_echo=st.integers(0, 0xFFFF) if counts else st.just(0),
        counts=st.lists(st.integers(0, 0xFFFF), min_size=counts, max_size=counts).map(tuple),
        uptime_s=st.integers(0, 2**32 - 1) if counts else st.just(0),
        power_cycles=st.integers(0, 0xFFFF) if counts else st.just(0),
    )


@settings(max_examples=300, deadline=None)
@given(snap=snapshots(32, 64, 64))
def test_cabinet_v1_inputs_round_trip(snap: CabinetSnapshot) -> None:
    assert decode_inputs(CABINET_V1, encode_inputs(CABINET_V1, snap), 0.0) == snap


@settings(max_examples=300, deadline=None)
@given(snap=snapshots(0, 12, 0))
def test_io_modules_inputs_round_trip(snap: CabinetSnapshot) -> None:
    """Detectors, push-buttons and the MMU's status survive the trip (readback is the
    coils', covered above)."""
    back = decode_inputs(IO_MODULES, encode_inputs(IO_MODULES, snap), 0.0)
    assert back.presence == snap.presence
    assert back.ped_buttons == snap.ped_buttons
    assert (back.mmu_tripped, back.cabinet_flash, back.in_control) == (
        snap.mmu_tripped,
        snap.cabinet_flash,
        snap.in_control,
    )
    assert back.mmu_fault == snap.mmu_fault


def test_active_low_mmu_contact_reads_a_dead_wire_as_tripped() -> None:
    images = {("mmu", ObjectType.DISCRETE_INPUT): dict.fromkeys(range(6), 0)}
    assert decode_inputs(IO_MODULES, images, 0.0).mmu_tripped


def test_io_modules_writes_only_what_changed() -> None:
    first = {1: ChannelState.G, 2: ChannelState.R, 9: ChannelState.W}
    before = encode_outputs(IO_MODULES, first, 1)
    assert len(IO_MODULES.writes(before)) == 4  # every unit once: 3 lamp modules + heartbeat
    after = encode_outputs(IO_MODULES, {**first, 1: ChannelState.Y}, 2)
    requests = IO_MODULES.writes(after, before)
    # channel 1's green off and yellow on (coils 1..2, FC15), and the heartbeat coil (FC5)
    assert [(r.device, r.function, r.address, r.values) for r in requests] == [
        ("lamps-a", 15, 1, (1, 0)),
        ("mmu", 5, 0, (0,)),
    ]
    assert [r.device for r in IO_MODULES.writes(after, before, full=["lamps-b"])] == [
        "lamps-a",
        "lamps-b",
        "mmu",
    ]


def test_io_modules_tick_is_five_reads() -> None:
    assert [(r.device, r.function, r.address, r.count) for r in IO_MODULES.reads] == [
        ("detectors", 2, 0, 16),
        ("mmu", 2, 0, 6),
        ("lamps-a", 1, 0, 16),
        ("lamps-b", 1, 0, 16),
        ("lamps-p", 1, 0, 12),
    ]


def test_byte_order_little_swaps_register_bytes() -> None:
    profile = FieldProfile.model_validate(
        {
            "format": 2,
            "name": "swap",
            "devices": [{"name": "x", "byte_order": "little", "word_order": "big"}],
            "map": [
                {
                    "signal": "channel.1.state",
                    "device": "x",
                    "type": "holding_register",
                    "address": 0,
                },
                {"signal": "heartbeat", "device": "x", "type": "holding_register", "address": 1},
                {
                    "signal": "uptime_s",
                    "device": "x",
                    "type": "input_register",
                    "address": 0,
                    "words": 2,
                },
            ],
        }
    )
    plan = FieldPlan(profile)
    images = encode_outputs(plan, {1: ChannelState.G}, 0x1234)
    assert images[("x", ObjectType.HOLDING_REGISTER)] == {0: 0x0300, 1: 0x3412}
    wire = {("x", ObjectType.INPUT_REGISTER): {0: 0x3412, 1: 0x7856}}  # big word order
    assert decode_inputs(plan, wire, 0.0).uptime_s == 0x12345678


def test_a_channel_changes_in_one_request() -> None:
    """Red off and green on in one request: never a moment with both or neither lit."""
    before = encode_outputs(IO_MODULES, {2: ChannelState.R}, 0)
    after = encode_outputs(IO_MODULES, {2: ChannelState.G}, 0)
    requests = [r for r in IO_MODULES.writes(after, before) if r.device == "lamps-a"]
    assert [(r.function, r.address, r.values) for r in requests] == [(15, 4, (0, 0, 1))]
