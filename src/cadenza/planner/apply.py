"""The sink every planner submits to: check, clamp, hold back, then apply or queue.

For each intent, in order:

1. the target must be the endpoint itself or a sibling in the same job, not
   archived and with its planner switched on; otherwise it is **refused**;
2. it is clamped (``cadenza.planner.clamps``); an intent that cannot be bounded is
   **refused**;
3. hysteresis (``cadenza.planner.hysteresis``) drops it when its effect is already
   in force: **suppressed**, not recorded, nothing written;
4. in approval mode it is stored **pending**; otherwise the catalogue's action runs
   with the planner as actor: **applied**, or **refused** with the action's error.

Every applied, pending or refused intent is stored as a ``Proposal`` of the session.
The target is re-read for each intent, so a second intent in the same analysis sees
the first one's effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cadenza.actions.base import Context
from cadenza.actions.planner import apply_proposal
from cadenza.domain import errors
from cadenza.domain.model import Endpoint
from cadenza.domain.planning import ONE_SHOT_GRACE, Proposal, ProposalStatus, ToolCall, Verb
from cadenza.ids import new_id
from cadenza.planner.clamps import clamp
from cadenza.planner.hysteresis import hold_back
from cadenza.planner.port import Intent, Observation, Verdict
from cadenza.ports import PlannerStore


def wire_arguments(intent: Intent) -> dict[str, Any]:
    """The catalogue action's arguments for a clamped intent (without the endpoint)."""
    args: dict[str, Any] = {"reason": intent.reason}
    if intent.verb is Verb.INTERVAL_HINT and intent.interval is not None:
        args["interval_seconds"] = intent.interval.total_seconds()
        args["ttl_seconds"] = intent.ttl.total_seconds() if intent.ttl is not None else None
    elif intent.verb is Verb.ONE_SHOT and intent.at is not None:
        args["run_at"] = intent.at.isoformat()
        args["ttl_seconds"] = ONE_SHOT_GRACE.total_seconds()
    elif intent.verb is Verb.PAUSE and intent.at is not None:
        args["until"] = intent.at.isoformat()
    elif intent.verb is Verb.RESUME:
        args["until"] = None
    return {k: v for k, v in args.items() if v is not None or k == "until"}


@dataclass(slots=True)
class Applier:
    """A ``Sink`` bound to one analysis; see the module docstring."""

    ctx: Context
    store: PlannerStore
    obs: Observation
    session_id: str
    approval: bool
    proposals: list[Proposal] = field(default_factory=list)
    spent: tuple[int, int, tuple[ToolCall, ...]] = (0, 0, ())
    """Input tokens, output tokens and tool calls of an analysis that did not finish."""

    def report_spent(
        self, input_tokens: int, output_tokens: int, tool_calls: tuple[ToolCall, ...]
    ) -> None:
        self.spent = (input_tokens, output_tokens, tool_calls)

    async def submit(self, intent: Intent) -> Verdict:
        now = self.ctx.now()
        listed = self.obs.resolve(intent.target)
        if listed is None:
            why = f"{intent.target!r} is not this endpoint or a sibling in its job."
            return await self._refuse(intent, intent.target, why)
        target = await self._current(listed)
        if target.archived or not target.planner_enabled:
            why = f"The planner may not change {target.name!r} (archived or planner off)."
            return await self._refuse(intent, target.id, why)
        clamped = clamp(intent, target, now)
        if clamped.refusal is not None:
            return await self._refuse(clamped.intent, target.id, clamped.refusal)
        held = hold_back(clamped.intent, target, now)
        if held is not None:
            return Verdict("suppressed", held)
        note = " ".join(clamped.notes)
        if self.approval:
            saved = await self._save(clamped.intent, target.id, ProposalStatus.PENDING, note)
            return Verdict("pending", "Waiting for a person's approval.", saved.id)
        return await self._apply(clamped.intent, target.id, note)

    async def _current(self, listed: Endpoint) -> Endpoint:
        async with self.ctx.store.transaction(readonly=True) as tx:
            return await tx.get_endpoint(self.ctx.tenant_id, listed.id)

    async def _apply(self, intent: Intent, target_id: str, note: str) -> Verdict:
        arguments = wire_arguments(intent)
        try:
            await apply_proposal(self.ctx, intent.verb, target_id, arguments)
        except errors.CadenzaError as exc:
            return await self._refuse(intent, target_id, exc.message)
        saved = await self._save(intent, target_id, ProposalStatus.APPLIED, note)
        clamped = f" ({note})" if note else ""
        return Verdict("applied", f"Applied{clamped}.", saved.id)

    async def _refuse(self, intent: Intent, target_id: str, why: str) -> Verdict:
        saved = await self._save(intent, target_id, ProposalStatus.REFUSED, why)
        return Verdict("refused", f"Refused: {why}", saved.id)

    async def _save(
        self, intent: Intent, target_id: str, status: ProposalStatus, note: str
    ) -> Proposal:
        now = self.ctx.now()
        proposal = Proposal(
            id=new_id("prp", now),
            tenant_id=self.ctx.tenant_id,
            session_id=self.session_id,
            endpoint_id=self.obs.endpoint.id,
            target_id=target_id,
            verb=intent.verb,
            arguments=wire_arguments(intent),
            status=status,
            created_at=now,
            note=note,
        )
        await self.store.insert_proposal(proposal)
        self.proposals.append(proposal)
        return proposal
