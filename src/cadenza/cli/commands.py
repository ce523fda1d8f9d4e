"""Which command line each catalogue action gets.

Every action gets a command: ``derive`` names it from its REST path and its name
(``list_workers`` on ``/workers`` becomes ``cadenza workers list``) and takes its path
parameters as arguments and every other field as an option. ``OVERRIDES`` only makes
some of them read better: a verb people expect, a positional argument, a preset
value (``resume`` is ``pause_or_resume_endpoint`` with ``until`` null), table columns,
and flags that fill nested fields (``--url`` for ``request.url``). A new action needs
no entry here to be usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from cadenza.actions.base import AnyAction

FlagKind = Literal["text", "duration", "int", "ints", "header", "secret-header", "json", "null"]


@dataclass(frozen=True, slots=True)
class Flag:
    """An option that fills a nested input field, such as ``--url`` for ``request.url``;
    a ``null`` flag takes no value and sends null there (``--on-demand``)."""

    option: str
    path: tuple[str, ...]
    kind: FlagKind
    help: str


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one action. ``words`` is the command line after ``cadenza``;
    ``positional`` input fields are arguments in that order (path parameters are
    always arguments); ``preset`` fields are fixed and not offered; ``options`` renames
    the option of a field; ``custom`` marks an action whose command is written by hand
    (``apply``/``export`` read and write files)."""

    action: str
    words: tuple[str, ...]
    positional: tuple[str, ...] = ()
    preset: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    flags: tuple[Flag, ...] = ()
    help: str = ""
    custom: bool = False


_REQUEST_FLAGS = (
    Flag("url", ("request", "url"), "text", "The URL to call (http:// or https://)."),
    Flag("method", ("request", "method"), "text", "The HTTP method (default GET)."),
    Flag("header", ("request", "headers"), "header", "A header 'Name: value'; repeatable."),
    Flag(
        "secret-header",
        ("request", "headers"),
        "secret-header",
        "A header whose value is stored encrypted and never shown again; repeatable.",
    ),
    Flag("body", ("request", "body", "json"), "json", "A JSON body (inline, @file or @-)."),
    Flag("timeout", ("request", "timeout_seconds"), "duration", "Per attempt, e.g. 10s."),
    Flag("expect-status", ("request", "expected_status"), "ints", "A success code; repeatable."),
    Flag("attempts", ("request", "retry", "max_attempts"), "int", "Attempts per run."),
)
_BASELINE_FLAGS = (
    Flag("every", ("baseline", "interval_seconds"), "duration", "Run every …, e.g. 5m."),
    Flag("cron", ("baseline", "cron"), "text", "A cron expression, e.g. '*/5 * * * *'."),
    Flag("timezone", ("baseline", "timezone"), "text", "The cron's IANA time zone."),
)
_ON_DEMAND = Flag("on-demand", ("baseline",), "null", "Remove the baseline: run only when asked.")
_RUN_COLUMNS = ("id", "started_at", "status", "http_status", "duration_seconds", "source")
_ENDPOINT_COLUMNS = ("id", "name", "tier", "state.next_run_at", "state.next_run_source")

