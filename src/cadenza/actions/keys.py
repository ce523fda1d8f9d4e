"""API keys of the caller's tenant: create (shown once), list, revoke.

A caller can grant only scopes it holds itself (``admin`` grants anything), so a
key with ``keys:admin`` cannot mint a more powerful key.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pydantic import Field

from cadenza.actions.base import Action, Context, Example, record
from cadenza.actions.identity import issue_api_key
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    Cursor,
    Input,
    Name,
    Output,
    PageLimit,
    Reason,
    UtcTime,
    id_field,
)
from cadenza.domain import errors, limits
from cadenza.domain.identity import ApiKey, KeyKind, Scope, grants

_ADMIN = frozenset({Scope.KEYS_ADMIN})


class ApiKeyOut(Output):
    id: str
    name: str
    prefix: str = Field(description="Visible part of the key: cdz_<prefix>_…")
    scopes: list[Scope]
    kind: KeyKind = Field(description="user, or agent (recorded as an agent in the audit log).")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=sorted(key.scopes),
            kind=key.kind,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class CreateKeyInput(Input):
    name: Name
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(Scope),
        description="jobs:read, jobs:write, schedule:control, runs:read, keys:admin, admin.",
        examples=[["jobs:read", "runs:read"]],
    )
    kind: KeyKind = Field(KeyKind.USER, description="agent for an AI agent's identity.")
    expires_at: UtcTime | None = Field(None, description="Unusable after this; null: never.")
    reason: Reason = ""


class CreatedKeyOut(Output):
    key: ApiKeyOut
    secret: str = Field(description="The whole key. Shown only now: store it safely.")


async def create_api_key(ctx: Context, data: CreateKeyInput) -> CreatedKeyOut:
    wanted = frozenset(data.scopes)
    if not grants(ctx.scopes, wanted):
        raise errors.PermissionDenied("A key cannot be given scopes its creator does not hold.")
    key, plaintext = await issue_api_key(
        ctx.store,
        ctx.clock,
        ctx.services.keyring,
        ctx.tenant_id,
        data.name,
        wanted,
        data.kind,
        data.expires_at,
    )
    async with ctx.store.transaction() as tx:
        changes = {"scopes": sorted(wanted), "kind": data.kind.value}
        await record(ctx, tx, "create_api_key", ("api_key", key.id), data.reason, changes)
    return CreatedKeyOut(key=ApiKeyOut.of(key), secret=plaintext)


class ListKeysInput(Input):
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class ApiKeyPage(Output):
    items: list[ApiKeyOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: end.")


async def list_api_keys(ctx: Context, data: ListKeysInput) -> ApiKeyPage:
    async with ctx.store.transaction(readonly=True) as tx:
        page = await tx.list_api_keys(ctx.tenant_id, cursor=data.cursor, limit=data.limit)
    return ApiKeyPage(items=[ApiKeyOut.of(k) for k in page.items], next_cursor=page.next_cursor)


class RevokeKeyInput(Input):
    key_id: str = id_field("API key", EXAMPLE_IDS["key_id"])
    reason: Reason = ""


async def revoke_api_key(ctx: Context, data: RevokeKeyInput) -> ApiKeyOut:
    now = ctx.now()
    async with ctx.store.transaction() as tx:
        key = await tx.get_api_key(ctx.tenant_id, data.key_id)
        if key.revoked_at is None:
            key = replace(key, revoked_at=now)
            await tx.update_api_key(key)
            await record(ctx, tx, "revoke_api_key", ("api_key", key.id), data.reason)
    # After the commit: a request reading the key meanwhile saw it unrevoked, and
    # forgetting also stops that request from caching what it saw.
    ctx.services.key_cache.forget(key.prefix)
    return ApiKeyOut.of(key)


ACTIONS = (
    Action(
        name="create_api_key",
        summary="Create an API key (shown once)",
        description=(
            "Creates a key for the caller's tenant with the given scopes (only scopes the "
            "caller holds) and returns its secret once. kind=agent marks an AI agent's "
            "identity; its changes are audited as the agent."
        ),
        input_model=CreateKeyInput,
        output_model=CreatedKeyOut,
        handler=create_api_key,
        scopes=_ADMIN,
        method="POST",
        path="/api-keys",
        mutates=True,
        idempotent=False,
        success_status=201,
        examples=(
            Example(
                {"name": "ops-agent", "scopes": ["jobs:read", "schedule:control"], "kind": "agent"},
                "An identity for an AI agent that may read jobs and steer schedules.",
            ),
        ),
    ),
    Action(
        name="list_api_keys",
        summary="List API keys",
        description=(
            "Lists the tenant's keys with prefix, scopes, kind, expiry, last use and "
            "revocation; never their secrets. Pages by keyset; no totals."
        ),
        input_model=ListKeysInput,
        output_model=ApiKeyPage,
        handler=list_api_keys,
        scopes=_ADMIN,
        method="GET",
        path="/api-keys",
        mutates=False,
        idempotent=True,
        examples=(Example({"limit": 20}),),
    ),
    Action(
        name="revoke_api_key",
        summary="Revoke an API key",
        description="Makes a key unusable at once. Revoking a revoked key changes nothing.",
        input_model=RevokeKeyInput,
        output_model=ApiKeyOut,
        handler=revoke_api_key,
        scopes=_ADMIN,
        method="DELETE",
        path="/api-keys/{key_id}",
        mutates=True,
        idempotent=True,
        destructive=True,
        examples=(Example({"key_id": EXAMPLE_IDS["key_id"], "reason": "leaked in a log"}),),
    ),
)
