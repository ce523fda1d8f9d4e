"""The ports the core needs. Each has one fake in ``cadenza.testing`` and every
implementation passes the same contract suite (``tests/contract``).

Store contract in brief (SCHEDULING.md §3):

* ``transaction()`` gives a unit of work. Writes inside it are atomic; rows read
  with ``for_update=True`` stay locked until it ends, so read-modify-write by actions
  never loses a concurrent completion and vice versa.
* ``claim_due`` leases up to ``limit`` unleased endpoints with
  ``next_run_at <= now + lookahead``, oldest first, bumping each lease epoch.
* ``complete`` inserts the runs, then for each endpoint still leased by the caller
  at the same epoch re-reads its current state, applies the run and replans
  (``cadenza.domain.lifecycle.after_run``) and releases the lease. Endpoints whose
  lease was lost are left untouched (fencing); their runs are still recorded.
* ``release`` frees leases of claims that never started, without recording a run.
* ``sweep_expired`` frees leases whose ``until`` has passed (``free_leases_of``:
  those of dead workers) and records each attempt as a run: ``lost`` when its
  request never left (``mark_started`` was not called), else ``unknown``. The slot
  is then claimable again (attempt + 1), except after an ``unknown`` attempt of an
  ``at_most_once`` endpoint, which moves on to its next slot (``after_run``).
* Lists page by keyset: ``cursor`` is opaque, ``None`` starts at the beginning; no
  list ever counts rows or uses OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from cadenza.domain.alerts import AlertRule, Channel, Delivery, Incident, Notice
from cadenza.domain.identity import ApiKey, User
from cadenza.domain.model import (
    Actor,
    AuditEvent,
    Endpoint,
    Job,
    PlanSource,
    ResponseCapture,
    Run,
    RunStatus,
)
from cadenza.domain.planning import (
    EndpointPlanner,
    PlannerSession,
    Proposal,
    ProposalStatus,
    WatchState,
)
from cadenza.domain.retention import RetentionPolicy

T = TypeVar("T")


class Clock(Protocol):
    """The only source of time outside tests' fakes."""

    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for measuring durations."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SecretBox(Protocol):
    """Encrypts secret header values at rest."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, sealed: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class JobStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class RunFilter:
    job_id: str | None = None
    endpoint_id: str | None = None
    status: RunStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    target_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None


class Tx(Protocol):
    """One unit of work. ``NotFound`` subclasses are raised for missing rows and for
    rows of another tenant alike."""

    async def get_job(self, tenant_id: str, job_id: str, *, for_update: bool = False) -> Job: ...
    async def insert_job(self, job: Job) -> None: ...
    async def update_job(self, job: Job) -> None: ...
    async def list_jobs(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None,
        now: datetime,
        cursor: str | None,
        limit: int,
    ) -> Page[Job]: ...

    async def get_endpoint(
        self, tenant_id: str, endpoint_id: str, *, for_update: bool = False
    ) -> Endpoint: ...
    async def insert_endpoint(self, endpoint: Endpoint) -> None: ...
    async def insert_endpoints(self, batch: Sequence[Endpoint]) -> None:
        """``insert_endpoint`` for many at once, batched (a bulk set-up); each one's
        job must exist for its tenant."""
        ...

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        """Write everything but the lease, which only the scheduler writes."""
        ...

    async def list_endpoints(
        self,
        tenant_id: str,
        job_id: str,
        *,
        include_archived: bool,
        cursor: str | None,
        limit: int,
    ) -> Page[Endpoint]: ...

    async def get_run(self, tenant_id: str, run_id: str) -> Run: ...
    async def list_runs(
        self, tenant_id: str, flt: RunFilter, *, cursor: str | None, limit: int
    ) -> Page[Run]:
        """Newest first."""
        ...

    async def insert_audit(self, event: AuditEvent) -> None: ...
    async def insert_audits(self, batch: Sequence[AuditEvent]) -> None:
        """``insert_audit`` for many at once, batched."""
        ...

    async def list_audit(
        self, tenant_id: str, flt: AuditFilter, *, cursor: str | None, limit: int
    ) -> Page[AuditEvent]:
        """Newest first."""
        ...

    async def insert_user(self, user: User) -> None: ...
    async def get_user(self, user_id: str) -> User: ...
    async def find_user_by_email(self, email: str) -> User | None: ...
    async def count_users(self) -> int: ...

    async def insert_api_key(self, key: ApiKey) -> None: ...
    async def find_api_key_by_prefix(self, prefix: str) -> ApiKey | None: ...
    async def get_api_key(self, tenant_id: str, key_id: str) -> ApiKey:
        """The tenant's key ``key_id``; ``ApiKeyNotFound`` if absent or another tenant's."""
        ...

    async def list_api_keys(
        self, tenant_id: str, *, cursor: str | None, limit: int
    ) -> Page[ApiKey]: ...
    async def update_api_key(self, key: ApiKey) -> None: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """A leased slot: run ``endpoint`` for ``scheduled_for`` as ``attempt``."""

    endpoint: Endpoint
    scheduled_for: datetime
    source: PlanSource
    attempt: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Completion:
    claim: Claim
    run: Run


@dataclass(frozen=True, slots=True)
class Completed:
    """What ``Store.complete`` did with a batch.

    ``lost``: the endpoints whose lease was no longer ours (their runs are recorded,
    nothing else of theirs is written). ``earliest_next_run``: the earliest
    ``next_run_at`` among the endpoints replanned and released, so that a worker
    learns when those slots come due without asking the store again.
    """

    lost: list[str]
    earliest_next_run: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


class Store(Protocol):
    def transaction(self, *, readonly: bool = False) -> AbstractAsyncContextManager[Tx]: ...

    async def claim_due(
        self,
        worker_id: str,
        now: datetime,
        *,
        lookahead: timedelta,
        limit: int,
        lease_margin: timedelta,
    ) -> list[Claim]:
        """Each lease lasts ``endpoint.request.lease_budget + lease_margin`` from ``now``."""
        ...

    async def complete(
        self, worker_id: str, completions: Sequence[Completion], now: datetime
    ) -> Completed:
        """Record the runs, replan and release every endpoint still ours."""
        ...

    async def release(self, worker_id: str, claims: Sequence[Claim]) -> None: ...

    async def extend_leases(
        self, worker_id: str, claims: Sequence[Claim], until: datetime
    ) -> list[str]:
        """Heartbeat for long runs; returns the ids whose lease is no longer ours."""
        ...

    async def mark_started(
        self, worker_id: str, claims: Sequence[Claim], now: datetime
    ) -> list[str]:
        """Record durably that these claims' requests are about to leave (before they
        do); returns the ids whose lease is no longer ours, whose requests must not go."""
        ...

    async def launch(self, worker_id: str, claims: Sequence[Claim], now: datetime) -> list[str]:
        """``overlap=allow``: these claims' requests are about to leave; each lease
        becomes the run's own and the endpoint moves on to its next slot, claimable
        while fewer than ``max_in_flight`` runs are in flight. Returns the ids whose
        lease is no longer ours, whose requests must not go."""
        ...

    async def sweep_expired(self, now: datetime, *, limit: int = 1000) -> list[Run]: ...

    async def free_leases_of(
        self, owners: Sequence[str] | None, now: datetime, *, keep: str = ""
    ) -> list[Run]:
        """Free every lease of the dead workers ``owners`` (``None``: of every worker
        but ``keep``) at once, expired or not, recording each attempt as the sweeper
        does; the slots are then claimable again."""
        ...

    async def due_load(self, horizon: datetime) -> int:
        """Endpoints leased now or due by ``horizon``: the work the live workers share
        (each claims up to its fair part of it)."""
        ...

    async def next_due_at(self) -> datetime | None:
        """The earliest ``next_run_at`` among unleased endpoints, to size the sleep."""
        ...

    async def register_worker(self, info: WorkerInfo) -> None: ...
    async def heartbeat_worker(self, worker_id: str, now: datetime) -> None: ...
    async def remove_worker(self, worker_id: str) -> None: ...
    async def list_workers(self) -> list[WorkerInfo]: ...

    async def leases_held(self, tenant_id: str | None = None) -> dict[str, int]:
        """Slots leased now, by worker id; only ``tenant_id``'s endpoints when given."""
        ...

    async def count_due(self, now: datetime, *, cap: int) -> int:
        """Unleased endpoints with ``next_run_at <= now``, counted up to ``cap``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """The outcome of one run: every attempt made, summarised by the last one."""

    status: RunStatus
    started_at: datetime
    finished_at: datetime
    http_status: int | None = None
    error: str = ""
    response: ResponseCapture | None = None
    attempts: int = 1
    retry_after: timedelta | None = None


class Dispatcher(Protocol):
    async def dispatch(self, endpoint: Endpoint, scheduled_for: datetime) -> DispatchResult:
        """Perform the endpoint's request (with its retries); never raises for HTTP
        or network failures, which become the result's status and error."""
        ...

    async def close(self) -> None: ...


