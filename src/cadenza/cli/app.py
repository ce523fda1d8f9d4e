"""The root ``cadenza`` command.

Two families of commands share it. Process commands (``serve``, ``worker``,
``planner``, ``migrate``, ``mcp``, ``sim``, ``admin``) run Cadenza itself and are
registered at import. Client commands (one per catalogue action, ``apply``,
``export``, ``profiles``, ``demo-target``) call a running server; ``LazyGroup`` loads
them only when one is asked for or listed, so a ``cadenza worker`` process never
imports the action catalogue, its models or an HTTP client it does not use.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cadenza.bootstrap import configure_logging


class LazyGroup(TyperGroup):
    """A group whose client commands are added the first time they are needed."""

    _loaded = False
    client_names: frozenset[str] = frozenset()

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and not self._loaded:
            self._load()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from cadenza.cli.client_commands import client_commands

        added = client_commands()
        for name, command in added.items():
            self.commands.setdefault(name, command)
        self.client_names = frozenset(added)


app = typer.Typer(
    cls=LazyGroup,
    help="Cadenza: an adaptive HTTP job scheduler.",
    no_args_is_help=True,
    add_completion=True,
)


@app.callback()
def _options(
    ctx: typer.Context,
    log_format: Annotated[
        str,
        typer.Option(envvar="CADENZA_LOG_FORMAT", help="console (key=value lines) or json."),
    ] = "console",
    log_level: Annotated[str, typer.Option(envvar="CADENZA_LOG_LEVEL")] = "info",
) -> None:
    # Client commands print results, not logs; configuring structlog would only
    # slow them down.
    if ctx.invoked_subcommand not in getattr(ctx.command, "client_names", ()):
        try:
            configure_logging(log_format=log_format, level=log_level)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
