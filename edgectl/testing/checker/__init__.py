"""An independent safety checker for signal timelines (a product: ``edgectl.testing``).

It shares no logic with :mod:`edgectl.control.monitor` or :mod:`edgectl.config.junction`:
conflicts are derived here from the rings and barriers (or given as an explicit list of
channel pairs, e.g. the ``conflicts`` of a ``firmware-sim --summary``), and every rule is
re-implemented from SPEC §4. It checks

channel timelines (:class:`ChannelChecker`, :func:`check_record`, :func:`check_timeline`)
    ``conflict``            two conflicting channels non-red at once (FR/FY/OFF/R/DW are red)
    ``green_not_to_yellow`` a green followed by anything but yellow (or flash)
    ``yellow_to_green``     ``Y→G``
    ``short_yellow``        a yellow shorter than its minimum (at ``Y→R``)
    ``short_red_clear``     a green/walk while a conflicting channel's red clearance runs
    ``walk_not_to_ped_clear`` a walk not followed by a flashing don't walk
    ``short_ped_clear``     a flashing don't walk shorter than its minimum
    ``flash_exit_not_red``  leaving flash (FR/FY/OFF) straight to G/Y/W/FDW (or to a
                            flashing yellow arrow)

flashing yellow arrows (``permissive``: a left-turn channel showing FY, a permissive movement,
while the phase it yields to is green; outside a frame of flash states only, such an FY is a
right of way)
    ``conflict``            an arrow beside a conflicting non-red channel it does not yield to
    ``permissive_without_opposing_green`` an arrow while no channel it yields to is green
    ``permissive_not_to_yellow`` an arrow followed by anything but a yellow (or flash)
    ``yellow_to_permissive`` ``Y→FY`` on an arrow channel
    ``short_red_clear``     an arrow starting in a conflicting channel's red clearance

phase behaviour from the controller's ``Outputs`` (:class:`PhaseChecker`)
    ``min_green_truncated`` a green shorter than its min green (under preemption: shorter than
                            ``control.preempt_min_green``); greens cut by flash are exempt
    ``max_green_exceeded``  in the ``max_modes`` (default: actuated) with no hold, no
                            preemption: a green running past max green (max1, or max2 when
                            requested) counted from the start of continuous serviceable
                            conflicting demand, beyond the allowances below
    ``phase_starved``       a called, non-omitted phase waiting longer than ``starvation_bound_s``
                            while the junction runs normally (not in flash, preemption, manual
                            mode or under a hold; the wait restarts on a mode or plan change)

Allowances of the max-green check (each justified by NEMA/NTCIP 1202 operation): a green always
may run its minimum (min green, the variable initial up to ``max_initial``, walk + ped clear);
a phase whose only waiting conflicting demand is across the barrier stays green while another
ring still times a phase of the same barrier group (simultaneous gap-out / barrier crossing);
one tick of measurement slack (``tolerance``).

Entering flash is always allowed (fault flash is immediate by design); FR/FY frames are not
checked for conflicts.
"""

from edgectl.testing.checker.channels import ChannelChecker, check_timeline
from edgectl.testing.checker.findings import Finding
from edgectl.testing.checker.layout import (
    ChannelMinimums,
    channel_minimums,
    derive_channel_conflicts,
    derive_phase_conflicts,
    permissive_channels,
)
from edgectl.testing.checker.phases import PhaseChecker
from edgectl.testing.checker.record import check_record, read_record
from edgectl.testing.checker.safety import SafetyChecker

__all__ = [
    "ChannelChecker",
    "ChannelMinimums",
    "Finding",
    "PhaseChecker",
    "SafetyChecker",
    "channel_minimums",
    "check_record",
    "check_timeline",
    "derive_channel_conflicts",
    "derive_phase_conflicts",
    "permissive_channels",
    "read_record",
]
