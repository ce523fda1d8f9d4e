"""A target's ``Retry-After``, honoured by default (issue #16.4). Pure.

A 429 or 503 response asks the client to wait: a 429 without the header waits
``DEFAULT_RETRY_AFTER``; the header is delta-seconds or an HTTP-date. Inside a run
the dispatcher retries only when the wait fits the retry policy's ``max_backoff``;
otherwise it ends the run, and ``lifecycle.after_run`` keeps the time the target
named as the endpoint's ``retry_after_until``. The governor then plans no run of
that endpoint (baseline, hint or one-shot) before it, but never later than
``max_interval`` after the last run ("retry-after" in the plan).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from cadenza.domain.model import Run

DEFAULT_RETRY_AFTER = timedelta(seconds=60)
_ASKING = frozenset({429, 503})


def requested_wait(run: Run) -> timedelta | None:
    """How long the run's 429/503 response asked us to wait, if it did."""
    if run.http_status not in _ASKING:
        return None
    headers = run.response.headers if run.response is not None else ()
    raw = next((v for k, v in headers if k.lower() == "retry-after"), None)
    if raw is None:
        return DEFAULT_RETRY_AFTER if run.http_status == 429 else None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return timedelta(seconds=int(raw))
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        return DEFAULT_RETRY_AFTER
    return max(timedelta(0), when - run.finished_at)


def not_before(run: Run) -> datetime | None:
    """When the target may be called again after ``run``; ``None``: no wait asked."""
    wait = requested_wait(run)
    return None if not wait else run.finished_at + wait
