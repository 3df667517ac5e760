"""The daemon: the only place that combines field, sync and control (the composition root).

- :mod:`~edgectl.daemon.loop` — :class:`~edgectl.daemon.loop.Daemon`: the tasks and the
  control loop;
- :mod:`~edgectl.daemon.supervisor` — field supervision, pure (stepped with virtual time in
  the tests): the controller clock, detector and output loss, readback, MMU, recovery;
- :mod:`~edgectl.daemon.publish` — systemd, metrics, logs and the MQTT link after each tick;
- :mod:`~edgectl.daemon.port` and :mod:`~edgectl.daemon.operator` — what remote commands
  share with the control loop, and the command handler;
- :mod:`~edgectl.daemon.reload`, :mod:`~edgectl.daemon.schedule`,
  :mod:`~edgectl.daemon.neighbours`, :mod:`~edgectl.daemon.latency` — SIGHUP, the
  time-of-day schedule, neighbour coordination, field latency;
- :mod:`~edgectl.daemon.assemble` — builds it all as ``edgectl run`` runs it.
"""
