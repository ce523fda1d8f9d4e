"""Process set-up: what an entry point does once before and around its wiring.

Logging, the event loop policy, the garbage collector, the server secret (given, or
generated once into a file), the database schema, and the first admin. The
composition root (``cadenza.container``) wires adapters; this module only readies
the process they run in, so neither grows the other's concerns.

Adapters are imported where they are used: every ``cadenza`` command configures
logging through this module, and a command that only calls a server should not
load the database drivers and the HTTP dispatcher to do so.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cadenza.keyring import Keyring

if TYPE_CHECKING:
    import structlog

    from cadenza.actions.base import Services
    from cadenza.config import Settings

__all__ = [
    "GC_THRESHOLDS",
    "LOG_FORMATS",
    "SECRET_FILE",
    "FirstStart",
    "configure_logging",
    "ensure_admin",
    "install_uvloop",
    "load_secret_key",
    "migrate_database",
    "previous_secrets",
    "server_keyring",
    "server_secret",
    "tune_gc",
]

SECRET_FILE = Path(".cadenza-secret")
"""Where a generated key lives when ``settings.secret_key`` is empty."""


def load_secret_key(settings: Settings, path: Path = SECRET_FILE) -> str:
    """``settings.secret_key``, or a key generated once into ``path`` (mode 600)."""
    if settings.secret_key:
        return settings.secret_key
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    from cadenza.adapters.secrets import FernetSecretBox

    key = FernetSecretBox.generate_key()
    # O_EXCL: two processes starting together must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def server_secret(settings: Settings, path: Path = SECRET_FILE) -> bytes:
    """The server secret every purpose's key is derived from (``cadenza.keyring``)."""
    return load_secret_key(settings, path).encode()


def previous_secrets(settings: Settings) -> tuple[bytes, ...]:
    """Secrets replaced by ``secret_key`` that still verify during a rotation."""
    return tuple(s.encode() for s in settings.previous_secret_keys if s)


def server_keyring(settings: Settings, path: Path = SECRET_FILE) -> Keyring:
    """The keys derived from the server secret and the previous ones."""
    return Keyring.of(server_secret(settings, path), previous_secrets(settings))


GC_THRESHOLDS = (50_000, 20, 100)
"""Collector thresholds for a long-running process (the interpreter's are 700, 10, 10)."""


def tune_gc() -> None:
    """Ready the cyclic garbage collector for a long-running process; call once, when
    it has started.

    Everything allocated so far (modules, settings, connections) is frozen: a full
    collection otherwise rescans those ~150k objects each time, a pause of ~100 ms
    that lands on runs' start times (measured: lateness p99 76–355 ms without, 14 ms
    with, at 1,000 runs/s on PostgreSQL).

    The thresholds are raised because a busy worker makes little cyclic garbage
    (about one object per five runs, counted over 30k runs) yet, at 700, ran a young
    collection every ~11 runs and a full one every ~1,300, each traversing every
    request, claim and ticket in flight. Raising them cut the worker's CPU per run by
    10–15% (157 to 134–140 µs at 10k due endpoints on PostgreSQL,
    ``bench/throughput.py``). What it costs: reference cycles wait for up to 50k
    more allocations before they are freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def migrate_database(settings: Settings) -> None:
    from cadenza.adapters.store import migrate

    migrate(settings.database_url)


def install_uvloop() -> bool:
    """Make uvloop the event loop policy when it is installed; returns whether it is."""
    from cadenza.adapters.http.loop import install_uvloop as install

    return install()


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is when the line is written.

    structlog's own print logger keeps the stream it was created with; a process that
    swaps stderr (a test runner, an embedding program) would then write to a closed
    stream."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


LOG_FORMATS = ("console", "json", "text")
"""``CADENZA_LOG_FORMAT``: ``console`` (key=value lines for people; ``text`` is its
older name) or ``json`` (one object per line, for log collectors)."""


def configure_logging(*, log_format: str = "console", level: str = "info") -> None:
    """One structured line per event on stderr, in ``log_format`` (``LOG_FORMATS``).

    At ``info`` an idle process is silent after starting: periodic figures (the
    scheduler's stats) are ``debug`` lines, and ``/metrics`` carries them.
    """
    import structlog

    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"Unknown log level {level!r}.")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"Unknown log format {log_format!r}: use console or json.")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; keep them to warnings and up.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING))


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What a person needs to sign in the first time; shown once, never stored."""

    email: str
    generated_password: str | None
    api_key: str


async def ensure_admin(settings: Settings, services: Services) -> FirstStart | None:
    """Create the first admin and an admin API key when the database has no users."""
    from cadenza.actions.identity import ensure_admin as create_first_admin

    created = await create_first_admin(
        services.store,
        services.clock,
        services.keyring,
        settings.admin_email,
        settings.admin_password,
    )
    if created is None:
        return None
    user, generated_password, api_key = created
    return FirstStart(user.email, generated_password, api_key)
