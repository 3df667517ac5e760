"""Several broker URLs (issue 21): a junction whose first broker is down connects to the next,
and ``check-config`` checks every URL as it checks ``url``."""

from __future__ import annotations

from pathlib import Path

from edgectl.config.loader import check_config_text
from edgectl.sync.link import FAILOVER_AFTER_S, BrokerTurns
from edgectl.testing.mosquitto import MosquittoBroker, free_port
from tests.config.test_file_references import two_phase
from tests.sync.conftest import FakeHandler, eventually, make_service, running


async def test_a_dead_first_broker_is_passed_over(
    broker: MosquittoBroker, tmp_path: Path, handler: FakeHandler
) -> None:
    dead = f"mqtt://127.0.0.1:{free_port()}"
    service = make_service(dead, tmp_path, handler, failover_urls=(broker.url,))
    async with running(service):
        await eventually(lambda: service.connected, timeout=10, what="connected to the second")
    assert service.metrics.connects == 1


def _problems(mqtt: str) -> list[tuple[str, str, str]]:
    text = two_phase() + "\n[mqtt]\nallow_unsigned_commands = true\n" + mqtt + "\n"
    _, problems = check_config_text(text, environ={})
    return [(p.severity, p.path, p.message) for p in problems if p.severity == "error"]


def test_every_failover_url_is_checked() -> None:
    assert _problems('url = "mqtts://a:8883"\nfailover_urls = ["mqtts://b:8883"]') == []
    found = _problems('url = "mqtts://a:8883"\nfailover_urls = ["mqtts://u:secret@b:8883"]')
    assert [p for _, p, _ in found] == ["mqtt.failover_urls[0]"]
    assert "secret" not in str(found)
    found = _problems('url = "mqtts://a:8883"\nfailover_urls = ["mqtts://a:8883"]')
    assert [(p, "twice" in m) for _, p, m in found] == [("mqtt.failover_urls", True)]
    found = _problems('failover_urls = ["mqtts://b:8883"]')
    assert [(p, "without url" in m) for _, p, m in found] == [("mqtt.failover_urls", True)]


def test_brokers_are_taken_in_turn_and_a_round_of_failures_backs_off() -> None:
    turns = BrokerTurns(("a", "b", "c"))
    assert [turns.next() for _ in range(4)] == ["a", "b", "c", "a"]
    turns = BrokerTurns(("a", "b", "c"))
    turns.next()
    assert not turns.back_off(None)  # a failed, b next at once
    turns.next()
    assert not turns.back_off(None)
    turns.next()
    assert turns.back_off(None)  # the whole round failed: back off
    turns.next()
    assert not turns.back_off(FAILOVER_AFTER_S + 1)  # a long session ended: fail over now
    turns.next()
    turns.next()
    assert turns.back_off(0.5)  # a broker that accepts and drops at once is not hammered
    single = BrokerTurns(("a",))
    single.next()
    assert single.back_off(FAILOVER_AFTER_S + 1) and single.back_off(None)
