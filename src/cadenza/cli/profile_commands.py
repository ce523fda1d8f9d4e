"""``cadenza profiles``: named servers and keys in the config file
(``cadenza.cli.profiles`` says where it is and how a command picks one)."""

from __future__ import annotations

from typing import Annotated

import typer

from cadenza.cli import exits, output
from cadenza.cli.profiles import config_path, read_config, save_profile, write_config
from cadenza.cli.values import BadValue

profiles = typer.Typer(help="Named servers and API keys for the client commands.")


@profiles.command("set")
def set_profile(
    name: Annotated[str, typer.Argument(help="The profile's name, e.g. local or prod.")],
    url: Annotated[str, typer.Option(help="The server, e.g. http://127.0.0.1:8000.")],
    api_key: Annotated[
        str, typer.Option(help="The cdz_… key to act as.", envvar="CADENZA_NEW_API_KEY")
    ] = "",
    default: Annotated[bool, typer.Option("--default", help="Use it when none is named.")] = False,
) -> None:
    """Add or replace a profile (the file is readable by you only)."""
    path = config_path()
    try:
        save_profile(path, name, url, api_key, default=default)
    except BadValue as exc:
        output.print_error(str(exc))
        raise typer.Exit(exits.BAD_INPUT) from None
    typer.echo(f"Saved profile {name} in {path}.")


@profiles.command("use")
def use_profile(name: Annotated[str, typer.Argument(help="An existing profile.")]) -> None:
    """Make a profile the default."""
    path = config_path()
    try:
        config = read_config(path)
    except BadValue as exc:
        output.print_error(str(exc))
        raise typer.Exit(exits.BAD_INPUT) from None
    known = config.get("profiles", {})
    if name not in known:
        output.print_error(f"No profile {name!r} in {path}.")
        raise typer.Exit(exits.NOT_FOUND)
    write_config(path, name, known)
    typer.echo(f"Profile {name} is the default.")


@profiles.command("list")
def list_profiles() -> None:
    """The profiles, their servers, and which is the default (keys are not shown)."""
    path = config_path()
    try:
        config = read_config(path)
    except BadValue as exc:
        output.print_error(str(exc))
        raise typer.Exit(exits.BAD_INPUT) from None
    default = config.get("default_profile")
    rows = [
        {
            "name": name,
            "url": str(entry.get("url", "")),
            "key": "set" if entry.get("api_key") else "none",
            "default": name == default,
        }
        for name, entry in config.get("profiles", {}).items()
    ]
    output.stdout().print(output.page_table(rows, ("name", "url", "key", "default")))
    output.stderr().print(f"Config file: {path}")
