"""The sensing matrix's report (bench.sensing_report, bench.adaptive_zones --from-json) from
a small synthetic JSON: no SUMO run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIGURE_MODES = ("loops", "zones", "degraded")
# scenario → column → (time loss, worst approach delay, stops), the same for both seeds
FIGURES: dict[str, dict[tuple[str, str | None], tuple[float, float, float]]] = {
    "alpha": {
        ("sumo:static", None): (60.0, 70.0, 2.0),
        ("sumo:actuated", None): (40.0, 40.0, 1.5),
        ("sumo:delay_based", None): (36.0, 38.0, 1.4),
        ("edgectl:adaptive", "loops"): (36.0, 40.0, 1.2),
        ("edgectl:adaptive", "zones"): (30.0, 46.0, 0.8),
        ("edgectl:adaptive", "degraded"): (34.0, 41.0, 1.0),
        ("edgectl:actuated", "loops"): (44.0, 42.0, 1.6),
        ("edgectl:actuated", "zones"): (44.0, 42.0, 1.6),
        ("edgectl:actuated", "degraded"): (44.0, 42.0, 1.6),
    },
    "beta": {
        ("sumo:static", None): (20.0, 30.0, 1.0),
        ("sumo:actuated", None): (25.0, 20.0, 1.1),
        ("sumo:delay_based", None): (30.0, 35.0, 1.3),
        ("edgectl:adaptive", "loops"): (20.0, 21.0, 0.9),
        ("edgectl:adaptive", "zones"): (16.0, 18.0, 0.7),
        ("edgectl:adaptive", "degraded"): (18.0, 19.0, 0.8),
        ("edgectl:actuated", "loops"): (25.0, 20.0, 1.0),
        ("edgectl:actuated", "zones"): (25.0, 20.0, 1.0),
        ("edgectl:actuated", "degraded"): (25.0, 20.0, 1.0),
    },
}


def _rows() -> list[dict[str, Any]]:
    rows = []
    for scenario, cols in FIGURES.items():
        for seed, spread in ((1, -2.0), (2, 2.0)):  # seeds differ, their mean is the figure
            for (controller, sensing), (loss, worst, stops) in cols.items():
                rows.append(
                    {
                        "scenario": scenario,
                        "controller": controller,
                        "sensing": sensing,
                        "seed": seed,
                        "time_loss_s": loss + spread,
                        "worst_approach_delay_s": worst,
                        "stops": stops,
                        # one invalid run: beta, actuated on degraded zones, seed 2
                        "ok": not (
                            scenario == "beta"
                            and sensing == "degraded"
                            and seed == 2
                            and controller == "edgectl:actuated"
                        ),
                    }
                )
    return rows


def _table(text: str, heading: str) -> dict[str, dict[str, str]]:
    """The markdown table after the line starting with ``heading``: row → column → cell."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(heading))
    body = []
    for ln in lines[start + 2 :]:
        if ln.startswith("|"):
            body.append([c.strip() for c in ln.strip("|").split("|")])
        elif body:
            break
    head, rows = body[0], body[2:]
    return {r[0]: dict(zip(head[1:], r[1:], strict=True)) for r in rows}


def test_report_tables_from_rows() -> None:
    from bench.sensing_report import report

    text = report(_rows())
    loss = _table(text, "Mean time loss")
    assert loss["alpha"]["`sumo:actuated`"] == "40.0"
    assert loss["alpha"]["adaptive zones"] == "30.0"
    assert loss["beta"]["actuated degraded"] == "25.0"
    assert loss["alpha"]["all valid"] == "yes" and loss["beta"]["all valid"] == "**no**"

    ratios = _table(text, "Ratios of mean time loss")
    # alpha: SUMO actuated 40, best SUMO delay_based 36; beta: actuated 25, best static 20
    assert ratios["alpha"]["adaptive zones"] == "0.75 / 0.83"
    assert ratios["alpha"]["adaptive loops"] == "0.90 / 1.00"
    assert ratios["alpha"]["actuated loops"] == "1.10 / 1.22"
    assert ratios["alpha"]["best SUMO"] == "`sumo:delay_based`"
    assert ratios["beta"]["adaptive zones"] == "0.64 / 0.80"
    assert ratios["beta"]["best SUMO"] == "`sumo:static`"
    # geometric means over the two scenarios: √(0.75 × 0.64), √(0.833 × 0.80)
    assert ratios["**geometric mean**"]["adaptive zones"] == "0.69 / 0.82"
    assert ratios["**geometric mean**"]["adaptive degraded"] == "0.78 / 0.92"

    worst = _table(text, "Worst approach")
    assert worst["alpha"]["`sumo:actuated`"] == "40.0"
    assert worst["alpha"]["adaptive zones"] == "46.0 (**1.15**)"  # over 1.10 × SUMO's
    assert worst["alpha"]["adaptive loops"] == "40.0 (1.00)"
    assert worst["beta"]["adaptive zones"] == "18.0 (0.90)"

    stops = _table(text, "Stops per arrived vehicle")
    assert stops["alpha"]["adaptive zones"] == "0.80"
    assert stops["beta"]["`sumo:delay_based`"] == "1.30"


