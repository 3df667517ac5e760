"""edgectl.testing: the helpers that prove a junction safe, as a product (like ``trio.testing``).

The public API, pinned by ``tests/test_public_api.py``; the submodules stay importable
(``edgectl.testing.checker``, ``.hil``, ``.service``, ``.mosquitto``, …) for the rest.

The independent safety checker (SPEC §4, sharing no logic with the controller)
    SafetyChecker, ChannelChecker, PhaseChecker, Finding, check_record, check_timeline,
    channel_minimums, ChannelMinimums, derive_channel_conflicts, derive_phase_conflicts,
    permissive_channels

How a junction served its phases
    ServiceLog, record_service, run_mode, ModeRun, ChannelService, PhaseService, Wait,
    Reservice, Skip, cycle_bound_s

Demand and processes
    PoissonDemand           a seeded detector stream for runs in virtual time
    EmulatorProcess         ``firmware-sim`` as a child process, its URL from its first line
    DaemonProcess           ``edgectl run`` as systemd runs it
    ManagedProcess, ProcessError, running

The RegisterIO conformance suite (one set of promises, every implementation, a real device)
    check_register_io, LinkUnderTest, RegisterLayout

Brokers and the centre's side of MQTT
    MosquittoBroker, NatsBroker, BrokerProcess, mosquitto_available, nats_available, free_port,
    Consumer, Received, consuming, eventually, EventuallyTimeout

The pytest plugin (:mod:`edgectl.testing.pytest_plugin`: broker fixtures, leak checks,
``--target URL``) is opted into with ``pytest_plugins``; it is not imported here, so this
package does not need pytest.
"""

from edgectl.control.demand import PoissonDemand
from edgectl.testing.broker import BrokerProcess, free_port
from edgectl.testing.checker import (
    ChannelChecker,
    ChannelMinimums,
    Finding,
    PhaseChecker,
    SafetyChecker,
    channel_minimums,
    check_record,
    check_timeline,
    derive_channel_conflicts,
    derive_phase_conflicts,
    permissive_channels,
)
from edgectl.testing.conformance import LinkUnderTest, RegisterLayout, check_register_io
from edgectl.testing.consumer import Consumer, EventuallyTimeout, Received, consuming, eventually
from edgectl.testing.hil import DaemonProcess, ManagedProcess, ProcessError, running
from edgectl.testing.mosquitto import MosquittoBroker, mosquitto_available
from edgectl.testing.nats import NatsBroker, nats_available
from edgectl.testing.service import (
    ChannelService,
    ModeRun,
    PhaseService,
    Reservice,
    ServiceLog,
    Skip,
    Wait,
    cycle_bound_s,
    record_service,
    run_mode,
)
from firmware_sim.process import EmulatorProcess

__all__ = [
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
