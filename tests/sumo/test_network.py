"""Network derivation on a built scenario: groups, conflicts, stages, loops, clearances."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.config.model import DetectorType, Mode
from edgectl.config.validation import validate_config
from tests.sumo.conftest import needs_sumo

pytestmark = [pytest.mark.sumo, needs_sumo]


def _net(cfg: Path) -> Path:
    return next(cfg.parent.glob("*.net.xml"))


def _loops(cfg: Path) -> list[tuple[str, str, float, float]]:
    """(id, lane, pos, lane length) of every E1 loop, read with sumolib (no libsumo run)."""
    import sumolib

    net = sumolib.net.readNet(str(_net(cfg)))
    out = []
    for loop in sumolib.xml.parse(str(next(cfg.parent.glob("*.det.add.xml"))), "inductionLoop"):
        lane = net.getLane(loop.lane)
        out.append((loop.id, loop.lane, float(loop.pos), lane.getLength()))
    return out


def test_signal_groups_and_conflicts_match_sumo_foes(scenarios: dict[str, Path]) -> None:
    import sumolib

    from edgectl.sumo.network import derive_network

    cfg = scenarios["arterial"]
    models = derive_network(str(_net(cfg)))
    assert sorted(models) == ["J1", "J2", "J3"]
    net = sumolib.net.readNet(str(_net(cfg)), withPrograms=True)
    for tls in net.getTrafficLights():
        m = models[tls.getID()]
        assert m.n_links == len({c[2] for c in tls.getConnections()}) == 14
        # symmetric
        assert all((b, a) in m.conflicts for a, b in m.conflicts)
        node = net.getNode(tls.getID())
        by_tl = {c.getTLLinkIndex(): c for c in node.getConnections()}
        for a in range(m.n_links):
            for b in range(m.n_links):
                if a == b:
                    continue
                ia, ib = node.getLinkIndex(by_tl[a]), node.getLinkIndex(by_tl[b])
                foes = node.areFoes(ia, ib) or node.areFoes(ib, ia)
                assert ((a, b) in m.conflicts) == foes, (tls.getID(), a, b)
        # stages are conflict-free and every group is served
        for s in m.stages:
            assert not any((a, b) in m.conflicts for a in s.groups for b in s.groups)
        assert set().union(*(s.groups for s in m.stages)) == set(range(m.n_links))
        # four stages: two through+right, two protected-left
        assert len(m.stages) == 4
        assert sum(1 for s in m.stages if s.left_only) == 2


def test_loops_assigned_and_clearances_within_bounds(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo.network import attach_loops, derive_network

    cfg = scenarios["isolated_light"]
    (model,) = derive_network(str(_net(cfg))).values()
    model = attach_loops(model, _loops(cfg))
    in_lanes = {g.in_lane for g in model.groups}
    assert {loop.lane for loop in model.loops} == in_lanes
    for lane in in_lanes:
        kinds = sorted(loop.advance for loop in model.loops if loop.lane == lane)
        assert kinds == [False, True]  # one stop-bar and one advance loop per lane
    for loop in model.loops:
        assert loop.stages == model.lane_stages(loop.lane) != ()
        if loop.advance:
            assert loop.distance_m == pytest.approx(40.0)
    for s in model.stages:
        assert 3.0 <= s.yellow <= 6.0
        assert 0.0 <= s.red_clear <= 6.0
        # ITE at 50 km/h: 1 + 13.9 / 6.1 = 3.28 s → 3.3 s
        assert s.yellow == pytest.approx(3.3)
    config = model.to_config(Mode.ADAPTIVE)
    assert [p for p in validate_config(config) if p.severity == "error"] == []
    adv = [d for d in config.detectors if d.type is DetectorType.ADVANCE]
    assert len(adv) == len(in_lanes)


@pytest.mark.parametrize(("step", "yellow"), [(0.5, 3.5), (1.0, 4.0), (0.1, 3.3), (0.0, 3.3)])
def test_clearances_round_up_to_whole_simulation_steps(
    scenarios: dict[str, Path], step: float, yellow: float
) -> None:
    from edgectl.sumo.network import derive_network, on_steps

    (model,) = derive_network(str(_net(scenarios["isolated_light"]))).values()
    shown = on_steps(model, step)
    for before, after in zip(model.stages, shown.stages, strict=True):
        assert after.yellow == pytest.approx(yellow)
        assert after.red_clear >= before.red_clear
        if step > 0:
            n = after.red_clear / step
            assert n == pytest.approx(round(n))  # a whole number of steps
            assert after.red_clear - before.red_clear < step
        assert (after.green_s, after.min_green, after.groups) == (
            before.green_s,
            before.min_green,
            before.groups,
        )
    config = shown.to_config(Mode.ADAPTIVE)
    assert [p for p in validate_config(config) if p.severity == "error"] == []


def test_four_arm_junctions_get_the_nema_dual_ring(scenarios: dict[str, Path]) -> None:
    from edgectl.config.junction import ConflictMatrix
    from edgectl.sumo.network import attach_loops, derive_network

    cfg = scenarios["isolated_light"]
    (model,) = derive_network(str(_net(cfg))).values()
    model = attach_loops(model, _loops(cfg))
    dr = model.dual_ring
    assert dr is not None
    assert sorted(dr.phases) == [1, 2, 3, 4, 5, 6, 7, 8]
    # every signal group in exactly one phase; lefts alone in 1 / 3 / 5 / 7
    owners = [p for gs in dr.phases.values() for p in gs]
    assert sorted(owners) == list(range(model.n_links))
    for p in (1, 3, 5, 7):
        assert all(model.groups[i].direction in ("l", "L") for i in dr.phases[p])
    # NEMA: a left turns across the opposite through, so they share a ring
    for left, opposite_through in ((1, 2), (5, 6), (3, 4), (7, 8)):
        assert any(
            (a, b) in model.conflicts for a in dr.phases[left] for b in dr.phases[opposite_through]
        )
    config = model.to_config(Mode.ADAPTIVE)
    assert [p for p in validate_config(config) if p.severity == "error"] == []
    assert [r.sequence for r in config.rings] == [(1, 2, 3, 4), (5, 6, 7, 8)]
    # the kernel's own matrix allows nothing SUMO calls a conflict
    matrix = ConflictMatrix.from_config(config)
    for a, b in model.conflicts:
        assert matrix.channels_conflict(a + 1, b + 1), (a, b)
    # loops call the phase of their lane; the single-ring form is still there
    for det in config.detectors:
        assert len(det.call_phases) == 1
    single = model.to_config(Mode.ADAPTIVE, dual_ring=False)
    assert [r.sequence for r in single.rings] == [(1, 2, 3, 4)]


def test_a_t_junction_keeps_one_ring_of_stages(scenarios: dict[str, Path]) -> None:
    from edgectl.sumo.network import derive_network

    (model,) = derive_network(str(_net(scenarios["tee"]))).values()
    assert model.dual_ring is None
    config = model.to_config(Mode.ACTUATED)
    assert len(config.rings) == 1
    assert [p for p in validate_config(config) if p.severity == "error"] == []


def test_lefts_sharing_a_lane_stay_permissive(scenarios: dict[str, Path]) -> None:
    """One lane per approach: SUMO's program runs the lefts permissive ('g') with the
    through. They stay in the through stage, yielding; a protected stage of their own would
    block the shared lane behind every waiting left-turner (it gridlocked every controller)."""
    from edgectl.sumo.network import derive_network

    (model,) = derive_network(str(_net(scenarios["narrow"]))).values()
    assert model.dual_ring is None
    assert len(model.stages) == 2
    lefts = {g.index for g in model.groups if g.direction in ("l", "L")}
    assert lefts == set().union(*(st.permissive for st in model.stages))
    for st in model.stages:
        assert st.permissive < st.groups
        state = model.state_for(st.groups, permissive=st.permissive)
        assert {i for i, c in enumerate(state) if c == "g"} == st.permissive
        assert model.yielding([st.number], dual_ring=False) == st.permissive
    config = model.to_config(Mode.ADAPTIVE)
    assert [p for p in validate_config(config) if p.severity == "error"] == []


def test_stop_bars_where_a_left_waits_for_a_gap_extend_only_for_the_stored_queue(
    scenarios: dict[str, Path],
) -> None:
    """A left-turner waiting for a gap stands on the shared lane's stop-bar loop: without a
    queue limit it holds the green to its maximum while the lane behind it stands. Such a
    loop extends only while the queue stored up to the advance loop leaves (2 s start-up,
    2 s per 7.5 m of the 40 m), then the advance loop alone extends; loops of lanes
    without a yielding movement are unchanged."""
    from edgectl.sumo.network import attach_loops, derive_network

    cfg = scenarios["narrow"]
    (model,) = derive_network(str(_net(cfg))).values()
    model = attach_loops(model, _loops(cfg))
    config = model.to_config(Mode.ACTUATED)
    bars = [d for d in config.detectors if d.type is DetectorType.STOP_BAR]
    advance = [d for d in config.detectors if d.type is DetectorType.ADVANCE]
    assert len(bars) == 4 and len(advance) == 4  # one lane in per approach
    for d in bars:
        (loop,) = [x for x in model.loops if x.detector_id == d.id]
        (ahead,) = [x for x in model.loops if x.lane == loop.lane and x.advance]
        assert d.queue_limit == pytest.approx(2.0 + ahead.distance_m / 7.5 * 2.0, abs=0.05)
        assert 11.0 < d.queue_limit < 15.0
    assert all(d.queue_limit == 0.0 for d in advance)
    assert [p for p in validate_config(config) if p.severity == "error"] == []
    for name in ("isolated_light", "tee", "arterial"):  # protected lefts in lanes of their own
        other = scenarios[name]
        for m in derive_network(str(_net(other))).values():
            looped = attach_loops(m, _loops(other))
            assert looped.loops
            assert all(d.queue_limit == 0.0 for d in looped.to_config(Mode.ACTUATED).detectors)


def test_protected_permissive_lefts_become_flashing_yellow_arrows(
    scenarios: dict[str, Path],
) -> None:
    """netconvert runs the four-arm junction's lefts protected / permissive (``g`` in the
    through phase, ``G`` in their own). By default the bench keeps them protected only; with
    ``permissive_lefts`` the stages keep the ``g`` and the dual ring shows each left as a
    flashing yellow arrow yielding to the opposing through, in a configuration that
    validates (the opposing phase clears for both)."""
    from edgectl.sumo.model import OPPOSING
    from edgectl.sumo.network import derive_network

    cfg = scenarios["isolated_light"]
    (plain,) = derive_network(str(_net(cfg))).values()
    (model,) = derive_network(str(_net(cfg)), permissive_lefts=True).values()
    assert plain.arrows() == {} and not any(st.permissive for st in plain.stages)
    assert model.dual_ring is not None
    lefts = {i for i, g in enumerate(model.groups) if g.direction in ("l", "L")}
    assert set(model.arrows()) == lefts
    # the protected left stages survive next to the through stages that now carry them
    assert [st.groups for st in model.stages if st.left_only] == [
        st.groups for st in plain.stages if st.left_only
    ]
    config = model.to_config(Mode.ADAPTIVE)
    assert [p for p in validate_config(config) if p.severity == "error"] == []
    arrows = {c.id: c for c in config.channels if c.permissive is not None}
    assert len(arrows) == len(lefts)
    timing = config.plans[0].timing
    for ch in arrows.values():
        assert ch.permissive == OPPOSING[ch.phase]
        assert timing[ch.permissive].yellow >= timing[ch.phase].yellow
        assert timing[ch.permissive].red_clear >= timing[ch.phase].red_clear
    # single ring: SUMO's stages, permissive shown as g by the bench, no arrows
    assert model.arrows(dual_ring=False) == {}
