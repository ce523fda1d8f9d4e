"""Every failure the core can report, as one tree of types.

Surfaces map these classes to their protocol in one table each (problem+json on
REST, tool errors on MCP, exit codes on the CLI); nobody branches on message text.
Each class carries a stable ``code`` that appears on every surface.

    CadenzaError
    ├── ValidationError                 bad input; ``field`` names the offending field
    │   ├── InvalidCron
    │   ├── UnknownTimezone
    │   ├── InvalidInterval             below 1 s or above the upper bound
    │   ├── GuardrailsInverted          min_interval > max_interval
    │   ├── InvalidUrl                  not absolute http(s)
    │   ├── UnsupportedMethod
    │   ├── InvalidHint                 hint expired on arrival, run_at unreachable …
    │   └── InvalidInput                an input model's checks failed; lists each field
    ├── NotFound                        missing, or another tenant's (indistinguishable)
    │   ├── JobNotFound
    │   ├── EndpointNotFound
    │   ├── RunNotFound
    │   ├── ApiKeyNotFound
    │   ├── UserNotFound
    │   ├── ProposalNotFound
    │   ├── ChannelNotFound
    │   ├── AlertRuleNotFound
    │   ├── IncidentNotFound
    │   └── OneShotNotFound             not (or no longer) in the endpoint's queue
    ├── Conflict                        the request is valid but the state forbids it
    │   ├── Archived                    the job or endpoint is archived
    │   ├── DuplicateName
    │   ├── AlreadyDecided
    │   └── OneShotQueueFull            the endpoint's one-shot queue is at its limit
    ├── AuthenticationFailed            no, unknown, revoked or expired credentials
    ├── PermissionDenied                authenticated, but a scope is missing
    ├── RateLimited                     too many requests for this key
    ├── BudgetExhausted                 the tenant's planner token budget is used up
    ├── UnsafeTarget                    the HTTP target is refused by the SSRF guard
    ├── PayloadTooLarge                 the request body is above the configured cap
    └── ServiceUnavailable              a dependency (the database) failed; retry later
"""

from __future__ import annotations

from typing import ClassVar


class CadenzaError(Exception):
    """Base of every error Cadenza reports on purpose."""

    code: ClassVar[str] = "cadenza_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CadenzaError):
    """Input that can never be accepted; ``field`` is a dotted path or ``""``."""

    code = "validation_error"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class InvalidCron(ValidationError):
    code = "invalid_cron"


class UnknownTimezone(ValidationError):
    code = "unknown_timezone"


class InvalidInterval(ValidationError):
    code = "invalid_interval"


class GuardrailsInverted(ValidationError):
    code = "guardrails_inverted"


class InvalidUrl(ValidationError):
    code = "invalid_url"


class UnsupportedMethod(ValidationError):
    code = "unsupported_method"


class InvalidHint(ValidationError):
    code = "invalid_hint"


class InvalidInput(ValidationError):
    """The input's shape or limits are wrong; ``problems`` holds (field, message) pairs,
    one per offending field, fields as dotted paths."""

    code = "invalid_input"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        first_field, first_message = problems[0] if problems else ("", "Invalid input.")
        super().__init__(first_message, first_field)
        self.problems = problems or [(first_field, first_message)]


class NotFound(CadenzaError):
    """The resource does not exist for this tenant."""

    code = "not_found"
    kind: ClassVar[str] = "resource"

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"No {self.kind} with id {resource_id!r}.")
        self.resource_id = resource_id


class JobNotFound(NotFound):
    code = "job_not_found"
    kind = "job"


class EndpointNotFound(NotFound):
    code = "endpoint_not_found"
    kind = "endpoint"


class RunNotFound(NotFound):
    code = "run_not_found"
    kind = "run"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    kind = "API key"


class UserNotFound(NotFound):
    code = "user_not_found"
    kind = "user"


class ProposalNotFound(NotFound):
    code = "proposal_not_found"
    kind = "proposal"


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    kind = "channel"


class AlertRuleNotFound(NotFound):
    code = "alert_rule_not_found"
    kind = "alert rule"


class IncidentNotFound(NotFound):
    code = "incident_not_found"
    kind = "incident"


class OneShotNotFound(NotFound):
    code = "one_shot_not_found"
    kind = "queued one-shot"


class Conflict(CadenzaError):
    code = "conflict"


class Archived(Conflict):
    code = "archived"


class DuplicateName(Conflict):
    code = "duplicate_name"


class AlreadyDecided(Conflict):
    code = "already_decided"


class OneShotQueueFull(Conflict):
    code = "one_shot_queue_full"


class AuthenticationFailed(CadenzaError):
    code = "authentication_failed"


class PermissionDenied(CadenzaError):
    code = "permission_denied"


class RateLimited(CadenzaError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class BudgetExhausted(CadenzaError):
    code = "budget_exhausted"


class UnsafeTarget(CadenzaError):
    code = "unsafe_target"


class PayloadTooLarge(CadenzaError):
    code = "payload_too_large"


class ServiceUnavailable(CadenzaError):
    """Something Cadenza depends on failed (the database, most often). Raised where
    answering otherwise would mislead: credentials that could not be checked are not
    wrong credentials."""

    code = "service_unavailable"
