"""The ``cadenza`` command: ``serve``, ``worker``, ``planner``, ``migrate``, ``mcp``,
``sim`` and ``admin``.

``worker`` runs the scheduler alone (any database; on SQLite, one worker process).
``serve`` runs everything one process offers side by side in one event loop; each
part is a ``Service`` (``run()`` until ``stop()``), so the API server joins as one
more service. SIGTERM or SIGINT stops every service gracefully and the command
exits 0; a service still running ``STOP_MARGIN`` seconds after the grace period is
cancelled, and a second signal cuts the grace period short.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import structlog
import typer

from cadenza.config import Settings
from cadenza.container import (
    FirstStart,
    Service,
    build_http,
    build_planner,
    build_runtime,
    build_services,
    build_worker,
    configure_logging,
    ensure_admin,
    install_uvloop,
    migrate_database,
    server_keyring,
    tune_gc,
)
from cadenza.domain import errors

log = structlog.get_logger("cadenza.cli")
T = TypeVar("T")

STOP_MARGIN = 5.0
"""Seconds after the grace period for services to record what it cut short."""

app = typer.Typer(
    help="Cadenza: an adaptive HTTP job scheduler.",
    no_args_is_help=True,
    add_completion=False,
)


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
    """Run everything in one process: the REST API, MCP at /mcp, the scheduler and
    the planner."""
    settings = Settings()
    install_uvloop()
    asyncio.run(_serve(settings))


@app.command()
def planner() -> None:
    """Run the planner alone: read run results and steer cadence through hints."""
    settings = Settings()
    install_uvloop()
    asyncio.run(_planner(settings))


async def _worker(settings: Settings) -> None:
    async with build_worker(settings) as running:
        tune_gc()
        await run_services({"scheduler": running}, settings.shutdown_grace_seconds)


async def _serve(settings: Settings) -> None:
    async with (
        build_runtime(settings) as runtime,
        build_worker(settings, runtime) as running,
        build_services(runtime) as services,
    ):
        first_start = await ensure_admin(settings, services)
        parts: dict[str, Service] = {"scheduler": running, "http": build_http(settings, services)}
        if settings.planner_enabled and services.planner is not None:
            parts["planner"] = build_planner(settings, services)
        tune_gc()
        _print_welcome(settings, first_start)
        await run_services(parts, settings.shutdown_grace_seconds)


async def _planner(settings: Settings) -> None:
    async with build_runtime(settings) as runtime, build_services(runtime) as services:
        planner = build_planner(settings, services)
        await run_services({"planner": planner}, settings.shutdown_grace_seconds)


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
        _, late = await asyncio.wait(tasks, timeout=grace + STOP_MARGIN)
        if late:
            log.warning("process.grace_exceeded", services=sorted(t.get_name() for t in late))
            for task in late:
                task.cancel()
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
        asyncio.run(_mcp(Settings(), api_key))
    except errors.AuthenticationFailed as exc:
        typer.echo(f"cadenza mcp: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _mcp(settings: Settings, api_key: str) -> None:
    # Imported here: the MCP SDK is slow to import and only this command needs it.
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


# -- administration -------------------------------------------------------------------

admin = typer.Typer(
    help="Create users and API keys; rotate the server secret.", no_args_is_help=True
)
app.add_typer(admin, name="admin")

_CLI_EXIT = {errors.ValidationError: 2, errors.Conflict: 1, errors.NotFound: 1}


@admin.command("create-user")
def create_user(
    email: Annotated[str, typer.Argument(help="The user's e-mail; each user is a tenant.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="CADENZA_NEW_PASSWORD"
        ),
    ],
    is_admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
) -> None:
    """Create a user who can sign in with e-mail and password."""
    user = _run_admin(_create_user(Settings(), email, password, is_admin))
    typer.echo(f"Created user {user}.")


@admin.command("create-key")
def create_key(
    email: Annotated[str, typer.Option(help="The e-mail of the user (tenant) who owns the key.")],
    name: Annotated[str, typer.Option(help="A label that says who or what uses the key.")],
    scope: Annotated[
        list[str],
        typer.Option(help="A scope to grant; repeat for several (jobs:read … keys:admin, admin)."),
    ],
    agent: Annotated[bool, typer.Option("--agent", help="The key belongs to an AI agent.")] = False,
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create an API key and print it once; only its digest is stored."""
    plaintext = _run_admin(
        _create_key(Settings(), email, name, tuple(scope), agent, expires_in_days)
    )
    typer.echo(plaintext)


@admin.command("rotate-secret")
def rotate_secret() -> None:
    """Re-encrypt stored secrets with CADENZA_SECRET_KEY after a rotation, and report
    what still depends on CADENZA_PREVIOUS_SECRET_KEYS (README: rotating the secret)."""
    for line in _run_admin(_rotate_secret(Settings())):
        typer.echo(line)


async def _rotate_secret(settings: Settings) -> list[str]:
    from cadenza.adapters.store import SqlStore
    from cadenza.adapters.store.rekey import rotate_secret as rotate

    async with build_runtime(settings) as runtime:
        if not isinstance(runtime.store, SqlStore):
            raise errors.ValidationError("rotate-secret needs a SQL database.", "database_url")
        report = await rotate(runtime.store, server_keyring(settings), runtime.clock.now())
    return report.lines()


def _run_admin(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except errors.CadenzaError as exc:
        code = next((c for kind, c in _CLI_EXIT.items() if isinstance(exc, kind)), 1)
        typer.echo(f"cadenza admin: {exc.message}", err=True)
        raise typer.Exit(code) from None


async def _create_user(settings: Settings, email: str, password: str, is_admin: bool) -> str:
    from cadenza.actions.identity import create_user as create

    async with build_runtime(settings) as runtime:
        user = await create(runtime.store, runtime.clock, email, password, is_admin=is_admin)
    return f"{user.email} (tenant {user.tenant_id})"


async def _create_key(
    settings: Settings,
    email: str,
    name: str,
    scopes: tuple[str, ...],
    agent: bool,
    expires_in_days: int | None,
) -> str:
    from cadenza.actions.identity import issue_api_key, normalize_email
    from cadenza.domain.identity import KeyKind, Scope

    unknown = sorted(set(scopes) - {s.value for s in Scope})
    if unknown or not scopes:
        allowed = ", ".join(s.value for s in Scope)
        raise errors.ValidationError(f"Unknown scope(s) {unknown}; use: {allowed}.", "scope")
    async with build_runtime(settings) as runtime:
        async with runtime.store.transaction(readonly=True) as tx:
            user = await tx.find_user_by_email(normalize_email(email))
        if user is None:
            raise errors.UserNotFound(email)
        now = runtime.clock.now()
        expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
        kind = KeyKind.AGENT if agent else KeyKind.USER
        _, plaintext = await issue_api_key(
            runtime.store,
            runtime.clock,
            server_keyring(settings),
            user.tenant_id,
            name,
            frozenset(Scope(s) for s in scopes),
            kind,
            expires,
        )
    return plaintext


def _exit_early(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    # Until a command's event loop installs its own handlers, SIGTERM is a clean exit
    # (nothing is claimed yet); run_services then makes it a graceful shutdown.
    signal.signal(signal.SIGTERM, _exit_early)
    app()


if __name__ == "__main__":
    main()
