"""The ``[outflow]`` and ``[[neighbours]]`` sections: what loads and what is refused where."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgectl.config.loader import check_config_text, parse_config
from edgectl.config.model import Neighbour, Outflow

EIGHT_PHASE = (
    Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
).read_text()
NO_ENV: dict[str, str] = {}


def with_sections(extra: str) -> str:
    return EIGHT_PHASE + "\n" + extra


def test_defaults_publish_nothing_and_listen_to_no_one() -> None:
    config = parse_config(EIGHT_PHASE, environ=NO_ENV)
    assert config.outflow == Outflow() and not config.outflow.enabled
    assert config.neighbours == ()


def test_sections_load() -> None:
    config = parse_config(
        with_sections(
            "[outflow]\nenabled = true\ndetectors = [2, 6]\nperiod_s = 0.5\n"
            '[[neighbours]]\nintersection = "J1"\ndetectors = [2, 6]\nphase = 4\n'
            "travel_s = 24.0\n"
            '[[neighbours]]\nintersection = "J-3.a"\ndetectors = [1]\nphase = 4\n'
            "travel_s = 31.5\n"
        ),
        environ=NO_ENV,
    )
    assert config.outflow == Outflow(enabled=True, detectors=(2, 6), period_s=0.5)
    assert config.neighbours[0] == Neighbour(
        intersection="J1", detectors=(2, 6), phase=4, travel_s=24.0
    )
    assert config.neighbours[1].intersection == "J-3.a"


@pytest.mark.parametrize(
    ("fields", "where", "fragment"),
    [
        ('intersection = "J 1"', "neighbours[0].intersection", "pattern"),
        ('intersection = "J1/#"', "neighbours[0].intersection", "pattern"),
        ('intersection = ""', "neighbours[0].intersection", "pattern"),
        ("travel_s = 0.0", "neighbours[0].travel_s", "greater than or equal to 1"),
        ("travel_s = -3.0", "neighbours[0].travel_s", "greater than or equal to 1"),
        ("travel_s = 3600.0", "neighbours[0].travel_s", "less than or equal to 300"),
        ("travel_s = nan", "neighbours[0].travel_s", ""),
        ("detectors = []", "neighbours[0].detectors", "at least 1"),
        ("detectors = [0]", "neighbours[0].detectors[0]", "greater than or equal to 1"),
        ("phase = 17", "neighbours[0].phase", "less than or equal to 16"),
        ("lane = 2", "neighbours[0].lane", "unknown key"),
    ],
)
def test_a_bad_neighbour_is_refused_at_its_path(fields: str, where: str, fragment: str) -> None:
    given = fields.split(" = ", maxsplit=1)[0]
    defaults = {
        "intersection": '"J1"',
        "detectors": "[2]",
        "phase": "4",
        "travel_s": "24.0",
    }
    lines = [f"{k} = {v}" for k, v in defaults.items() if k != given] + [fields]
    text = with_sections("[[neighbours]]\n" + "\n".join(lines) + "\n")
    config, problems = check_config_text(text, environ=NO_ENV)
    assert config is None
    hits = [p for p in problems if p.path == where and fragment in p.message]
    assert hits, "\n".join(map(str, problems))


def test_at_most_16_neighbours() -> None:
    one = '[[neighbours]]\nintersection = "J{i}"\ndetectors = [2]\nphase = 4\ntravel_s = 20.0\n'
    text = with_sections("".join(one.format(i=i) for i in range(17)))
    config, problems = check_config_text(text, environ=NO_ENV)
    assert config is None and any(p.path == "neighbours" for p in problems)


def test_outflow_period_is_bounded() -> None:
    config, problems = check_config_text(
        with_sections("[outflow]\nenabled = true\nperiod_s = 0.01\n"), environ=NO_ENV
    )
    errors = [p.path for p in problems if p.severity == "error"]
    assert config is None and errors == ["outflow.period_s"]
