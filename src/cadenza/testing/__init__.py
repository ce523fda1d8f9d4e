"""Public test kit: fakes of every port, each passing the same contract suite as the
real adapter. Import from here: ``from cadenza.testing import FrozenClock``."""

from cadenza.testing.auth_store import MemoryAuthStore
from cadenza.testing.clock import FrozenClock
from cadenza.testing.dispatch import EgressGuard, FakeDispatcher, Outcome, StaticResolver
from cadenza.testing.retention_store import MemoryRetentionStore
from cadenza.testing.store import MemoryStore

__all__ = [
    "EgressGuard",
    "FakeDispatcher",
    "FrozenClock",
    "MemoryAuthStore",
    "MemoryRetentionStore",
    "MemoryStore",
    "Outcome",
    "StaticResolver",
]
