"""Per-tenant monthly token budgets for model-backed analyses.

A tenant's usage is counted per UTC calendar month. Before an LLM analysis the loop
asks ``allowance``: ``None`` means unlimited, ``0`` (or less) means the budget is
used up and the analysis is skipped and recorded as such, never run. The allowance
also caps the analysis itself (pydantic-ai's token limit), so one analysis cannot
overshoot the budget by more than one model response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cadenza.domain import errors
from cadenza.domain.planning import month_key
from cadenza.ports import PlannerStore


@dataclass(frozen=True, slots=True)
class Budget:
    """``monthly_tokens`` for every tenant unless ``overrides`` names it; ``None``:
    unlimited."""

    store: PlannerStore
    monthly_tokens: int | None = None
    overrides: Mapping[str, int | None] = field(default_factory=dict)

    def limit(self, tenant_id: str) -> int | None:
        return self.overrides.get(tenant_id, self.monthly_tokens)

    async def allowance(self, tenant_id: str, now: datetime) -> int | None:
        """Tokens the tenant may still spend this month (``None``: no limit)."""
        cap = self.limit(tenant_id)
        if cap is None:
            return None
        return cap - await self.store.tokens_used(tenant_id, month_key(now))

    async def require(self, tenant_id: str, now: datetime) -> int | None:
        """The allowance, or ``BudgetExhausted`` when nothing is left."""
        left = await self.allowance(tenant_id, now)
        if left is not None and left <= 0:
            raise errors.BudgetExhausted(
                f"The planner's token budget for {month_key(now)} is used up "
                f"({self.limit(tenant_id)} tokens); analyses resume next month."
            )
        return left

    async def charge(self, tenant_id: str, now: datetime, tokens: int) -> int:
        """Count ``tokens`` against this month; returns the month's total."""
        if tokens <= 0:
            return await self.store.tokens_used(tenant_id, month_key(now))
        return await self.store.add_tokens(tenant_id, month_key(now), tokens)
