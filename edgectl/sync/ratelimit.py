"""How much incoming MQTT work the junction takes on: a token bucket per kind of message.

Anyone with publish rights on the broker can send thousands of messages a second. Each costs
the daemon a JSON parse, an HMAC and an answer, in the event loop the control loop runs in:
unbounded, a flood starves the ticks (a frame late past the MMU's heartbeat puts the junction
into flash). Over its rate a message is dropped before any of that, counted, and not
answered — a centre that got no answer sends again. Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` messages per second on average, ``burst`` at once."""

    rate: float
    burst: float
    tokens: float = -1.0  # full at the first take
    last: float | None = None

    def take(self, now: float) -> bool:
        """One message at ``now`` (a monotonic time, s): True if it may be handled."""
        if self.last is None or self.tokens < 0:
            self.tokens = self.burst
        else:
            self.tokens = min(self.burst, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def command_bucket(rate_per_s: float) -> TokenBucket:
    """The commands' bucket: a burst of two seconds' worth, at least ten."""
    return TokenBucket(rate=rate_per_s, burst=max(10.0, 2.0 * rate_per_s))
