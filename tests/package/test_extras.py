"""Without an optional extra, the command that needs it says how to install it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgectl.cli import main


def test_demo_without_the_demo_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "amqtt", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "amqtt.broker", None)
    assert main(["demo", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'edgectl[demo]'" in err
    assert "--broker" in err


def test_report_without_the_report_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.csv"
    assert main(["simulate", "--duration", "120", "--quiet", "--events-csv", str(events)]) == 0
    capsys.readouterr()
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["report", str(events), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'edgectl[report]'" in err
    assert "Traceback" not in err
