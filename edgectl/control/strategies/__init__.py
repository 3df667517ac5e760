"""Strategies: they only *request*; the engine decides (SPEC §4, §5).

``get_strategy(mode, config, plan)`` builds the strategy of a mode from the registry. A new
strategy registers itself with one line::

    register(Mode.MAXPRESSURE, MaxPressure)   # any callable (config, plan) -> Strategy
"""

from __future__ import annotations

from collections.abc import Callable

from edgectl.config.model import Config, Mode, Plan
from edgectl.control.strategies.actuated import Actuated
from edgectl.control.strategies.base import SplitWindow, Strategy, View, in_window, split_windows
from edgectl.control.strategies.coordinated import Coordinated
from edgectl.control.strategies.fixed import Fixed
from edgectl.control.strategies.manual import Manual

__all__ = [
    "Actuated",
    "Coordinated",
    "Fixed",
    "Manual",
    "SplitWindow",
    "Strategy",
    "StrategyFactory",
    "View",
    "get_strategy",
    "in_window",
    "register",
    "registered",
    "split_windows",
]

StrategyFactory = Callable[[Config, Plan], Strategy]

_REGISTRY: dict[Mode, StrategyFactory] = {}


def register(mode: Mode, factory: StrategyFactory) -> None:
    """Make ``factory(config, plan)`` the strategy of ``mode`` (replaces an earlier one)."""
    _REGISTRY[mode] = factory


def registered() -> frozenset[Mode]:
    return frozenset(_REGISTRY)


def get_strategy(mode: Mode, config: Config, plan: Plan) -> Strategy:
    """The strategy of ``mode``. ``KeyError`` when none is registered for it."""
    return _REGISTRY[mode](config, plan)


register(Mode.ACTUATED, Actuated)
register(Mode.FLASH, Actuated)  # the engine flashes; nothing to request
register(Mode.FIXED, Fixed)
register(Mode.COORDINATED, Coordinated)
register(Mode.MANUAL, Manual)

# Strategies in their own modules register themselves on import (after the registry exists).
from edgectl.control.strategies import adaptive, maxpressure  # noqa: E402, F401
