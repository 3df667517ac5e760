"""The metrics endpoint, scraped over real HTTP on loopback."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from edgectl.config.model import Mode
from edgectl.ops.metrics import Metrics, parse_listen

ALL_METRICS = {
    "edgectl_tick_latency_seconds",
    "edgectl_late_ticks",
    "edgectl_poll_errors",
    "edgectl_device_health",
    "edgectl_outbox_depth",
    "edgectl_outbox_dropped",
    "edgectl_mqtt_connected",
    "edgectl_commands",
    "edgectl_detector_faulted",
    "edgectl_detector_faults",
    "edgectl_mmu_tripped",
    "edgectl_mode",
    "edgectl_operating_state",
    "edgectl_plan",
    "edgectl_config_reloads",
    "edgectl_neighbour_messages",
    "edgectl_sd_notify_failures",
    "edgectl_build_info",
}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


def test_every_metric_is_exposed_and_moves() -> None:
    m = Metrics(devices=["cabinet"], detectors=[1, 2], neighbours=["J1"])
    with m.start_http("127.0.0.1:0") as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        before = scrape(server.url)
        assert families(m.render().decode()) >= ALL_METRICS
        timeouts = ("edgectl_poll_errors_total", (("device", "cabinet"), ("kind", "timeout")))
        assert before[timeouts] == 0
        assert before[("edgectl_detector_faulted", (("detector", "2"),))] == 0
        assert before[("edgectl_build_info", (("version", "0.1.0"),))] == 1
        accepted = (
            "edgectl_neighbour_messages_total",
            (("neighbour", "J1"), ("result", "accepted")),
        )
        assert before[accepted] == 0

        m.observe_tick(0.0004)
        m.observe_tick(0.003)
        m.observe_tick(0.120, late=True)
        m.poll_error("cabinet", "timeout")
        m.poll_error("cabinet", "timeout")
        m.set_device_health("cabinet", "degraded")
        m.set_outbox(42)
        m.outbox_drop(3)
        m.set_mqtt_connected(True)
        m.command(accepted=True)
        m.command(accepted=False, code="bad_signature")
        m.set_detector_fault(2, "max_presence")
        m.set_detector_fault(2, "max_presence")  # still the same fault: counted once
        m.set_mmu_tripped(True)
        m.set_mode(Mode.COORDINATED, 3)
        m.set_operating_state("normal")
        m.config_reload(applied=False)
        m.neighbour_message("J1", "accepted", 3)
        m.neighbour_message("J1", "stale")
        m.sd_notify_failures.inc()

        after = scrape(server.url)

    def v(name: str, **labels: str) -> float:
        return after[(name, tuple(sorted(labels.items())))]

    assert v("edgectl_tick_latency_seconds_count") == 3
    assert v("edgectl_tick_latency_seconds_bucket", le="0.0005") == 1
    assert v("edgectl_tick_latency_seconds_bucket", le="0.005") == 2
    assert v("edgectl_tick_latency_seconds_bucket", le="0.1") == 2
    assert v("edgectl_tick_latency_seconds_sum") == pytest.approx(0.1234)
    assert v("edgectl_late_ticks_total") == 1
    assert v("edgectl_poll_errors_total", device="cabinet", kind="timeout") == 2
    assert v("edgectl_device_health", device="cabinet", state="degraded") == 1
    assert v("edgectl_device_health", device="cabinet", state="online") == 0
    assert v("edgectl_outbox_depth") == 42
    assert v("edgectl_outbox_dropped_total") == 3
    assert v("edgectl_mqtt_connected") == 1
    assert v("edgectl_commands_total", result="accepted", code="ok") == 1
    assert v("edgectl_commands_total", result="rejected", code="bad_signature") == 1
    assert v("edgectl_detector_faulted", detector="2") == 1
    assert v("edgectl_detector_faults_total", detector="2", fault="max_presence") == 1
    assert v("edgectl_mmu_tripped") == 1
    assert v("edgectl_mode", edgectl_mode="coordinated") == 1
    assert v("edgectl_mode", edgectl_mode="actuated") == 0
    assert v("edgectl_plan") == 3
    assert v("edgectl_operating_state", edgectl_operating_state="normal") == 1
    assert v("edgectl_config_reloads_total", result="rejected") == 1
    assert v("edgectl_sd_notify_failures_total") == 1
    assert v("edgectl_neighbour_messages_total", neighbour="J1", result="accepted") == 3
    assert v("edgectl_neighbour_messages_total", neighbour="J1", result="stale") == 1

    m.set_detector_fault(2, None)
    m.set_detector_fault(2, "erratic")
    text = m.render().decode()
    assert 'edgectl_detector_faults_total{detector="2",fault="erratic"} 1.0' in text
    assert 'edgectl_detector_faulted{detector="2"} 1.0' in text


def test_server_is_closed_and_the_port_released() -> None:
    m = Metrics()
    server = m.start_http(":0")
    port = server.port
    server.close()
    server.close()  # idempotent
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_registry_is_private() -> None:
    a, b = Metrics(), Metrics()
    a.late_ticks.inc()
    assert "edgectl_late_ticks_total 1.0" in a.render().decode()
    assert "edgectl_late_ticks_total 0.0" in b.render().decode()
    assert REGISTRY.get_sample_value("edgectl_late_ticks_total") is None


def test_port_in_use_raises_oserror() -> None:
    with Metrics().start_http("127.0.0.1:0") as first, pytest.raises(OSError, match="in use"):
        Metrics().start_http(f"127.0.0.1:{first.port}")


def test_bad_device_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown device state"):
        Metrics().set_device_health("cabinet", "sleepy")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("127.0.0.1", 9108)),
        ("localhost:0", ("127.0.0.1", 0)),
        ("[::1]:9108", ("::1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9108", "host:", "127.0.0.1:99999", "cabinet.local:9108"])
def test_parse_listen_refuses(listen: str) -> None:
    with pytest.raises(ValueError, match="metrics listen address"):
        parse_listen(listen)
