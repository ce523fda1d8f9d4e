"""The planner's actions: its settings per endpoint, its proposals, its sessions.

Planner proposals are applied through the same schedule actions people use
(``apply_interval_hint``, ``schedule_one_shot_run``, ``pause_or_resume_endpoint``,
``clear_adaptive_hints``); ``apply_proposal`` is that one mapping. In approval mode
they wait as ``pending`` until ``decide_proposal``: approving applies the stored
arguments as the approving person (the audit log names them), and a proposal that
the schedule action refuses by then (say, a pause whose end has passed) is marked
``refused`` with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from cadenza.actions import hints
from cadenza.actions.base import Action, AnyAction, Context, Example, invoke, record
from cadenza.actions.endpoints import ENDPOINT_ID, EndpointRef
from cadenza.actions.planner_models import PlannerSettingsIn, PlannerSettingsOut
from cadenza.actions.wire import (
    EXAMPLE_IDS,
    ActorOut,
    Cursor,
    Input,
    Output,
    PageLimit,
    Reason,
    id_field,
)
from cadenza.domain import errors, limits
from cadenza.domain.identity import Scope
from cadenza.domain.planning import (
    PlannerKind,
    PlannerSession,
    Proposal,
    ProposalStatus,
    SessionOutcome,
    Trigger,
    Verb,
)
from cadenza.ports import PlannerStore

_BY_NAME: dict[str, AnyAction] = {a.name: a for a in hints.ACTIONS}
VERB_ACTIONS: dict[Verb, str] = {
    Verb.INTERVAL_HINT: "apply_interval_hint",
    Verb.ONE_SHOT: "schedule_one_shot_run",
    Verb.PAUSE: "pause_or_resume_endpoint",
    Verb.RESUME: "pause_or_resume_endpoint",
    Verb.CLEAR_HINTS: "clear_adaptive_hints",
}


async def apply_proposal(
    ctx: Context, verb: Verb, target_id: str, arguments: dict[str, Any]
) -> None:
    """Run the catalogue action behind ``verb`` on ``target_id``; errors are domain types."""
    action = _BY_NAME[VERB_ACTIONS[verb]]
    await invoke(action, ctx, {**arguments, "endpoint_id": target_id})


def planner_store(ctx: Context) -> PlannerStore:
    store = ctx.services.planner
    if store is None:
        raise errors.Conflict("The planner is not configured on this server.")
    return store


class ProposalOut(Output):
    id: str
    session_id: str
    endpoint_id: str = Field(description="The endpoint whose analysis proposed it.")
    target_id: str = Field(description="The endpoint it changes (itself or a sibling).")
    verb: Verb
    action: str = Field(description="The catalogue action that applies it.")
    arguments: dict[str, Any] = Field(description="That action's arguments, after clamping.")
    status: ProposalStatus
    note: str = Field(description="What was clamped, or why it was refused.")
    created_at: datetime
    decided_at: datetime | None
    decided_by: ActorOut | None

    @classmethod
    def of(cls, p: Proposal) -> ProposalOut:
        return cls(
            id=p.id,
            session_id=p.session_id,
            endpoint_id=p.endpoint_id,
            target_id=p.target_id,
            verb=p.verb,
            action=VERB_ACTIONS[p.verb],
            arguments=p.arguments,
            status=p.status,
            note=p.note,
            created_at=p.created_at,
            decided_at=p.decided_at,
            decided_by=None if p.decided_by is None else ActorOut.of(p.decided_by),
        )


class ListProposalsInput(Input):
    status: ProposalStatus | None = Field(None, description="Only proposals in this status.")
    endpoint_id: str | None = Field(None, max_length=64, description="Only this endpoint's.")
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class ProposalPage(Output):
    items: list[ProposalOut]
    next_cursor: str | None


async def list_proposals(ctx: Context, data: ListProposalsInput) -> ProposalPage:
    page = await planner_store(ctx).list_proposals(
        ctx.tenant_id,
        status=data.status,
        endpoint_id=data.endpoint_id,
        cursor=data.cursor,
        limit=data.limit,
    )
    return ProposalPage(items=[ProposalOut.of(p) for p in page.items], next_cursor=page.next_cursor)


class DecideProposalInput(Input):
    proposal_id: str = id_field("proposal", EXAMPLE_IDS["proposal_id"])
    decision: Literal["approve", "reject"]
    reason: Reason = ""


async def decide_proposal(ctx: Context, data: DecideProposalInput) -> ProposalOut:
    store = planner_store(ctx)
    now = ctx.now()
    current = await store.get_proposal(ctx.tenant_id, data.proposal_id)
    if data.decision == "reject":
        decided = await store.decide_proposal(
            ctx.tenant_id, current.id, ProposalStatus.REJECTED, ctx.actor, now, data.reason
        )
        return ProposalOut.of(decided)
    # Claim it first: of two people approving at once, only one applies it.
    claimed = await store.decide_proposal(
        ctx.tenant_id, current.id, ProposalStatus.APPLIED, ctx.actor, now, data.reason
    )
    reason = f"Approved planner proposal {claimed.id}. {claimed.arguments.get('reason', '')}"
    arguments = {**claimed.arguments, "reason": reason.strip()[: limits.MAX_REASON_LENGTH]}
    try:
        await apply_proposal(ctx, claimed.verb, claimed.target_id, arguments)
    except errors.CadenzaError as exc:
        refused = await store.decide_proposal(
            ctx.tenant_id,
            claimed.id,
            ProposalStatus.REFUSED,
            ctx.actor,
            now,
            exc.message,
            expect=ProposalStatus.APPLIED,
        )
        return ProposalOut.of(refused)
    return ProposalOut.of(claimed)


class ToolCallOut(Output):
    name: str
    arguments: dict[str, Any]
    outcome: str


class SessionOut(Output):
    id: str
    endpoint_id: str
    job_id: str
    planner: PlannerKind
    model: str
    trigger: Trigger
    started_at: datetime
    finished_at: datetime
    outcome: SessionOutcome
    summary: str = Field(description="The planner's short analysis.")
    input_tokens: int
    output_tokens: int
    tool_calls: list[ToolCallOut]
    proposal_ids: list[str]
    next_look_at: datetime | None = Field(description="When the planner asked to look again.")
    error: str

    @classmethod
    def of(cls, s: PlannerSession) -> SessionOut:
        return cls(
            id=s.id,
            endpoint_id=s.endpoint_id,
            job_id=s.job_id,
            planner=s.planner,
            model=s.model,
            trigger=s.trigger,
            started_at=s.started_at,
            finished_at=s.finished_at,
            outcome=s.outcome,
            summary=s.summary,
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            tool_calls=[
                ToolCallOut(name=c.name, arguments=c.arguments, outcome=c.outcome)
                for c in s.tool_calls
            ],
            proposal_ids=list(s.proposal_ids),
            next_look_at=s.next_look_at,
            error=s.error,
        )


class ListSessionsInput(Input):
    endpoint_id: str | None = Field(None, max_length=64, description="Only this endpoint's.")
    cursor: Cursor = None
    limit: PageLimit = limits.DEFAULT_PAGE_SIZE


class SessionPage(Output):
    items: list[SessionOut]
    next_cursor: str | None


async def list_planner_sessions(ctx: Context, data: ListSessionsInput) -> SessionPage:
    page = await planner_store(ctx).list_sessions(
        ctx.tenant_id, endpoint_id=data.endpoint_id, cursor=data.cursor, limit=data.limit
    )
    return SessionPage(items=[SessionOut.of(s) for s in page.items], next_cursor=page.next_cursor)


async def get_endpoint_planner(ctx: Context, data: EndpointRef) -> PlannerSettingsOut:
    async with ctx.store.transaction(readonly=True) as tx:
        await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
    config = await planner_store(ctx).get_planner(ctx.tenant_id, data.endpoint_id)
    return PlannerSettingsOut(endpoint_id=data.endpoint_id, settings=PlannerSettingsIn.of(config))


class SetPlannerInput(PlannerSettingsIn):
    endpoint_id: str = ENDPOINT_ID
    reason: Reason = ""


async def set_endpoint_planner(ctx: Context, data: SetPlannerInput) -> PlannerSettingsOut:
    config = data.to_domain(ctx.tenant_id, data.endpoint_id)
    settings = PlannerSettingsIn.of(config)
    async with ctx.store.transaction() as tx:
        await tx.get_endpoint(ctx.tenant_id, data.endpoint_id)
        await record(
            ctx,
            tx,
            "set_endpoint_planner",
            ("endpoint", data.endpoint_id),
            data.reason,
            settings.model_dump(mode="json"),
        )
    await planner_store(ctx).put_planner(config)
    return PlannerSettingsOut(endpoint_id=data.endpoint_id, settings=settings)


_READ = frozenset({Scope.JOBS_READ})
_PLANNER_TAGS = ("planner",)

ACTIONS = (
    Action(
        name="list_proposals",
        summary="List the planner's proposals",
        description=(
            "Every change a planner proposed, newest first, with its status: pending "
            "(waiting for approval), applied, refused (invalid or not allowed; never "
            "applied) or rejected. Filter by status or endpoint."
        ),
        input_model=ListProposalsInput,
        output_model=ProposalPage,
        handler=list_proposals,
        scopes=_READ,
        method="GET",
        path="/proposals",
        mutates=False,
        idempotent=True,
        tags=_PLANNER_TAGS,
        examples=(Example({"status": "pending", "limit": 20}, "What waits for a decision."),),
    ),
    Action(
        name="decide_proposal",
        summary="Approve or reject a pending planner proposal",
        description=(
            "approve applies the proposal now through its schedule action, as you; reject "
            "drops it. Each proposal is decided once."
        ),
        input_model=DecideProposalInput,
        output_model=ProposalOut,
        handler=decide_proposal,
        scopes=frozenset({Scope.SCHEDULE_CONTROL}),
        method="POST",
        path="/proposals/{proposal_id}/decision",
        mutates=True,
        idempotent=False,
        tags=_PLANNER_TAGS,
        examples=(
            Example(
                {
                    "proposal_id": EXAMPLE_IDS["proposal_id"],
                    "decision": "approve",
                    "reason": "looks right",
                }
            ),
        ),
    ),
    Action(
        name="list_planner_sessions",
        summary="List the planner's analyses",
        description=(
            "Every analysis, newest first: planner, model, tokens, tool calls, outcome "
            "(changed, proposed, no_change, refused, skipped_budget, error, cancelled) and "
            "summary."
        ),
        input_model=ListSessionsInput,
        output_model=SessionPage,
        handler=list_planner_sessions,
        scopes=frozenset({Scope.RUNS_READ}),
        method="GET",
        path="/planner/sessions",
        mutates=False,
        idempotent=True,
        tags=_PLANNER_TAGS,
        examples=(Example({"endpoint_id": EXAMPLE_IDS["endpoint_id"], "limit": 20}),),
    ),
    Action(
        name="get_endpoint_planner",
        summary="Show an endpoint's planner settings and rules",
        description="The planner kind (rules or llm), approval mode, rules and policies.",
        input_model=EndpointRef,
        output_model=PlannerSettingsOut,
        handler=get_endpoint_planner,
        scopes=_READ,
        method="GET",
        path="/endpoints/{endpoint_id}/planner",
        mutates=False,
        idempotent=True,
        tags=_PLANNER_TAGS,
        examples=(Example({"endpoint_id": EXAMPLE_IDS["endpoint_id"]}),),
    ),
    Action(
        name="set_endpoint_planner",
        summary="Set an endpoint's planner settings and rules",
        description=(
            "Replaces the endpoint's planner settings: kind (rules or llm), approval "
            "mode, rules (when every condition holds on for_runs runs in a row, do the "
            "steps on the endpoint or a sibling by name) and opt-in policies "
            "(adaptive_polling, honour_retry_after, tighten_on_failures)."
        ),
        input_model=SetPlannerInput,
        output_model=PlannerSettingsOut,
        handler=set_endpoint_planner,
        scopes=frozenset({Scope.JOBS_WRITE}),
        method="PUT",
        path="/endpoints/{endpoint_id}/planner",
        mutates=True,
        idempotent=True,
        tags=_PLANNER_TAGS,
        examples=(
            Example(
                {
                    "endpoint_id": EXAMPLE_IDS["endpoint_id"],
                    "rules": [
                        {
                            "name": "slow",
                            "when": [
                                {
                                    "kind": "response",
                                    "op": "gt",
                                    "value": 800,
                                    "json_pointer": "/p95_ms",
                                }
                            ],
                            "then": [{"verb": "resume", "target": "investigate"}],
                            "for_runs": 2,
                        }
                    ],
                    "reason": "wake the investigation when the page is slow",
                },
                "Resume the sibling 'investigate' after two slow responses in a row.",
            ),
            Example(
                {
                    "endpoint_id": EXAMPLE_IDS["endpoint_id"],
                    "kind": "llm",
                    "approval": True,
                    "reason": "let the model propose, people decide",
                }
            ),
        ),
    ),
)
