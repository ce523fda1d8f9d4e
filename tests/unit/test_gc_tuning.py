"""A long-running process freezes its start-up heap and collects less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cadenza.bootstrap import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_what_exists_and_raises_the_thresholds() -> None:
    survivor = [object()]  # a container the collector tracks, alive before tuning

    tune_gc()

    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert not any(survivor is o for o in gc.get_objects()), "start-up objects are frozen"
    assert GC_THRESHOLDS[0] > 700, "young collections are rarer than the interpreter's"
