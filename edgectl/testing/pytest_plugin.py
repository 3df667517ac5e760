"""The pytest side of :mod:`edgectl.testing`: broker fixtures, a leak check and ``--target``.

Not registered through an entry point (installing edgectl must not change another project's
pytest); a suite opts in from its top ``conftest.py``::

    pytest_plugins = ["edgectl.testing.pytest_plugin"]

Fixtures
    ``broker``              a mosquitto of the test's own (skipped when none is installed)
    ``persistent_broker``   the same, keeping sessions and queued messages across a restart
    ``tls_broker``          one per module: a TLS listener with generated certificates and a
                            unix socket besides the plain port
    ``target_url``          the ``--target URL`` given on the command line, or ``None``

Every test is checked for leaks: it fails when it leaves an asyncio task pending or a child
process running that a helper started (:data:`firmware_sim.process.LIVE`: the emulator, the
daemon, the brokers). Processes of a module-scoped fixture are started before the check looks
and stopped after the module, so they are not counted.

``--target URL`` points the RegisterIO conformance suite at another device, e.g. a real
cabinet: ``pytest tests/field --target modbus+tcp://10.0.4.21:502``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from edgectl.testing.mosquitto import SKIP_REASON, MosquittoBroker, mosquitto_available
from firmware_sim.process import LIVE

__all__ = [
    "broker",
    "persistent_broker",
    "pytest_addoption",
    "target_url",
    "tls_broker",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgectl")
    group.addoption(
        "--target",
        metavar="URL",
        default=None,
        help="also run the RegisterIO conformance suite against this device "
        "(e.g. modbus+tcp://10.0.4.21:502)",
    )


@pytest.fixture(scope="session")
def target_url(pytestconfig: pytest.Config) -> str | None:
    """The device URL given with ``--target``, or ``None``."""
    value = pytestconfig.getoption("--target")
    return None if value is None else str(value)


# --- leak check -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a helper's child process running."""
    before = set(LIVE)
    yield
    leaked = set(LIVE) - before
    assert not leaked, f"test leaked processes {sorted(leaked)}"


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks pending on its loop."""
    yield
    await asyncio.sleep(0)  # let cancelled tasks finish
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


# --- brokers ----------------------------------------------------------------------------------


def _need_mosquitto() -> None:
    if not mosquitto_available():
        pytest.skip(SKIP_REASON)


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A mosquitto of the test's own on a free loopback port."""
    _need_mosquitto()
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoBroker]:
    """A mosquitto that keeps sessions, subscriptions and queued messages across a restart."""
    _need_mosquitto()
    with MosquittoBroker(persistence=True) as b:
        yield b


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[MosquittoBroker]:
    """One mosquitto per module with a TLS listener (client certificates) and a unix socket."""
    _need_mosquitto()
    with MosquittoBroker(tls=True, unix_socket=True) as b:
        yield b
