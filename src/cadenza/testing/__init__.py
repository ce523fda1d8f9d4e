"""Public test kit: fakes of every port, each passing the same contract suite as the
real adapter. Import from here: ``from cadenza.testing import FrozenClock``."""

from cadenza.testing.clock import FrozenClock

__all__ = ["FrozenClock"]
