"""Structured logs follow ``sys.stderr`` as it is now, not as it was at set-up."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from cadenza.bootstrap import configure_logging


def test_logging_survives_a_stderr_that_was_swapped_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(level="info")
    log = structlog.get_logger("test")
    log.info("first.line")
    first.close()

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.info("second.line", answer=42)

    assert "event=second.line" in second.getvalue()
    assert "answer=42" in second.getvalue()
