"""The ``cadenza`` command line (``cadenza.cli.app`` describes its two families)."""

from __future__ import annotations

import signal
from types import FrameType

from cadenza.cli import admin, process
from cadenza.cli.app import app

__all__ = ["admin", "app", "main", "process"]


def _exit_early(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    # Until a command's event loop installs its own handlers, SIGTERM is a clean exit
    # (nothing is claimed yet); run_services then makes it a graceful shutdown.
    signal.signal(signal.SIGTERM, _exit_early)
    app()
