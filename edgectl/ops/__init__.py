"""Operations: the service manager's notify protocol and the Prometheus metrics.

Nothing here knows about signal timing: the daemon feeds these from its control loop.

- :class:`~edgectl.ops.sdnotify.Notifier` — ``sd_notify(3)`` over an AF_UNIX datagram socket
  (``READY=1``, ``STATUS=``, ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``), and
  :class:`~edgectl.ops.sdnotify.NotifyListener`, the service manager's end, for tests and
  supervisors.
- :class:`~edgectl.ops.metrics.Metrics` — every ``edgectl_*`` metric in its own registry, and
  :meth:`~edgectl.ops.metrics.Metrics.start_http` to serve them.
"""

from edgectl.ops.metrics import Metrics, MetricsServer
from edgectl.ops.sdnotify import Notification, Notifier, NotifyListener

__all__ = ["Metrics", "MetricsServer", "Notification", "Notifier", "NotifyListener"]
