"""The public API of edgectl.testing is deliberate (as ``trio.testing``'s): this pins it."""

from __future__ import annotations

import importlib

import pytest

import edgectl.testing

PUBLIC = [
    "BrokerProcess",
    "ChannelChecker",
    "ChannelMinimums",
    "ChannelService",
    "Consumer",
    "DaemonProcess",
    "EmulatorProcess",
    "EventuallyTimeout",
    "Finding",
    "LinkUnderTest",
    "ManagedProcess",
    "ModeRun",
    "MosquittoBroker",
    "NatsBroker",
    "PhaseChecker",
    "PhaseService",
    "PoissonDemand",
    "ProcessError",
    "Received",
    "RegisterLayout",
    "Reservice",
    "SafetyChecker",
    "ServiceLog",
    "Skip",
    "Wait",
    "channel_minimums",
    "check_record",
    "check_register_io",
    "check_timeline",
    "consuming",
    "cycle_bound_s",
    "derive_channel_conflicts",
    "derive_phase_conflicts",
    "eventually",
    "free_port",
    "mosquitto_available",
    "nats_available",
    "permissive_channels",
    "record_service",
    "run_mode",
    "running",
]

#: submodules the suite and the bench import directly; they stay importable
SUBMODULES = [
    "broker",
    "checker",
    "conformance",
    "consumer",
    "hil",
    "mosquitto",
    "nats",
    "pytest_plugin",
    "service",
]


def test_public_names() -> None:
    assert sorted(edgectl.testing.__all__) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_importable(name: str) -> None:
    assert getattr(edgectl.testing, name) is not None


@pytest.mark.parametrize("name", SUBMODULES)
def test_submodules_stay_importable(name: str) -> None:
    importlib.import_module(f"edgectl.testing.{name}")
