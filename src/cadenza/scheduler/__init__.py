"""Claim, dispatch, record, plan: the worker loop and its helpers (SCHEDULING.md §3).

The scheduler depends only on ports: the container hands it a ``Store``, a
``Dispatcher``, a ``Clock`` and the process's ``EventWaker``.
"""

from cadenza.scheduler.engine import Scheduler
from cadenza.scheduler.options import SchedulerOptions
from cadenza.scheduler.stats import Stats
from cadenza.scheduler.waker import EventWaker

__all__ = ["EventWaker", "Scheduler", "SchedulerOptions", "Stats"]
