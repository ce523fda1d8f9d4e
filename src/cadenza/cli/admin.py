"""``cadenza admin``: users and API keys, written straight into the database, and the
re-encryption of stored secrets after the server secret is rotated.

These commands open the database from the usual settings (``CADENZA_DATABASE_URL``,
``CADENZA_SECRET_KEY``), so they work before any server runs: the first user, a
key for a script. Failures exit with the code of their kind (``cadenza.cli.exits``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cadenza.cli.app import app
from cadenza.cli.exits import exit_code
from cadenza.cli.process import settings_from_env
from cadenza.domain import errors

if TYPE_CHECKING:
    from cadenza.config import Settings

T = TypeVar("T")

admin = typer.Typer(
    help="Create users and API keys; rotate the server secret.", no_args_is_help=True
)
app.add_typer(admin, name="admin")


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
    user = _run_admin(_create_user(settings_from_env(), email, password, is_admin))
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
        _create_key(settings_from_env(), email, name, tuple(scope), agent, expires_in_days)
    )
    typer.echo(plaintext)


@admin.command("rotate-secret")
def rotate_secret() -> None:
    """Re-encrypt stored secrets with CADENZA_SECRET_KEY after a rotation, and report
    what still depends on CADENZA_PREVIOUS_SECRET_KEYS (README: rotating the secret)."""
    for line in _run_admin(_rotate_secret(settings_from_env())):
        typer.echo(line)


async def _rotate_secret(settings: Settings) -> list[str]:
    from cadenza.adapters.store import SqlStore
    from cadenza.adapters.store.rekey import rotate_secret as rotate
    from cadenza.bootstrap import server_keyring
    from cadenza.container import build_runtime

    async with build_runtime(settings) as runtime:
        if not isinstance(runtime.store, SqlStore):
            raise errors.ValidationError("rotate-secret needs a SQL database.", "database_url")
        report = await rotate(runtime.store, server_keyring(settings), runtime.clock.now())
    return report.lines()


def _run_admin(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except errors.CadenzaError as exc:
        typer.echo(f"cadenza admin: {exc.message}", err=True)
        raise typer.Exit(exit_code(type(exc))) from None


async def _create_user(settings: Settings, email: str, password: str, is_admin: bool) -> str:
    from cadenza.actions.identity import create_user as create
    from cadenza.container import build_runtime

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
    from cadenza.bootstrap import server_keyring
    from cadenza.container import build_runtime
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
