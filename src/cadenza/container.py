"""The composition root: the only module that picks concrete adapters.

Wiring, in order: settings → clock (``SystemClock``) → secret box → store
(``open_store``) → waker → dispatcher (``HttpDispatcher``) → scheduler. Entry points
and tests share it through two async context managers:

* ``build_runtime(settings)`` yields a ``Runtime`` (clock, secret box, store,
  waker): what every surface of one process shares. The API and the dashboard take
  their store and waker from here, so an action's ``wake()`` reaches this
  process's scheduler at once.
* ``build_worker(settings, runtime)`` yields a ``Worker``: a scheduler with its
  dispatcher, plus, on PostgreSQL, the LISTEN task that carries wake-ups from
  other processes. ``await worker.run()`` works until ``worker.stop()``.

Both close what they opened on exit. ``build_services`` adds what the request-serving
surfaces need on top of a runtime; ``build_http`` and ``build_planner`` make the API
server and the planner loop into services a process runs side by side.

What readies the process itself (logging, the garbage collector, the event loop
policy, the server secret's file, migrations, the first admin) is in
``cadenza.bootstrap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cadenza.adapters.clock import SystemClock
from cadenza.adapters.http import AddressPolicy, HttpDispatcher
from cadenza.adapters.secrets import FernetSecretBox
from cadenza.adapters.store import SqlStore, open_store
from cadenza.adapters.wakeups import is_postgres, listen_for_wakeups
from cadenza.bootstrap import SECRET_FILE, previous_secrets, server_keyring, server_secret
from cadenza.config import Settings
from cadenza.ports import (
    AuthStore,
    Clock,
    Dispatcher,
    NotifyStore,
    PlannerStore,
    SecretBox,
    Store,
)
from cadenza.scheduler import EventWaker, Scheduler, SchedulerOptions

if TYPE_CHECKING:
    from cadenza.actions.base import Services
    from cadenza.notify.delivery import Notifier
    from cadenza.planner.service import PlannerConfig

__all__ = [
    "PlannerService",
    "Runtime",
    "Service",
    "Services",
    "Worker",
    "build_alerts",
    "build_http",
    "build_planner",
    "build_runtime",
    "build_services",
    "build_worker",
    "scheduler_options",
    "secret_box",
]


def __getattr__(name: str) -> object:
    # ``Services`` imports every action (their models, password hashing): ~3 MB of
    # resident memory that a worker process never uses, so it loads on first use.
    if name == "Services":
        from cadenza.actions.base import Services

        return Services
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Service(Protocol):
    """A long-running part of a process: ``run()`` works until ``stop()``."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every part of one process shares."""

    settings: Settings
    clock: Clock
    secret_box: SecretBox
    store: Store
    waker: EventWaker


@dataclass(slots=True)
class Worker:
    """A scheduler, its dispatcher and (on PostgreSQL) its wake-up listener."""

    runtime: Runtime
    scheduler: Scheduler
    dispatcher: Dispatcher

    async def run(self) -> None:
        """Schedule until ``stop()``; the listener lives exactly as long."""
        settings = self.runtime.settings
        listener: asyncio.Task[None] | None = None
        if is_postgres(settings.database_url):
            listener = asyncio.create_task(
                listen_for_wakeups(settings.database_url, self.runtime.waker, self.runtime.clock)
            )
        try:
            await self.scheduler.run()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    def stop(self) -> None:
        self.scheduler.stop()


def secret_box(settings: Settings, path: Path = SECRET_FILE) -> SecretBox:
    """A Fernet box for secret header values: it encrypts with the key derived from
    the server secret and decrypts with that of any previous (or pre-HKDF) secret."""
    return FernetSecretBox(",".join(server_keyring(settings, path).fernet_keys()))


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def scheduler_options(settings: Settings, worker_id: str | None = None) -> SchedulerOptions:
    return SchedulerOptions(
        worker_id=worker_id or settings.worker_id or default_worker_id(),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        claim_batch=settings.claim_batch,
        lookahead=settings.lookahead_seconds,
        poll_interval=settings.poll_interval_seconds,
        lease_margin=settings.lease_margin_seconds,
        max_concurrency=settings.max_concurrency,
        max_per_host=settings.max_per_host,
        shutdown_grace=settings.shutdown_grace_seconds,
        heartbeat_interval=settings.heartbeat_seconds,
        prune_after=settings.dead_worker_prune_seconds,
        # One worker process per SQLite file: any other lease in it is a dead process's.
        sole_worker=settings.database_url.startswith("sqlite"),
    )


@contextlib.asynccontextmanager
async def build_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    clock = SystemClock()
    box = secret_box(settings)
    store = await open_store(settings.database_url, box)
    try:
        yield Runtime(settings, clock, box, store, EventWaker())
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def build_worker(
    settings: Settings, runtime: Runtime | None = None, *, options: SchedulerOptions | None = None
) -> AsyncIterator[Worker]:
    """A worker over ``runtime`` (or a runtime of its own, closed on exit)."""
    async with contextlib.AsyncExitStack() as stack:
        if runtime is None:
            runtime = await stack.enter_async_context(build_runtime(settings))
        dispatcher = HttpDispatcher.from_settings(runtime.clock, settings)
        stack.push_async_callback(dispatcher.close)
        scheduler = Scheduler(
            runtime.store,
            dispatcher,
            runtime.clock,
            runtime.waker,
            options or scheduler_options(settings),
        )
        yield Worker(runtime, scheduler, dispatcher)


