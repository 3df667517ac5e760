"""ATSPM: the high-resolution event log as CSV, and what traffic engineers read from it.

- :mod:`edgectl.atspm.events` — read and write ATSPM CSV (``SignalId,Timestamp,EventCode,
  EventParam``, the Indiana enumerations of :class:`edgectl.control.types.EventCode`);
- :mod:`edgectl.atspm.analysis` — phase services, cycles, split monitor data, arrivals on
  green (pure);
- :mod:`edgectl.atspm.plots` — the split monitor and Purdue diagrams (matplotlib, imported
  only when drawing).

``edgectl report`` and ``edgectl export-events`` are built on it; the daemon never imports it.
"""