_TABLE = (
    Command("create_job", ("jobs", "create"), positional=("name",)),
    Command("get_job", ("jobs", "get")),
    Command("list_jobs", ("jobs", "list"), columns=("id", "name", "status", "tags", "created_at")),
    Command("update_job", ("jobs", "update")),
    Command("archive_job", ("jobs", "archive")),
    Command("pause_job", ("jobs", "pause")),
    Command("resume_job", ("jobs", "resume")),
    Command("add_endpoint", ("endpoints", "add"), flags=_REQUEST_FLAGS + _BASELINE_FLAGS),
    Command("get_endpoint", ("endpoints", "get")),
    Command("list_endpoints", ("endpoints", "list"), columns=_ENDPOINT_COLUMNS),
    Command("update_endpoint", ("endpoints", "update"), flags=(*_BASELINE_FLAGS, _ON_DEMAND)),
    Command("delete_endpoint", ("endpoints", "delete")),
    Command("test_endpoint", ("endpoints", "test")),
    Command("reset_failure_count", ("endpoints", "reset-failures")),
    Command("summarize_endpoint_health", ("endpoints", "health")),
    Command("apply_interval_hint", ("hint", "interval"), positional=("interval_seconds",)),
    Command("schedule_one_shot_run", ("hint", "one-shot"), options={"run_at": "at"}),
    Command("cancel_one_shot", ("hint", "cancel")),
    Command("clear_adaptive_hints", ("hint", "clear")),
    Command("pause_or_resume_endpoint", ("pause",), help="Pause an endpoint until a time."),
    Command(
        "pause_or_resume_endpoint",
        ("resume",),
        preset=MappingProxyType({"until": None}),
        help="Resume a paused endpoint now.",
    ),
    Command("explain_schedule", ("explain",)),
    Command("list_runs", ("runs", "list"), columns=(*_RUN_COLUMNS, "endpoint_id")),
    Command("get_run_details", ("runs", "get")),
    Command("export_runs", ("runs", "export")),
    Command(
        "list_audit_events",
        ("audit", "list"),
        columns=("at", "actor.kind", "actor.name", "action", "target_id", "reason"),
    ),
    Command("stream_run_events", ("events", "watch"), options={"max_seconds": "for"}),
    Command("create_api_key", ("keys", "create")),
    Command("list_api_keys", ("keys", "list")),
    Command("revoke_api_key", ("keys", "revoke")),
    Command("describe_service_catalog", ("catalog",), columns=("name", "method", "path", "scopes")),
    Command("whoami", ("whoami",)),
    Command("list_proposals", ("proposals", "list")),
    Command(
        "decide_proposal",
        ("proposals", "approve"),
        preset=MappingProxyType({"decision": "approve"}),
        help="Approve a pending planner proposal: it is applied now, as you.",
    ),
    Command(
        "decide_proposal",
        ("proposals", "reject"),
        preset=MappingProxyType({"decision": "reject"}),
        help="Reject a pending planner proposal.",
    ),
    Command("list_planner_sessions", ("planning", "sessions")),
    Command("get_endpoint_planner", ("planning", "get")),
    Command("set_endpoint_planner", ("planning", "set")),
    Command("apply_manifest", ("apply",), custom=True),
    Command("export_manifest", ("export",), custom=True),
    Command("get_manifest_schema", ("manifest", "schema")),
)

OVERRIDES: Mapping[str, tuple[Command, ...]] = MappingProxyType(
    {name: tuple(c for c in _TABLE if c.action == name) for name in {c.action for c in _TABLE}}
)
"""The nicer commands, by action name; an action may have several (pause, resume)."""

GROUP_HELP = MappingProxyType(
    {
        "jobs": "Jobs: named groups of endpoints.",
        "endpoints": "Endpoints: HTTP requests with a schedule.",
        "hint": "Steer an endpoint's cadence for a while; hints expire by themselves.",
        "runs": "Recorded runs.",
        "audit": "Who changed what, and why.",
        "events": "Live runs and schedule changes.",
        "keys": "API keys of your tenant.",
        "proposals": "The planner's proposals awaiting a decision.",
        "planning": "The planner's settings per endpoint, and its analyses.",
        "manifest": "The manifest format of apply and export.",
    }
)


def commands_for(action: AnyAction) -> tuple[Command, ...]:
    """The action's commands: its overrides, or the one ``derive`` names."""
    return OVERRIDES.get(action.name) or (derive(action),)


def derive(action: AnyAction) -> Command:
    """``<noun> <verb>``: the noun is the first segment of the REST path, the verb the
    action's name without the noun's words (``create_alert_rule`` on
    ``/alert-rules`` is ``alert-rules create``)."""
    noun = action.path.strip("/").split("/")[0] or action.name
    noun_words = {w for part in noun.split("-") for w in (part, part.rstrip("s"))}
    verb = [w for w in action.name.split("_") if w not in noun_words] or ["run"]
    return Command(action.name, (noun, "-".join(verb)))