def test_rows_of_the_old_format_read_as_adaptive() -> None:
    """Before edgectl:actuated joined, a row named adaptive's sensing mode as controller."""
    from bench.sensing_report import report

    old = [
        {k: v for k, v in r.items() if k != "sensing"}
        | ({"controller": r["sensing"]} if r["controller"] == "edgectl:adaptive" else {})
        for r in _rows()
        if r["controller"] != "edgectl:actuated"
    ]
    assert {r["controller"] for r in old} == {
        "sumo:static",
        "sumo:actuated",
        "sumo:delay_based",
        "loops",
        "zones",
        "degraded",
    }
    ratios = _table(report(old), "Ratios of mean time loss")
    assert list(ratios["alpha"]) == [
        "adaptive loops",
        "adaptive zones",
        "adaptive degraded",
        "best SUMO",
    ]
    assert ratios["**geometric mean**"]["adaptive zones"] == "0.69 / 0.82"


def test_from_json_prints_the_tables_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.adaptive_zones import main

    saved = tmp_path / "matrix.json"
    saved.write_text(json.dumps(_rows()))
    png = tmp_path / "img" / "sensing.png"
    assert main(["--from-json", str(saved), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert _table(out, "Ratios of mean time loss")["beta"]["adaptive loops"] == "0.80 / 1.00"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000  # two panels of bars, not an empty canvas


def test_matrix_jobs_cover_every_controller_and_mode(tmp_path: Path) -> None:
    from bench.adaptive_zones import jobs

    cfgs = {"alpha": tmp_path / "alpha.sumocfg", "beta": tmp_path / "beta.sumocfg"}
    todo = jobs(cfgs, [1, 2])
    assert len(todo) == 2 * 2 * (3 + 2 * 3)
    first = [(j.controller, j.sensing) for j in todo if j.scenario == "alpha" and j.seed == 1]
    assert first == [
        ("sumo:static", None),
        ("sumo:actuated", None),
        ("sumo:delay_based", None),
        *((c, m) for c in ("edgectl:adaptive", "edgectl:actuated") for m in FIGURE_MODES),
    ]
    only = jobs(cfgs, [3], controllers=["edgectl:adaptive"], modes=["zones"], peers=False)
    assert [(j.scenario, j.controller, j.sensing, j.seed) for j in only] == [
        ("alpha", "edgectl:adaptive", "zones", 3),
        ("beta", "edgectl:adaptive", "zones", 3),
    ]


def test_a_max_pressure_column_is_reported_with_its_ratios() -> None:
    """``heldout_bench --controllers edgectl:maxpressure --modes loops``: a controller the
    report has no fixed place for still gets its column and its ratios."""
    from bench.sensing_report import report

    rows = [r for r in _rows() if r["controller"].startswith("sumo:")]
    for r in [r for r in rows if r["controller"] == "sumo:actuated"]:
        rows.append(
            {
                **r,
                "controller": "edgectl:maxpressure",
                "sensing": "loops",
                "time_loss_s": r["time_loss_s"] * 1.2,
            }
        )
    ratios = _table(report(rows), "Ratios of mean time loss")
    assert ratios["alpha"]["maxpressure loops"] == "1.20 / 1.33"  # best: delay_based 36
    assert ratios["**geometric mean**"]["maxpressure loops"].startswith("1.20 / ")
