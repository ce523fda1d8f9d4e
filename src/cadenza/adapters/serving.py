"""The HTTP surfaces as a service: uvicorn under the process's own signal handling."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import uvicorn


class HttpServer:
    """``run()`` serves ``app`` until ``stop()``, with lifespan events on (the MCP
    session manager lives in the app's lifespan). Connections still open ``grace``
    seconds after ``stop()`` (a long event stream) are closed."""

    def __init__(self, app: Any, host: str, port: int, grace: float | None = None) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=None if grace is None else math.ceil(grace),
        )
        self._server = _SignalFreeServer(config)

    async def run(self) -> None:
        await self._server.serve()

    def stop(self) -> None:
        self._server.should_exit = True


class _SignalFreeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The command owns SIGTERM/SIGINT and stops every service itself; uvicorn's
        # own handlers would re-raise the signal after a clean shutdown.
        yield
