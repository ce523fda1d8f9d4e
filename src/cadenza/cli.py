"""The ``cadenza`` command: ``migrate``, ``worker``, ``serve`` and ``mcp``.

``worker`` runs the scheduler alone (any database; on SQLite, one worker process).
``serve`` runs everything one process offers side by side in one event loop; each
part is a ``Service`` (``run()`` until ``stop()``), so the API server joins as one
more service. SIGTERM or SIGINT stops every service gracefully and the command
exits 0; a second signal cuts the grace period short.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Annotated, Protocol

import structlog
import typer

from cadenza.config import Settings
from cadenza.container import (
    build_http,
    build_runtime,
    build_services,
    build_worker,
    configure_logging,
    freeze_heap,
    install_uvloop,
    migrate_database,
)
from cadenza.domain import errors
from cadenza.simulation.command import sim_command

log = structlog.get_logger("cadenza.cli")

app = typer.Typer(
    help="Cadenza: an adaptive HTTP job scheduler.",
    no_args_is_help=True,
    add_completion=False,
)


class Service(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


@app.callback()
def _options(
    log_format: Annotated[
        str, typer.Option(envvar="CADENZA_LOG_FORMAT", help="text (key=value) or json.")
    ] = "text",
    log_level: Annotated[str, typer.Option(envvar="CADENZA_LOG_LEVEL")] = "info",
) -> None:
    configure_logging(json=log_format == "json", level=log_level)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = Settings()
    migrate_database(settings)
    log.info("database.migrated")


@app.command()
def worker() -> None:
    """Run the scheduler: claim due endpoints and perform their requests."""
    settings = Settings()
    install_uvloop()
    asyncio.run(_worker(settings))


@app.command()
def serve() -> None:
    """Run everything in one process: the scheduler, the REST API and MCP at /mcp."""
    settings = Settings()
    install_uvloop()
    asyncio.run(_serve(settings))


async def _worker(settings: Settings) -> None:
    async with build_worker(settings) as running:
        freeze_heap()
        await run_services({"scheduler": running})


async def _serve(settings: Settings) -> None:
    async with (
        build_runtime(settings) as runtime,
        build_worker(settings, runtime) as running,
        build_services(runtime) as services,
    ):
        http = build_http(settings, services)
        freeze_heap()
        await run_services({"scheduler": running, "http": http})


async def run_services(services: dict[str, Service]) -> None:
    """Run ``services`` until a signal (or one of them ending) stops them all.

    Re-raises the first failure after the others have stopped.
    """
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(s.run(), name=name) for name, s in services.items()]
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        log.info("process.signal", signal=sig.name, graceful=signals == 1)
        if signals == 1:
            _stop_all(services.values())
        else:
            for task in tasks:
                task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        _stop_all(services.values())
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures and signals < 2:
        raise failures[0]
    log.info("process.stopped")


def _stop_all(services: Iterable[Service]) -> None:
    for service in services:
        service.stop()


# -- MCP on stdio (cadenza.mcp_server) ---------------------------------------------


@app.command()
def mcp(
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="CADENZA_API_KEY",
            show_default=False,
            help="The cdz_… API key the agent acts as (an agent-kind key names it in audits).",
        ),
    ] = "",
) -> None:
    """Serve MCP on stdin/stdout for a desktop AI client, as the owner of an API key."""
    if not api_key:
        typer.echo("Set CADENZA_API_KEY or pass --api-key.", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_mcp(Settings(), api_key))
    except errors.AuthenticationFailed as exc:
        typer.echo(f"cadenza mcp: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _mcp(settings: Settings, api_key: str) -> None:
    # Imported here: the MCP SDK is slow to import and only this command needs it.
    from cadenza.mcp_server import run_stdio

    async with build_runtime(settings) as runtime, build_services(runtime) as services:
        await run_stdio(services, api_key)


# -- simulation (cadenza.simulation) ---------------------------------------------


@app.command()
def sim(
    scenario: Annotated[str | None, typer.Argument(help="A scenario name (see --list).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the bundled scenarios.")] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Where report.html and summary.json go.")
    ] = Path("sim-out"),
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 1,
) -> None:
    """Replay a seed scenario on a virtual clock, adaptive against static."""
    sim_command(scenario, list_, out, seed)


def _exit_early(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    # Until a command's event loop installs its own handlers, SIGTERM is a clean exit
    # (nothing is claimed yet); run_services then makes it a graceful shutdown.
    signal.signal(signal.SIGTERM, _exit_early)
    app()


if __name__ == "__main__":
    main()
