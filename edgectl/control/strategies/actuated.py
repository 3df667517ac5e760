"""Fully actuated: the engine's own gap-out / max-out logic is the strategy."""

from __future__ import annotations

from edgectl.config.model import Config, Plan
from edgectl.control.strategies.base import View
from edgectl.control.types import NO_REQUESTS, Requests


class Actuated:
    """No requests: calls, recalls, passage and max 1 come from the plan and the detectors."""

    name = "actuated"

    def __init__(self, config: Config, plan: Plan) -> None:
        self.config = config

    def requests(self, view: View) -> Requests:
        return NO_REQUESTS