class TargetPolicy(Protocol):
    """The outbound address policy (the SSRF guard), for checks made before any run."""

    def check_url(self, url: str) -> object:
        """Raise ``UnsafeTarget`` when ``url`` is refused without asking DNS: a scheme
        other than http(s), a literal address in a refused range, a metadata host
        name. Host names are checked again at every connection."""
        ...


class Waker(Protocol):
    """Told whenever an action changes a schedule, so the scheduler replans at once."""

    def wake(self) -> None: ...


class PlannerStore(Protocol):
    """What the planner and its actions persist besides the scheduling state.

    Endpoints, jobs and runs are read through ``Store``; the planner never writes
    them except through the catalogue's actions. ``decide_proposal`` is a
    compare-and-set on the proposal's status, so two people approving at the same
    time apply it once. Lists are newest first and
    page by keyset like every other list.
    """

    async def get_planner(self, tenant_id: str, endpoint_id: str) -> EndpointPlanner:
        """The endpoint's planner settings; the rules-only default when none are set."""
        ...

    async def put_planner(self, config: EndpointPlanner) -> None: ...

    async def insert_session(self, session: PlannerSession) -> None: ...
    async def list_sessions(
        self, tenant_id: str, *, endpoint_id: str | None, cursor: str | None, limit: int
    ) -> Page[PlannerSession]: ...

    async def insert_proposal(self, proposal: Proposal) -> None: ...
    async def get_proposal(self, tenant_id: str, proposal_id: str) -> Proposal: ...
    async def decide_proposal(
        self,
        tenant_id: str,
        proposal_id: str,
        status: ProposalStatus,
        actor: Actor,
        at: datetime,
        note: str = "",
        *,
        expect: ProposalStatus = ProposalStatus.PENDING,
    ) -> Proposal:
        """Move the proposal from ``expect`` to ``status`` atomically; ``AlreadyDecided``
        when it is no longer in ``expect``."""
        ...

    async def list_proposals(
        self,
        tenant_id: str,
        *,
        status: ProposalStatus | None,
        endpoint_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[Proposal]: ...

    async def add_tokens(self, tenant_id: str, month: str, tokens: int) -> int:
        """Add to the tenant's usage in ``month`` (``YYYY-MM``); returns the new total."""
        ...

    async def tokens_used(self, tenant_id: str, month: str) -> int: ...

    async def get_watch(self, endpoint_id: str) -> WatchState | None: ...
    async def put_watch(self, state: WatchState) -> None: ...
    async def due_watches(self, now: datetime, *, limit: int) -> list[WatchState]:
        """Watches with ``due_at <= now``, earliest first."""
        ...

    async def runs_after(self, cursor: str | None, *, limit: int) -> list[Run]:
        """Runs of every tenant with an id above ``cursor`` (oldest first): the
        planner's feed of new results. Ids sort by time, so the last id read is
        the next cursor."""
        ...


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A signed-in browser session, kept server-side so it can be ended.

    Only ``digest``, a keyed digest of the token the browser holds, is stored: the
    stored rows cannot be replayed as cookies.
    """

    id: str
    user_id: str
    digest: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginFailures:
    """Failed sign-ins in a row for one account (an opaque key, not the address)."""

    account: str
    count: int
    last_failed_at: datetime


class AuthStore(Protocol):
    """Sessions and sign-in failures. Every method is atomic on its own.

    ``add_login_failure`` is one atomic increment, so concurrent wrong passwords are
    all counted; a run of failures whose last one is older than ``forget_before``
    starts again from one.
    """

    async def insert_session(self, session: StoredSession) -> None: ...
    async def get_session(self, session_id: str) -> StoredSession | None: ...
    async def delete_session(self, session_id: str) -> bool:
        """Whether there was such a session."""
        ...

    async def delete_user_sessions(self, user_id: str) -> int: ...

    async def login_failures(self, account: str) -> LoginFailures | None: ...
    async def add_login_failure(
        self, account: str, at: datetime, *, forget_before: datetime
    ) -> LoginFailures: ...
    async def clear_login_failures(self, account: str) -> None: ...

    async def purge(self, now: datetime, *, failures_before: datetime) -> None:
        """Delete sessions expired at ``now`` and failures last seen before
        ``failures_before``."""
        ...


# -- observing (metrics) and retention ----------------------------------------------


class Observer(Protocol):
    """Where the core reports what it did, for metrics (``cadenza.adapters.metrics``).

    Every call is synchronous, cheap (a counter bump) and never raises: the scheduler
    calls ``run_finished`` once per run on its hot path. Label values come from
    small fixed sets (statuses, plan sources, route templates), never from ids.
    """

    def run_finished(
        self, status: RunStatus, source: PlanSource, lateness: float, duration: float
    ) -> None:
        """A run this process performed; lateness and duration in seconds."""
        ...

    def claimed(self, count: int) -> None:
        """One claim that leased ``count`` slots (zero: an empty claim)."""
        ...

    def leases_lost(self, reason: str, count: int) -> None:
        """``expired`` (swept from a silent worker) or ``fenced`` (taken over)."""
        ...

    def due_backlog(self, count: int) -> None:
        """Unleased endpoints whose slot has come (sampled now and then)."""
        ...

    def planner_analysis(self, session: PlannerSession) -> None: ...

    def pruned(self, kind: str, count: int) -> None:
        """Rows of ``kind`` (``runs``, ``audit_events``) deleted by retention."""
        ...

    def notification(self, channel_kind: str, ok: bool) -> None:
        """A notification delivered (``ok``) or given up on, by channel kind."""
        ...

    def api_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request, by route template (never the raw path)."""
        ...


class NullObserver:
    """The observer of processes and tests that keep no metrics."""

    def run_finished(
        self, status: RunStatus, source: PlanSource, lateness: float, duration: float
    ) -> None:
        return None

    def claimed(self, count: int) -> None:
        return None

    def leases_lost(self, reason: str, count: int) -> None:
        return None

    def due_backlog(self, count: int) -> None:
        return None

    def planner_analysis(self, session: PlannerSession) -> None:
        return None

    def pruned(self, kind: str, count: int) -> None:
        return None

    def notification(self, channel_kind: str, ok: bool) -> None:
        return None

    def api_request(self, route: str, method: str, status: int, seconds: float) -> None:
        return None


class RetentionStore(Protocol):
    """Retention policies and the deletes that apply them (``cadenza.scheduler.retention``).

    Every prune deletes at most ``limit`` rows, oldest first, in one short transaction
    of its own and returns how many it deleted: a caller repeats it until fewer than
    ``limit`` come back, and no lock is held between calls. Rows are chosen through
    the primary key's order (ids sort by time), so each call costs about ``limit``
    index entries however large the table.
    """

    async def get_policy(self, tenant_id: str) -> RetentionPolicy | None: ...
    async def put_policy(self, policy: RetentionPolicy) -> None: ...
    async def list_policies(self, *, after: str | None, limit: int) -> list[RetentionPolicy]:
        """Policies by tenant id above ``after`` (keyset), ascending."""
        ...

    async def prune_runs_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        """Delete the tenant's oldest runs recorded before ``before``."""
        ...

    async def endpoint_ids(self, tenant_id: str, *, after: str | None, limit: int) -> list[str]:
        """The tenant's endpoint ids above ``after`` (archived ones too), ascending."""
        ...

    async def prune_runs_beyond(self, endpoint_id: str, keep: int, *, limit: int) -> int:
        """Delete the endpoint's oldest runs beyond its newest ``keep``."""
        ...

    async def prune_audit_before(self, tenant_id: str, before: datetime, *, limit: int) -> int:
        """Delete the tenant's oldest audit events made before ``before``."""
        ...


_OUTAGE_NAMES = frozenset(
    {"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"}
)
"""Exception class names that mean "the database cannot serve now", whatever the
driver: PEP 249's ``OperationalError`` (a lost or refused connection, a locked or
full SQLite file) and ``InterfaceError``, SQLAlchemy's wrappers of the same names and
its pool ``TimeoutError``. Matched by name so that no layer above the adapters needs
a driver import."""


def is_store_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or the driver error it wraps) says the database is
    unreachable or refusing work for now, as opposed to a bug or bad data."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, the driver's original, their causes: bounded
        if seen is None:
            return False
        if isinstance(seen, ConnectionError | TimeoutError):
            return True
        if any(cls.__name__ in _OUTAGE_NAMES for cls in type(seen).__mro__):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class NotifyStore(Protocol):
    """Channels, alert rules, incidents and deliveries. Every method is atomic.

    Names of channels and of rules are unique per tenant (``DuplicateName``).
    ``open_incident`` is a compare-and-set: at most one incident is open per rule and
    subject, so two evaluators seeing the same breach open it once (the second gets
    ``None``). Lists are newest first and page by keyset. A channel's ``secret`` is
    returned in clear to the core and sealed at rest.
    """

    async def insert_channel(self, channel: Channel) -> None: ...
    async def get_channel(self, tenant_id: str, channel_id: str) -> Channel: ...
    async def list_channels(self, tenant_id: str) -> list[Channel]: ...
    async def replace_channel(self, channel: Channel) -> None: ...
    async def delete_channel(self, tenant_id: str, channel_id: str) -> None: ...

    async def insert_rule(self, rule: AlertRule) -> None: ...
    async def get_rule(self, tenant_id: str, rule_id: str) -> AlertRule: ...
    async def list_rules(self, tenant_id: str | None) -> list[AlertRule]:
        """The tenant's rules; ``None``: every tenant's (the evaluator)."""
        ...

    async def replace_rule(self, rule: AlertRule) -> None: ...
    async def delete_rule(self, tenant_id: str, rule_id: str) -> None:
        """Delete the rule and resolve nothing: its incidents stay as history."""
        ...

    async def open_incident(self, incident: Incident) -> Incident | None: ...
    async def get_incident(self, tenant_id: str, incident_id: str) -> Incident: ...
    async def update_incident(self, incident: Incident) -> None: ...
    async def open_incidents(self, tenant_id: str | None) -> list[Incident]: ...
    async def list_incidents(
        self, tenant_id: str, *, open_only: bool, cursor: str | None, limit: int
    ) -> Page[Incident]: ...

    async def insert_delivery(self, delivery: Delivery) -> None: ...
    async def list_deliveries(self, tenant_id: str, incident_id: str) -> list[Delivery]:
        """Oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class Mail:
    """One e-mail: the channel's SMTP settings and what to say."""

    host: str
    port: int
    security: str
    username: str
    password: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str


class Mailer(Protocol):
    """Sends e-mail over SMTP."""

    async def send(self, mail: Mail) -> None:
        """Raise ``OSError`` (or a subclass) when the server cannot be reached or
        refuses the message."""
        ...


class NoticeSender(Protocol):
    """Delivers one notice to one channel, retrying, and records the delivery
    (``cadenza.notify.delivery.Notifier``)."""

    async def deliver(self, notice: Notice, channel: Channel, *, retry: bool = True) -> Delivery:
        """``retry=False``: one attempt (a test notification answers at once)."""
        ...
