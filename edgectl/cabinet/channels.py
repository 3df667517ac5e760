"""Load-switch channel states, as the cabinet hardware and the controller both name them."""

from __future__ import annotations

import enum

__all__ = ["ChannelState"]


class ChannelState(enum.IntEnum):
    """Load-switch channel states; the integer is the Modbus register value."""

    OFF = 0
    R = 1
    Y = 2
    G = 3
    DW = 4  # don't walk (steady)
    FDW = 5  # flashing don't walk (pedestrian clearance)
    W = 6  # walk
    FR = 7  # flashing red
    FY = 8  # flashing yellow

    @property
    def is_red(self) -> bool:
        """Red for conflict purposes: no right of way is shown."""
        return self in (ChannelState.OFF, ChannelState.R, ChannelState.DW, ChannelState.FR)
