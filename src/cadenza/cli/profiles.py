"""Where the CLI finds the server it talks to, and the key it acts as.

In order of precedence:

1. ``--profile NAME``: that profile of the config file, whole;
2. ``CADENZA_URL`` and ``CADENZA_API_KEY`` from the environment;
3. the profile named by ``CADENZA_PROFILE``, or else the file's ``default_profile``;
4. ``http://127.0.0.1:8000`` and no key.

The config file is TOML, at ``$CADENZA_CONFIG`` or
``$XDG_CONFIG_HOME/cadenza/config.toml`` (``~/.config/cadenza/config.toml``)::

    default_profile = "local"

    [profiles.local]
    url = "http://127.0.0.1:8000"
    api_key = "cdz_…"

It holds keys, so the CLI writes it readable by its owner only.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.cli.values import BadValue

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Connection:
    """A server's base URL (without ``/api/v1``) and the API key to send, if any."""

    url: str
    api_key: str
    profile: str | None = None

    @property
    def api(self) -> str:
        return self.url + API_PREFIX


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("CADENZA_CONFIG"):
        return Path(env["CADENZA_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "cadenza" / "config.toml"


def read_config(path: Path) -> dict[str, Any]:
    """The config file's content; an absent file is an empty config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadValue(f"{path} is not valid TOML: {exc}.") from None


def normalize_url(url: str) -> str:
    """A base URL without a trailing slash or ``/api/v1``, so either form works."""
    trimmed = url.strip().rstrip("/")
    if trimmed.endswith(API_PREFIX):
        trimmed = trimmed[: -len(API_PREFIX)]
    if not trimmed.startswith(("http://", "https://")):
        raise BadValue(f"{url!r} is not an http:// or https:// URL.")
    return trimmed


def resolve(profile: str | None, env: Mapping[str, str] = os.environ) -> Connection:
    """The connection to use (see the module docstring for the order)."""
    config = read_config(config_path(env))
    profiles: dict[str, Any] = config.get("profiles", {})
    if profile is not None:
        return _from_profile(profile, profiles)
    named = env.get("CADENZA_PROFILE") or config.get("default_profile")
    fallback = _from_profile(named, profiles) if named else Connection(DEFAULT_URL, "")
    return Connection(
        normalize_url(env.get("CADENZA_URL") or fallback.url),
        env.get("CADENZA_API_KEY") or fallback.api_key,
        fallback.profile,
    )


def _from_profile(name: str, profiles: Mapping[str, Any]) -> Connection:
    entry = profiles.get(name)
    if not isinstance(entry, dict):
        known = ", ".join(sorted(profiles)) or "none yet; add one with: cadenza profiles set"
        raise BadValue(f"No profile {name!r} in the config file (known: {known}).")
    return Connection(
        normalize_url(str(entry.get("url", DEFAULT_URL))), str(entry.get("api_key", "")), name
    )


def save_profile(path: Path, name: str, url: str, api_key: str, *, default: bool) -> None:
    """Add or replace profile ``name``; the file is written readable by its owner only."""
    config = read_config(path)
    profiles: dict[str, Any] = dict(config.get("profiles", {}))
    profiles[name] = {"url": normalize_url(url), "api_key": api_key}
    default_profile = name if default or "default_profile" not in config else None
    write_config(path, default_profile or str(config["default_profile"]), profiles)


def write_config(path: Path, default_profile: str, profiles: Mapping[str, Any]) -> None:
    # JSON strings are valid TOML basic strings, so quoting needs no TOML library.
    lines = [f"default_profile = {json.dumps(default_profile)}"]
    for name in sorted(profiles):
        lines += ["", f"[profiles.{json.dumps(name)}]"]
        lines += [f"{key} = {json.dumps(str(value))}" for key, value in profiles[name].items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    path.chmod(0o600)
