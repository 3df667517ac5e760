"""Field latency: how long from the detector frame read to the output frame written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgectl.field.report import DeviceReport

LATENCY_SUMMARY_TICKS = 3000  # a tick_latency_summary log line every 5 min at 10 Hz


@dataclass(slots=True)
class LatencyHistogram:
    """Field latency (detector frame read → output frame written) in 0.1 ms bins up to 100 ms.

    O(1) per sample and bounded memory, so the control loop can afford it every tick; the
    quantiles are exact to the bin width. Logged as ``tick_latency_summary`` every
    ``LATENCY_SUMMARY_TICKS`` ticks and at exit (what ``bench/daemon_bench.py`` reads).
    """

    bin_s: float = 0.0001
    bins: list[int] = field(default_factory=lambda: [0] * 1001)  # last bin: ≥ 100 ms
    count: int = 0
    max_s: float = 0.0
    sum_s: float = 0.0

    def add(self, seconds: float) -> None:
        i = min(int(seconds / self.bin_s), len(self.bins) - 1)
        self.bins[max(i, 0)] += 1
        self.count += 1
        self.sum_s += seconds
        self.max_s = max(self.max_s, seconds)

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, int(q * self.count + 0.999999))
        seen = 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen >= rank:
                return min((i + 1) * self.bin_s, self.max_s)
        return self.max_s

    def summary(self) -> dict[str, float | int]:
        mean = self.sum_s / self.count if self.count else 0.0
        return {
            "n": self.count,
            "p50_ms": round(self.quantile(0.5) * 1000, 2),
            "p99_ms": round(self.quantile(0.99) * 1000, 2),
            "max_ms": round(self.max_s * 1000, 2),
            "mean_ms": round(mean * 1000, 3),
        }


@dataclass(slots=True)
class WriteLatency:
    """Samples each output device's latest read → write latency once per write."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    _writes_seen: dict[str, int] = field(default_factory=dict)

    def sample(self, reports: Iterable[DeviceReport]) -> None:
        for r in reports:
            writes = r.stats.writes
            if writes != self._writes_seen.get(r.device, 0):
                self._writes_seen[r.device] = writes
                self.histogram.add(r.stats.last_latency_s)
