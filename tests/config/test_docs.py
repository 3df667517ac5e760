from pathlib import Path

from edgectl.config.docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: python -m edgectl.config.docs > docs/configuration.md"
    )


def test_reference_names_every_section() -> None:
    text = render()
    for section in (
        "Phase",
        "Ring",
        "Barrier",
        "Channel",
        "Detector",
        "PhaseTiming",
        "Coordination",
        "Control",
        "FieldSettings",
        "MqttSettings",
        "DaemonSettings",
    ):
        assert f"\n## {section}\n" in text
