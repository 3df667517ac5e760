"""A SyncService in its own process, for kill -9 / SIGTERM tests.

``python -m tests.sync.service_proc URL STATE_DIR``: publishes an event every 20 ms and a
telemetry message every 100 ms, prints ``connected`` once connected, and on SIGTERM closes
cleanly (``online: false``) and exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import structlog

from tests.sync.conftest import FakeHandler, make_service


async def main(url: str, state_dir: Path) -> int:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    service = make_service(url, state_dir, FakeHandler())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(service.run(), name="proc[sync]")
        i = 0
        announced = False
        while not stop.is_set():
            service.add_events([(datetime.now(UTC), 82, i)])
            if i % 5 == 0:
                service.add_telemetry({"i": i})
            service.publish_state({"mode": "actuated", "i": i // 50})
            i += 1
            if service.connected and not announced:
                print("connected", flush=True)
                announced = True
            await asyncio.sleep(0.02)
        await service.close(timeout=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], Path(sys.argv[2]))))
