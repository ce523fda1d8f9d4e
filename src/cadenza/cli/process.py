"""The process commands: ``serve``, ``worker``, ``planner``, ``migrate``, ``mcp`` and
``sim``.

``worker`` runs the scheduler alone (any database; on SQLite, one worker process).
``serve`` runs everything one process offers side by side in one event loop; each
part is a ``Service`` (``run()`` until ``stop()``), so the API server joins as one
more service. SIGTERM or SIGINT stops every service gracefully and the command
exits 0; a service still running ``STOP_MARGIN`` seconds after the grace period is
cancelled, and a second signal cuts the grace period short. Should closing up after
the services hang (a connection, a thread), the process prints every thread's stack
``EXIT_MARGIN`` seconds later and exits 1: a stop never needs a second signal.
"""

from __future__ import annotations

import asyncio
import faulthandler
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cadenza.bootstrap import install_uvloop, migrate_database, tune_gc
from cadenza.cli.app import app
from cadenza.domain import errors

if TYPE_CHECKING:
    from cadenza.bootstrap import FirstStart
    from cadenza.config import Settings
    from cadenza.container import Service

STOP_MARGIN = 5.0
"""Seconds after the grace period for services to record what it cut short."""

EXIT_MARGIN = 15.0
"""Seconds after that for closing connections and threads before the process gives up."""


def settings_from_env() -> Settings:
    # Imported here, as every dependency of a process command is: the client
    # commands share this module's import and need none of them.
    from cadenza.config import InvalidSettings, load_settings

    try:
        return load_settings()
    except InvalidSettings as exc:
        for problem in exc.problems:
            typer.echo(f"cadenza: invalid setting {problem}", err=True)
        raise typer.Exit(2) from None


def log() -> Any:
    import structlog

    return structlog.get_logger("cadenza.cli")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    settings = settings_from_env()
    migrate_database(settings)
    log().info("database.migrated")


@app.command()
def worker() -> None:
    """Run the scheduler: claim due endpoints and perform their requests."""
    settings = settings_from_env()
    install_uvloop()
    asyncio.run(_worker(settings))


@app.command()
def serve() -> None:
    """Run everything in one process: the REST API, MCP at /mcp, the scheduler and
    the planner."""
    settings = settings_from_env()
    install_uvloop()
    asyncio.run(_serve(settings))


@app.command()
def planner() -> None:
    """Run the planner alone: read run results and steer cadence through hints."""
    settings = settings_from_env()
    install_uvloop()
    asyncio.run(_planner(settings))


async def _worker(settings: Settings) -> None:
    from cadenza.container import build_runtime, build_worker, probe_server

    async with build_runtime(settings) as runtime, build_worker(settings, runtime) as running:
        parts: dict[str, Service] = {"scheduler": running}
        if (probes := probe_server(runtime, running)) is not None:
            parts["probes"] = probes
        tune_gc()
        await run_services(parts, settings.shutdown_grace_seconds)


async def _serve(settings: Settings) -> None:
    from cadenza.bootstrap import ensure_admin
    from cadenza.container import (
        build_alerts,
        build_http,
        build_planner,
        build_pruner,
        build_runtime,
        build_services,
        build_worker,
        readiness,
    )

    async with (
        build_runtime(settings) as runtime,
        build_worker(settings, runtime) as running,
        build_services(runtime) as services,
    ):
        first_start = await ensure_admin(settings, services)
        http = build_http(settings, services, probes=readiness(runtime, running))
        parts: dict[str, Service] = {"scheduler": running, "http": http}
        if settings.planner_enabled and services.planner is not None:
            parts["planner"] = build_planner(settings, services)
        if (pruner := build_pruner(settings, services)) is not None:
            parts["retention"] = pruner
        alerts = build_alerts(settings, services)
        if alerts is not None:
            parts["alerts"] = alerts
        tune_gc()
        _print_welcome(settings, first_start)
        await run_services(parts, settings.shutdown_grace_seconds)


async def _planner(settings: Settings) -> None:
    from cadenza.container import build_planner, build_runtime, build_services, probe_server

    async with build_runtime(settings) as runtime, build_services(runtime) as services:
        parts: dict[str, Service] = {"planner": build_planner(settings, services)}
        if (probes := probe_server(runtime)) is not None:
            parts["probes"] = probes
        await run_services(parts, settings.shutdown_grace_seconds)


def _print_welcome(settings: Settings, first_start: FirstStart | None) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Cadenza is running at {url}",
        f"  API docs:  {url}/docs        MCP (streamable HTTP): {url}/mcp",
    ]
    if first_start is None:
        lines.append("  Sign in with your admin e-mail and password, or use an API key.")
    else:
        password = first_start.generated_password or "(the CADENZA_ADMIN_PASSWORD you set)"
        lines += [
            f"  Admin login:  {first_start.email} / {password}",
            f"  Admin API key (shown once): {first_start.api_key}",
            f"  Try: curl -H 'Authorization: Bearer {first_start.api_key}' {url}/api/v1/me",
        ]
    typer.echo("\n".join(lines), err=True)


async def run_services(services: dict[str, Service], grace: float = 10.0) -> None:
    """Run ``services`` until a signal (or one of them ending) stops them all, each
    given ``grace`` seconds (plus ``STOP_MARGIN``) before it is cancelled.

    Re-raises the first failure after the others have stopped.
    """
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(s.run(), name=name) for name, s in services.items()]
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        log().info("process.signal", signal=sig.name, graceful=signals == 1)
        if signals == 1:
            _exit_by(grace + STOP_MARGIN + EXIT_MARGIN)
            _stop_all(services.values())
        else:
            for task in tasks:
                task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        _stop_all(services.values())
        _, late = await asyncio.wait(tasks, timeout=grace + STOP_MARGIN)
        if late:
            log().warning("process.grace_exceeded", services=sorted(t.get_name() for t in late))
            for task in late:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures and signals < 2:
        raise failures[0]
    log().info("process.stopped")


def _exit_by(seconds: float) -> None:
    """Unless the process has ended ``seconds`` from now, dump every thread's stack to
    stderr (what held it up) and exit with status 1."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def _stop_all(services: Iterable[Service]) -> None:
    for service in services:
        service.stop()


# -- MCP on stdio (cadenza.mcp.server) ---------------------------------------------


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
        asyncio.run(_mcp(settings_from_env(), api_key))
    except errors.AuthenticationFailed as exc:
        typer.echo(f"cadenza mcp: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _mcp(settings: Settings, api_key: str) -> None:
    # Imported here: the MCP SDK is slow to import and only this command needs it.
    from cadenza.container import build_runtime, build_services
    from cadenza.mcp.server import run_stdio

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
    from cadenza.simulation.command import sim_command

    sim_command(scenario, list_, out, seed)