def planner_store(store: Store) -> PlannerStore | None:
    """The planner's store beside a SQL store (same engine); none for other stores."""
    # Imported here: it pulls in the actions, which a worker process never needs.
    from cadenza.adapters.store.planner_sql import SqlPlannerStore

    return SqlPlannerStore(store.engine) if isinstance(store, SqlStore) else None


def notify_store(runtime: Runtime) -> NotifyStore | None:
    """Alert channels, rules and incidents beside a SQL store (same engine)."""
    from cadenza.adapters.store.notify_sql import SqlNotifyStore

    if not isinstance(runtime.store, SqlStore):
        return None
    return SqlNotifyStore(runtime.store.engine, runtime.secret_box)


def notifier(runtime: Runtime, store: NotifyStore, dispatcher: Dispatcher) -> Notifier:
    """Deliveries over the HTTP dispatcher (webhook, Slack) and SMTP (e-mail), both
    behind the SSRF guard and its allowlist."""
    from cadenza.adapters.notify import SmtpMailer
    from cadenza.notify.delivery import Notifier

    mailer = SmtpMailer(AddressPolicy.from_allowlist(runtime.settings.ssrf_allowlist))
    return Notifier(store, dispatcher, mailer, runtime.clock)


def auth_store(store: Store) -> AuthStore | None:
    """Sessions and sign-in failures beside a SQL store (same engine)."""
    from cadenza.adapters.store.auth_sql import SqlAuthStore

    return SqlAuthStore(store.engine) if isinstance(store, SqlStore) else None


@contextlib.asynccontextmanager
async def build_services(runtime: Runtime) -> AsyncIterator[Services]:
    """The ports actions run with in this process: the runtime's store, clock and
    waker, a dispatcher of its own (``test_endpoint``), the server secrets and the
    stores of the planner and of sessions."""
    from cadenza.actions.base import Services
    from cadenza.actions.identity import PasswordChecks

    dispatcher = HttpDispatcher.from_settings(runtime.clock, runtime.settings)
    notify = notify_store(runtime)
    try:
        yield Services(
            store=runtime.store,
            clock=runtime.clock,
            waker=runtime.waker,
            dispatcher=dispatcher,
            secret_key=server_secret(runtime.settings),
            previous_secret_keys=previous_secrets(runtime.settings),
            planner=planner_store(runtime.store),
            auth_store=auth_store(runtime.store),
            password_checks=PasswordChecks(runtime.settings.password_check_concurrency),
            targets=AddressPolicy.from_allowlist(runtime.settings.ssrf_allowlist),
            notify=notify,
            notices=None if notify is None else notifier(runtime, notify, dispatcher),
        )
    finally:
        await dispatcher.close()


def build_http(settings: Settings, services: Services) -> Service:
    """The REST API with MCP (streamable HTTP, bearer API keys) mounted at ``/mcp`` and
    the dashboard at ``/``, signing people in through the API's sessions."""
    # Imported here: FastAPI and the MCP SDK are slow to import and only serving needs them.
    from cadenza.adapters.serving import HttpServer
    from cadenza.api import create_app
    from cadenza.api.browser import BrowserSessions
    from cadenza.mcp.http import mount_mcp
    from cadenza.web import mount_dashboard

    app = create_app(services, settings)
    mount_mcp(app, services, rate_limit=app.state.rate_limit)
    mount_dashboard(app, services, BrowserSessions(app.state.auth))
    return HttpServer(app, settings.host, settings.port, settings.shutdown_grace_seconds)


def build_alerts(settings: Settings, services: Services) -> Service | None:
    """The alert loop (``cadenza.notify``), when alerts are on and the store keeps them."""
    from cadenza.notify.incidents import AlertEvaluator
    from cadenza.notify.service import AlertService

    if not settings.alerts_enabled or services.notify is None or services.notices is None:
        return None
    evaluator = AlertEvaluator(
        services.store, services.notify, services.notices, planner=services.planner
    )
    return AlertService(evaluator, services.clock, settings.alert_interval_seconds)


# -- the planner ---------------------------------------------------------------------


class PlannerService:
    """The planner loop (``cadenza.planner.service``) as a ``run()``/``stop()`` service."""

    def __init__(self, services: Services, store: PlannerStore, settings: Settings) -> None:
        self._services = services
        self._store = store
        self._settings = settings
        self._stop = asyncio.Event()

    async def run(self) -> None:
        from cadenza.planner.service import run_planner

        await run_planner(self._services, self._store, planner_config(self._settings), self._stop)

    def stop(self) -> None:
        self._stop.set()


def planner_config(settings: Settings) -> PlannerConfig:
    from cadenza.planner.providers import ModelSettings
    from cadenza.planner.service import PlannerConfig

    model = None
    if settings.planner_model:
        model = ModelSettings(
            provider=settings.planner_model_provider,
            model=settings.planner_model,
            base_url=settings.planner_base_url,
            api_key=settings.planner_api_key,
        )
    return PlannerConfig(
        debounce_seconds=settings.planner_debounce_seconds,
        idle_after_seconds=settings.planner_idle_after_seconds,
        monthly_token_budget=settings.planner_monthly_token_budget,
        model=model,
        max_steps=settings.planner_max_steps,
        max_tokens=settings.planner_max_tokens,
        concurrency=settings.planner_concurrency,
        deadline_seconds=settings.planner_deadline_seconds,
    )


def build_planner(settings: Settings, services: Services) -> PlannerService:
    if services.planner is None:
        raise RuntimeError("The planner needs a SQL store (SQLite or PostgreSQL).")
    return PlannerService(services, services.planner, settings)
