"""Remote commands on the operator port, in process (no broker, no field I/O).

The command handler sees the daemon only through its :class:`OperatorPort`: what a command
asks lands there, and the control loop takes it at its next tick.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgectl.config.loader import load_config
from edgectl.config.model import DaemonConfig, Mode
from edgectl.config.settings import Device
from edgectl.control.controller import Controller
from edgectl.control.types import EventCode, ExitFlash, Inputs, OperatingState, SetMode
from edgectl.daemon.loop import Daemon
from edgectl.daemon.operator import DaemonCommandHandler
from edgectl.daemon.port import OperatorPort
from edgectl.errors import CommandError
from edgectl.sync.commands import COMMAND_ADAPTER, COMMAND_TYPES, Command
from edgectl.sync.signing import build_command
from edgectl.testing.consumer import eventually
from tests.daemon.conftest import running

EIGHT_PHASE = Path(__file__).resolve().parents[2] / "edgectl" / "examples" / "eight_phase.toml"
MMU_RESET = 33  # holding register (builtin:nema-cabinet)


def command(kind: str, **params: object) -> Command:
    raw = json.dumps(build_command(kind, params, now=datetime.now(UTC)))
    return COMMAND_ADAPTER.validate_json(raw)  # as the sync service reads it


@pytest.fixture
def config() -> DaemonConfig:
    return load_config(EIGHT_PHASE, environ={})


@pytest.fixture
def port(config: DaemonConfig) -> OperatorPort:
    return OperatorPort(config, Controller(config))


def test_commands_leave_requests_and_directives_on_the_port(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    handler.apply(command("place_call", phases=[2, 6]))
    handler.apply(command("set_mode", mode="actuated"))
    assert port.requests.calls == {2, 6}
    assert list(port.directives) == [SetMode(Mode.ACTUATED)]
    applied = COMMAND_TYPES.index("set_mode") + 1
    assert [(code, param) for _, code, param in port.events][-1] == (
        EventCode.COMMAND_APPLIED,
        applied,
    )
    with pytest.raises(CommandError, match="no such phase"):
        handler.apply(command("hold", phases=[9]))


def test_state_exit_flash_and_mmu_reset_wait_for_the_control_loop(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    with pytest.raises(CommandError, match="starting"):
        handler.apply(command("request_state"))
    port.last = port.controller.step(0.0, Inputs())
    result = handler.apply(command("request_state"))
    assert port.state == result.data and port.state is not None
    with pytest.raises(CommandError, match="not in flash"):
        handler.apply(command("exit_flash"))
    handler.apply(command("mmu_reset"))
    assert port.mmu_reset


def test_exit_flash_is_refused_while_the_field_fault_lasts(port: OperatorPort) -> None:
    handler = DaemonCommandHandler(port)
    out = port.controller.step(0.0, Inputs())
    port.last = replace(out, state=OperatingState.FLASH)
    port.field_fault = "output device lost: cabinet"
    with pytest.raises(CommandError, match="field fault still present"):
        handler.apply(command("exit_flash"))
    port.field_fault = ""
    handler.apply(command("exit_flash"))
    assert list(port.directives) == [ExitFlash()]


def test_the_daemon_is_built_on_the_port_it_is_given(
    config: DaemonConfig, port: OperatorPort
) -> None:
    daemon = Daemon(config, port=port, devices=[])
    assert daemon.controller is port.controller and daemon.directives is port.directives
    with pytest.raises(ValueError, match="configuration"):
        Daemon(config.model_copy(), port=port, devices=[])


async def test_an_operators_mmu_reset_reaches_the_cabinet_at_the_next_tick(
    config: DaemonConfig,
) -> None:
    """The whole path in process: the port, the control loop, the device, a register bank."""
    field = config.field.model_copy(
        update={"devices": (Device(name="cabinet", url="memory://mmu"),)}
    )
    config = config.model_copy(update={"field": field})
    port = OperatorPort(config, Controller(config))
    daemon = Daemon(config, port=port)
    bank = daemon.buses.bank("mmu")
    async with running(daemon):
        await eventually(lambda: daemon.ready, 5.0, "ready on the bank's first read")
        assert bank.holding_registers[MMU_RESET] == 0
        DaemonCommandHandler(port).apply(command("mmu_reset"))
        await eventually(lambda: bank.holding_registers[MMU_RESET] == 0xA5A5, 2.0, "the reset")
        assert not port.mmu_reset
        assert daemon.reports["cabinet"].health.value == "online"
