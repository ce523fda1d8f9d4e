"""``cadenza demo-target``: the command; the target itself is ``cadenza.cli.demo``."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

DEFAULT_PORT = 8931


def _loopback(host: str) -> str:
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise typer.BadParameter(f"{host!r} is not a loopback address (127.0.0.1, ::1, localhost).")


def demo_target(
    port: Annotated[int, typer.Option(help="The port; 0 picks a free one.")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="A loopback address.", callback=_loopback)
    ] = "127.0.0.1",
    speed: Annotated[
        float, typer.Option(min=0.1, max=100.0, help="Story minutes per real minute.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="The same seed, the same noise.")] = 1,
) -> None:
    """Serve the seed scenarios' systems on loopback for the example manifests.

    Each scenario answers under /<scenario>/…; its story starts with its first
    request. Start cadenza serve with CADENZA_SSRF_ALLOWLIST='["127.0.0.1"]' so
    that it may call a loopback target.
    """
    # Imported here: the simulation package loads the SQL store and aiohttp's
    # server, which no other client command needs.
    from cadenza.cli.demo import serve_demo

    serve_demo(host, port, speed, seed)
