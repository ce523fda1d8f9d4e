"""Claim, dispatch, record, plan: the worker loop and its helpers (SCHEDULING.md §3)."""
