"""Users, API keys and scopes. Each user is a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    SCHEDULE_CONTROL = "schedule:control"
    RUNS_READ = "runs:read"
    KEYS_ADMIN = "keys:admin"
    ADMIN = "admin"


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


def grants(held: frozenset[Scope], needed: frozenset[Scope]) -> bool:
    """``admin`` implies every scope; otherwise every needed scope must be held."""
    return Scope.ADMIN in held or needed <= held


class KeyKind(StrEnum):
    USER = "user"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str
    created_at: datetime
    is_admin: bool = False

    @property
    def tenant_id(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: only its digest is kept; ``prefix`` is shown to identify it."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    digest: str
    scopes: frozenset[Scope]
    kind: KeyKind
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
