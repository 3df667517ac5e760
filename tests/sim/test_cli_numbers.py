"""``firmware-sim --fault`` with absurd numbers: a usage error (status 2), never a traceback."""

from __future__ import annotations

import pytest

from firmware_sim.cli import main
from firmware_sim.faults import parse_fault

HUGE = "1" * 400


@pytest.mark.parametrize(
    "spec",
    [
        f"stuck:{HUGE}",
        f"delay:{HUGE}",
        f"drop:0.3@{HUGE}",
        f"silent@1+{HUGE}",
        "stuck:1.2.3",
        "delay:.",
        "power_cycle@99999999999",
    ],
)
def test_absurd_fault_numbers_are_usage_errors(
    capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--fault", spec])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "firmware-sim: error: --fault:" in err
    assert "Traceback" not in err
    assert len(err) < 2000  # the 400 digits are not echoed back whole
    with pytest.raises(ValueError, match=r"fault spec|must be"):
        parse_fault(spec)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_absurd_duration(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as info:
        main([f"--duration={value}"])
    assert info.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_sane_specs_still_parse() -> None:
    assert str(parse_fault("stuck:3@20+30")) == "stuck:3@20+30"
    assert parse_fault("delay:0.2@5").value == 0.2
