"""Held-out scenarios (bench.scenarios.heldout): deterministic per variant, new per variant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sumo.conftest import SKIP_REASON, needs_sumo

pytestmark = needs_sumo


def _files(directory: Path) -> dict[str, str]:
    """Every file's text; netconvert's header comment (its date, the input paths) dropped."""
    return {
        p.name: re.sub(r"<!--.*?-->", "", p.read_text(), count=1, flags=re.DOTALL)
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_a_variant_builds_the_same_files_and_another_variant_differs(tmp_path: Path) -> None:
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    from bench.scenarios.heldout import Y_MAX, Y_TARGETS, build_heldout, peak_y

    first = build_heldout("tee", 101, tmp_path / "a")
    again = build_heldout("tee", 101, tmp_path / "b")
    other = build_heldout("tee", 102, tmp_path / "c")
    a, b, c = _files(first.parent), _files(again.parent), _files(other.parent)
    expected = {"nod.xml", "edg.xml", "con.xml", "net.xml", "rou.xml", "det.add.xml"}
    assert {name.split(".", 1)[1] for name in a} >= expected | {"zones.add.xml", "sumocfg"}
    assert a == b
    # another variant: other geometry and other demand
    for ext in ("nod.xml", "rou.xml"):
        assert a[f"tee_h101.{ext}"] != c[f"tee_h102.{ext}"]
    cfg_text = a["tee_h101.sumocfg"]
    assert '<step-length value="1.0"/>' in cfg_text
    assert "tee_h101.zones.add.xml" in cfg_text
    lo, hi = Y_TARGETS["tee"]
    for cfg in (first, other):
        y = max(peak_y(cfg).values())
        assert lo - 0.01 <= y <= min(hi + 0.01, Y_MAX)


def test_variants_are_not_the_tuned_scenarios_and_unknown_kinds_are_refused() -> None:
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    from bench.scenarios import build
    from bench.scenarios.heldout import heldout

    layout, flows = heldout("isolated", 7)
    tuned, _ = build.isolated()
    assert layout.nodes != tuned.nodes
    assert all(rate >= 0 for f in flows for _b, _e, rate in f.periods)
    with pytest.raises(ValueError, match="unknown kind"):
        heldout("roundabout", 1)
