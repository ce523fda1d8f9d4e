"""Every command that calls a running server, assembled once per process on demand:
the generated action commands, ``apply`` and ``export``, ``profiles``, and the
``demo-target`` that examples point at."""

from __future__ import annotations

from typing import Any

import typer

from cadenza.actions import REGISTRY
from cadenza.cli import manifest
from cadenza.cli.demo_command import demo_target
from cadenza.cli.generated import action_commands
from cadenza.cli.profile_commands import profiles


def client_commands() -> dict[str, Any]:
    """The commands by name, ready to add to the root group."""
    root, _ = action_commands(REGISTRY)
    root.command("apply")(manifest.apply)
    root.command("export")(manifest.export)
    root.command("demo-target")(demo_target)
    root.add_typer(profiles, name="profiles")
    group = typer.main.get_command(root)
    return dict(getattr(group, "commands", {}))
