"""The machinery every action shares: ``Action``, ``Context``, ``Services``, ``invoke``.

An action is defined once (name, descriptions, input and output models, handler,
scopes, REST route, flags, examples) and every surface iterates the registry.
``invoke`` is the one way to run an action from untrusted input: it checks scopes
first (so a caller without the scope learns nothing about the input's shape),
validates the payload with the input model, strictly about JSON types
(``cadenza.actions.inputs``), and runs the handler.

Handlers receive a ``Context``: who is calling (tenant, actor, scopes) and the ports
they may use. They never read the wall clock, settings or globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel

from cadenza.actions.identity import KeyCache, PasswordChecks
from cadenza.actions.inputs import validate_model
from cadenza.domain import errors
from cadenza.domain.identity import Scope, grants
from cadenza.domain.model import Actor, AuditEvent
from cadenza.ids import new_id
from cadenza.keyring import Keyring
from cadenza.ports import (
    AuthStore,
    Clock,
    Dispatcher,
    NoticeSender,
    NotifyStore,
    PlannerStore,
    Store,
    TargetPolicy,
    Tx,
    Waker,
    is_store_outage,
)

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")
_log = structlog.get_logger("cadenza.actions")


@dataclass(frozen=True, slots=True)
class Services:
    """The ports an action may use, built once by the composition root.

    ``secret_key`` is the server secret and ``previous_secret_keys`` the secrets it
    replaced that still verify during a rotation; ``keyring`` holds the keys derived
    from them, one per purpose (``cadenza.keyring``). ``auth_store`` keeps sessions
    and sign-in failures; without one nobody can sign in. ``password_checks`` bounds
    the Argon2 checks under way in this process. ``targets``, the SSRF guard's policy,
    refuses unreachable literal addresses when an endpoint is saved (without it the
    refusal waits for the first run). ``key_cache`` holds the API
    keys this process read recently, shared by every surface built on these services.
    ``notify`` keeps alert channels, rules and incidents; ``notices`` delivers to a
    channel (a test notification); without them the alert actions are unavailable.
    """

    store: Store
    clock: Clock
    waker: Waker
    dispatcher: Dispatcher
    secret_key: bytes = field(repr=False)
    planner: PlannerStore | None = None
    auth_store: AuthStore | None = None
    previous_secret_keys: tuple[bytes, ...] = field(default=(), repr=False)
    password_checks: PasswordChecks = field(default_factory=PasswordChecks)
    targets: TargetPolicy | None = None
    notify: NotifyStore | None = None
    notices: NoticeSender | None = None
    keyring: Keyring = field(init=False, repr=False)
    key_cache: KeyCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyring", Keyring.of(self.secret_key, self.previous_secret_keys))
        object.__setattr__(self, "key_cache", KeyCache(self.clock))


@dataclass(frozen=True, slots=True)
class Context:
    """One caller in one tenant, and the process's ``Services``.

    ``store``, ``clock`` and ``now()`` are shortcuts for what nearly every handler
    uses; the other ports are reached through ``services`` (``ctx.services.waker``).
    """

    tenant_id: str
    actor: Actor
    scopes: frozenset[Scope]
    services: Services = field(repr=False)

    @classmethod
    def for_caller(
        cls, services: Services, tenant_id: str, actor: Actor, scopes: frozenset[Scope]
    ) -> Context:
        return cls(tenant_id, actor, scopes, services)

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def now(self) -> datetime:
        return self.services.clock.now()


@dataclass(frozen=True, slots=True)
class LineStream:
    """A streamed output: lines produced lazily (CSV, JSON Lines, Server-Sent Events).

    Surfaces that can stream (REST) send each line as it comes; the iterator ends
    on its own bound (row cap, time cap) or when the consumer stops reading.
    """

    media_type: str
    lines: AsyncIterator[str]
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """One valid call of an action: its arguments as one JSON object, ids included
    (placeholders such as ``job_01hx…``), and what the call shows.

    Examples are shown in the MCP tool descriptions and the OpenAPI document, and the
    REST and MCP tests call every one of them (with real ids) on every surface.
    """

    arguments: Mapping[str, Any]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Action(Generic[In, Out]):
    """One public operation. ``output_model`` is the schema of the result; for a
    streaming action (``streams`` set) it describes one streamed item and the
    handler returns a ``LineStream`` of that media type. ``planner_tool`` offers
    the action to the LLM planner (``cadenza.planner.tools``)."""

    name: str
    summary: str
    description: str
    input_model: type[In]
    output_model: type[BaseModel]
    handler: Callable[[Context, In], Awaitable[Out]]
    scopes: frozenset[Scope]
    method: str
    path: str
    mutates: bool
    idempotent: bool
    destructive: bool = False
    planner_tool: bool = False
    streams: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())
    success_status: int = 200
    examples: tuple[Example, ...] = field(default=(), compare=False)

    @property
    def path_params(self) -> tuple[str, ...]:
        """The ``{names}`` in ``path``; each is a field of the input model."""
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


AnyAction = Action[Any, Any]


def check_scopes(action: AnyAction, ctx: Context) -> None:
    """Raise ``PermissionDenied`` unless the caller holds every scope the action needs."""
    if not grants(ctx.scopes, action.scopes):
        needed = ", ".join(sorted(s.value for s in action.scopes - ctx.scopes))
        raise errors.PermissionDenied(f"{action.name} needs the scope(s): {needed}.")


def validate_input(action: Action[In, Any], payload: Mapping[str, Any]) -> In:
    """Parse a JSON-shaped ``payload`` with the action's input model, strictly (see
    ``cadenza.actions.inputs``); failures become ``InvalidInput``."""
    return validate_model(action.input_model, payload)


async def invoke(action: Action[In, Out], ctx: Context, payload: Mapping[str, Any]) -> Out:
    """Check scopes, validate ``payload``, run the handler; errors are domain types."""
    check_scopes(action, ctx)
    data = validate_input(action, payload)
    return await _handle(action, ctx, data)


async def invoke_parsed(action: Action[In, Out], ctx: Context, data: In) -> Out:
    """``invoke`` for input a surface has already parsed with ``action.input_model``."""
    check_scopes(action, ctx)
    return await _handle(action, ctx, data)


async def _handle(action: Action[In, Out], ctx: Context, data: In) -> Out:
    """Run the handler; a database outage becomes ``ServiceUnavailable`` (503 with
    Retry-After, a retryable tool error), logged once without a traceback: the
    request was fine, and retrying it shortly is the right answer."""
    try:
        return await action.handler(ctx, data)
    except errors.CadenzaError:
        raise
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        _log.warning("action.store_unavailable", action=action.name, error=_brief(exc))
        raise errors.ServiceUnavailable(
            "The database cannot serve this right now; retry in a few seconds."
        ) from None


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


async def record(
    ctx: Context,
    tx: Tx,
    action: str,
    target: tuple[str, str],
    reason: str,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Write the audit event of a change inside the change's own transaction."""
    event = audit_event(ctx, ctx.now(), action, target, reason, changes)
    await tx.insert_audit(event)
    return event


def audit_event(
    ctx: Context,
    at: datetime,
    action: str,
    target: tuple[str, str],
    reason: str,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """The audit event of a change by the caller at ``at``, not yet written."""
    return AuditEvent(
        id=new_id("aud", at),
        tenant_id=ctx.tenant_id,
        at=at,
        actor=ctx.actor,
        action=action,
        target_kind=target[0],
        target_id=target[1],
        reason=reason,
        changes=dict(changes or {}),
    )
