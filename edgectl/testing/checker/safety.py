"""Both checks of a controller's outputs at once, minimums following the running plan."""

from __future__ import annotations

from collections.abc import Iterable

from edgectl.config.model import Config, Mode
from edgectl.control.types import Outputs, Requests
from edgectl.testing.checker.channels import ChannelChecker
from edgectl.testing.checker.findings import Finding
from edgectl.testing.checker.layout import (
    channel_minimums,
    derive_channel_conflicts,
    permissive_channels,
)
from edgectl.testing.checker.phases import PhaseChecker

__all__ = ["SafetyChecker"]


class SafetyChecker:
    """Channel and phase checks of a controller's :class:`Outputs`, one call per tick.

    Conflicts and minimums are derived independently from ``config``; minimums follow the
    plan each output reports.
    """

    def __init__(
        self,
        config: Config,
        *,
        max_modes: Iterable[Mode] = (Mode.ACTUATED,),
        starvation_bound_s: float | None = None,
    ) -> None:
        self._config = config
        self._plans = {p.id: p for p in config.plans}
        self.conflicts = derive_channel_conflicts(config)
        self._plan_id = config.control.plan
        first = self._plans.get(self._plan_id) or config.plans[0]
        m = channel_minimums(config, first)
        self.channels = ChannelChecker(
            self.conflicts,
            m.yellow,
            m.red_clear,
            m.ped_clear,
            permissive=permissive_channels(config),
        )
        self.phases = PhaseChecker(
            config, max_modes=max_modes, starvation_bound_s=starvation_bound_s
        )

    def feed(
        self,
        out: Outputs,
        requests: Requests | None = None,
        *,
        operator: Requests | None = None,
    ) -> list[Finding]:
        """Check one tick; see :meth:`PhaseChecker.feed` for the requests."""
        if out.plan != self._plan_id and out.plan in self._plans:
            self._plan_id = out.plan
            m = channel_minimums(self._config, self._plans[out.plan])
            self.channels.set_minimums(m.yellow, m.red_clear, m.ped_clear)
        findings = self.channels.feed(out.t, dict(out.channels))
        findings += self.phases.feed(out, requests, operator=operator)
        return findings
