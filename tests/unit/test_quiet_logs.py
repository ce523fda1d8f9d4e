"""An idle worker says nothing at info level: its periodic stats are debug lines."""

from __future__ import annotations

import pytest
import structlog
from scheduler_support import rig

from cadenza.bootstrap import configure_logging

pytestmark = pytest.mark.anyio


async def test_an_idle_worker_logs_nothing_at_info_after_starting() -> None:
    with structlog.testing.capture_logs() as logs:
        async with rig(stats_interval=10.0) as r:
            for _ in range(12):
                await r.clock.advance(5.0)
            idle = [e for e in logs if e["event"] != "worker.started"]
    loud = [e for e in idle if e["log_level"] not in ("debug",)]
    assert loud == []
    stats = [e for e in idle if e["event"] == "scheduler.stats"]
    assert all(e["log_level"] == "debug" for e in stats)


def test_unknown_log_formats_and_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging(log_format="yaml")
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="chatty")
