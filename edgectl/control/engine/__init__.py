"""The NEMA dual-ring timing engine: a pure, deterministic, tick-driven state machine.

``Engine(config).step(now, inputs, requests) -> Outputs``. Time is counted in integer ticks of
0.1 s; every timer is a timestamp (the tick an interval began), so a repeated tick changes
nothing and a skipped tick only makes intervals longer — a safety minimum is never skipped.
Configured seconds are converted with ``ceil`` (never rounding a minimum down) and yellow is
never below 3.0 s.

Operating states: start-up flash → all-red → NORMAL (each ring's start-up phase green).
NORMAL is the dual-ring, barrier-synchronised actuated controller of NEMA TS2 / NTCIP 1202:

- a ring's next phase is the next called, non-omitted phase after the current one in its
  sequence within the current barrier group; when there is none but a call waits beyond the
  barrier, the phase becomes *ready to terminate* and stays green until every ring of the group
  is ready (simultaneous gap-out); then all rings clear together and cross the barrier into the
  next group (cyclically) with a call, where each ring starts its first called phase, or its
  dual-entry phase, or rests red;
- green: minimum (min green, variable initial, walk + ped clear) → gap-out (passage timer) /
  max-out (max 1 or 2, started by a conflicting call) / force-off; only when a conflicting
  call is waiting (or rest in red is configured); hold suspends gap- and max-out;
- yellow and red clearance run exactly as configured (never less; a red clearance of 0 s
  still shows one red frame, so no Y→G), no G→R and no Y→G;
- pedestrians: a ped call at green start times walk then ped clear (min green stretched to
  cover them); a push during its own walk is served by that walk, a push after it is served
  at the phase's next green (it counts as demand beyond the barrier).

PREEMPT clears every non-dwell phase (green truncated to ``control.preempt_min_green`` at
most, walk truncated to its ped clearance which runs in full, full yellow and red clearance)
and then dwells in the preempt phases. Commanded flash clears the same way (without
truncating min green) and then flashes (while it clears, ``Outputs.state`` is PREEMPT with no
preempt input active and ``alarms``/events unchanged; a non-flash ``SetMode`` or ``ExitFlash``
cancels it); fault flash is immediate. ``ExitFlash`` from a fault flash is latched and taken
once ``control.min_recovery_flash`` has passed.

Kernel guards beyond the timing rules: a ``next_phase`` request is ignored while any call has
waited longer than one cycle at max green (no strategy can starve a phase); an overlap channel
turns green only when none of the phases it conflicts with is timing, and those phases do not
start while it is still clearing; plan changes apply at the next barrier crossing (or at once
in flash / all-red).

The parts, one concern each (private modules; :class:`Engine` composes them):

==================  ===========================================================================
``_layout``          phases, rings, barrier groups and the conflict rule (the config's matrix)
``_timing``          plan timing in ticks (:class:`PhaseTimes`), plan changes at safe points
``_rings``           each ring's interval state, the green phases, the group in service
``_demand``          detectors, vehicle and pedestrian calls, omit and hold
``_phases``          green, yellow and red clearance of each ring's phase; next phase in group
``_barrier``         rings waiting at the barrier and crossing it together
``_pedestrian``      walk, ped clearance, don't walk
``_preempt``         preemption, and the clearance before a commanded flash
``_frame``           the channel frame: vehicle, pedestrian, overlap and flashing-arrow channels
``_states``          operating states: start-up flash, all-red, NORMAL, flash
==================  ===========================================================================
"""

from edgectl.control.engine._engine import Engine
from edgectl.control.engine._timing import PhaseTimes, mode_code

__all__ = ["Engine", "PhaseTimes", "mode_code"]
