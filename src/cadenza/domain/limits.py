"""Every limit Cadenza enforces, named once.

Input models and domain constructors both read these; nothing else restates them.
"""

from __future__ import annotations

from datetime import timedelta

MIN_INTERVAL = timedelta(seconds=1)
"""The shortest cadence any source may ask for."""

MAX_INTERVAL = timedelta(days=400)
"""The longest baseline interval; far beyond a 32-bit millisecond counter."""

MAX_BACKOFF_EXPONENT = 5
"""Consecutive failures stretch an interval baseline by 2**n, n capped here (×32)."""

DEFAULT_TIMEOUT = timedelta(seconds=30)
MAX_TIMEOUT = timedelta(minutes=15)
MAX_ATTEMPTS = 10
MAX_RETRY_BACKOFF = timedelta(minutes=5)

MAX_HINT_TTL = timedelta(days=30)
DEFAULT_HINT_TTL = timedelta(hours=1)
MAX_ONE_SHOTS = 20
"""One-shots queued per endpoint; one more is refused (409), never dropped."""
MAX_PLANNER_PAUSE = timedelta(hours=24)
"""Pauses written by the planner are always bounded by this."""

MAX_JITTER = timedelta(hours=1)

DEFAULT_IN_FLIGHT = 2
"""Runs of one ``overlap=allow`` endpoint in flight at once when none is given."""
MAX_IN_FLIGHT = 16
"""The most runs of one endpoint in flight at once (``overlap=allow``)."""
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 4000
MAX_REASON_LENGTH = 1000
MAX_URL_LENGTH = 2048
MAX_HEADERS = 50
MAX_BODY_BYTES = 256 * 1024
MAX_TAGS = 32
DEFAULT_RESPONSE_CAPTURE_BYTES = 64 * 1024

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PREVIEW = 50
