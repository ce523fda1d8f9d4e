"""The dashboard's controls: each is a form over one catalogue action.

A ``Control`` names the action, which of its input fields the form shows (the
widgets come from the action's input model, ``cadenza.web.forms``), the ids it
carries as hidden fields and what happens after success. ``POST /controls/{name}``
reads the submission, checks the CSRF token, runs the action in-process as the
signed-in person, and answers htmx with the form again: with a note and an
``HX-Trigger`` that refreshes the page's live parts on success, or with each
problem beside its field when the action refused (status 422 for bad input, 404,
409 … as the error's type says), in which case nothing was stored. Without
JavaScript the same route redirects back on success and shows the form with its
problems on a page of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from cadenza.actions import BY_NAME
from cadenza.domain import errors
from cadenza.web.core import Dashboard, Viewer, is_htmx, local_path, redirect, status_of
from cadenza.web.forms import Form, Submitted, build_form, payload, values_of
from cadenza.web.gate import CSRF_FIELD

CHANGED_EVENT = "cadenza:changed"
"""Sent in ``HX-Trigger`` after a change; live parts of the page listen for it."""


class After(Enum):
    NOTE = "note"
    REDIRECT = "redirect"
    SHOWN_ONCE = "shown_once"


@dataclass(frozen=True, slots=True)
class Control:
    name: str
    action: str
    submit: str
    only: tuple[str, ...] | None = ("reason",)
    keys: tuple[str, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    after: After = After.NOTE
    done: str = "Done."
    go_to: Callable[[Any], str] | None = None
    keep_values: bool = False
    confirm: str = ""
    tone: str = ""
    layout: str = ""
    """"" (every field with its help), "compact" (no help texts) or "inline"."""
    prefill: tuple[str, Callable[[Any], Mapping[str, Any]]] | None = None
    """A read action (given the control's ids) and how its output fills the form:
    such a form is fetched when opened (``GET /controls/{name}``), not with the page."""
    initial: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """What a blank form shows instead of the input model's defaults."""

    def available(self) -> bool:
        return self.action in BY_NAME


_ENDPOINT = ("endpoint_id",)
_JOB = ("job_id",)
_ENDPOINT_SETUP = (
    "name",
    "description",
    "tier",
    "request",
    "baseline",
    "min_interval_seconds",
    "max_interval_seconds",
    "catch_up",
    "delivery",
    "overlap",
    "max_in_flight",
    "jitter_seconds",
)


def _as_fields(result: Any) -> Mapping[str, Any]:
    return dict(result.model_dump())


def _planner_fields(result: Any) -> Mapping[str, Any]:
    return dict(result.settings.model_dump(mode="json"))


def _to_endpoint(result: Any) -> str:
    return f"/endpoints/{result.id}"


def _to_job(result: Any) -> str:
    return f"/jobs/{getattr(result, 'job_id', None) or result.id}"


def _to_archived_job(result: Any) -> str:
    return f"/jobs/{result.job.id}"


CONTROLS: dict[str, Control] = {
    c.name: c
    for c in (
        Control("create_job", "create_job", "Create job",
                ("name", "description", "tags", "planner_enabled"),
                after=After.REDIRECT, go_to=_to_job),
        Control("edit_job", "update_job", "Save job",
                ("name", "description", "tags", "planner_enabled", "reason"),
                _JOB, done="Saved.", keep_values=True, prefill=("get_job", _as_fields)),
        Control("pause_job", "pause_job", "Pause job", ("until", "reason"), _JOB,
                done="Job paused."),
        Control("resume_job", "resume_job", "Resume job", ("reason",), _JOB,
                done="Job resumed."),
        Control("archive_job", "archive_job", "Archive job", ("reason",), _JOB,
                after=After.REDIRECT, go_to=_to_archived_job, tone="danger",
                confirm="Archive this job? Its endpoints stop for good; history is kept."),
        Control("add_endpoint", "add_endpoint", "Add endpoint",
                (*_ENDPOINT_SETUP, "planner_enabled", "reason"), _JOB,
                after=After.REDIRECT, go_to=_to_endpoint,
                # A baseline unless unticked: on demand is a choice, not an oversight.
                initial={"baseline": ("on",)}),
        Control("interval_hint", "apply_interval_hint", "Apply interval hint",
                ("interval_seconds", "ttl_seconds", "reason"), _ENDPOINT,
                done="Interval hint applied."),
        Control("one_shot", "schedule_one_shot_run", "Schedule one run",
                ("delay_seconds", "run_at", "reason"), _ENDPOINT, done="One run scheduled.",
                layout="compact"),
        Control("run_now", "trigger_run", "Run now", None, _ENDPOINT, done="Run started.",
                layout="compact"),
        Control("cancel_one_shot", "cancel_one_shot", "Cancel", (),
                ("endpoint_id", "one_shot_id"), done="Cancelled.", tone="quiet",
                layout="inline"),
        Control("pause", "pause_or_resume_endpoint", "Pause", ("until", "reason"), _ENDPOINT,
                done="Paused.", layout="compact"),
        Control("resume", "pause_or_resume_endpoint", "Resume", ("reason",), _ENDPOINT,
                fixed={"until": ""}, done="Resumed.", layout="compact"),
        Control("clear_hints", "clear_adaptive_hints", "Clear hints", ("reason",), _ENDPOINT,
                done="Hints cleared.", layout="compact"),
        Control("reset_failures", "reset_failure_count", "Reset failures", ("reason",),
                _ENDPOINT, done="Failure count reset.", layout="compact"),
        Control("edit_endpoint", "update_endpoint", "Save endpoint",
                (*_ENDPOINT_SETUP, "reason"), _ENDPOINT, done="Saved.", keep_values=True,
                prefill=("get_endpoint", _as_fields)),
        Control("archive_endpoint", "delete_endpoint", "Archive endpoint", ("reason",),
                _ENDPOINT, after=After.REDIRECT, go_to=_to_job, tone="danger",
                confirm="Archive this endpoint? It stops for good; history is kept."),
        Control("planner_on", "update_endpoint", "Let the planner steer", ("reason",),
                _ENDPOINT, fixed={"planner_enabled": "true"}, done="Planner enabled.",
                layout="compact"),
        Control("planner_off", "update_endpoint", "Stop the planner", ("reason",),
                _ENDPOINT, fixed={"planner_enabled": "false"}, done="Planner disabled.",
                layout="compact"),
        Control("planner_settings", "set_endpoint_planner", "Save planner settings",
                ("kind", "approval", "rules", "policies", "reason"), _ENDPOINT,
                done="Planner settings saved.", keep_values=True,
                prefill=("get_endpoint_planner", _planner_fields)),
        Control("approve", "decide_proposal", "Approve", (), ("proposal_id",),
                fixed={"decision": "approve"}, done="Approved.", layout="inline"),
        Control("reject", "decide_proposal", "Reject", (), ("proposal_id",),
                fixed={"decision": "reject"}, done="Rejected.", tone="quiet", layout="inline"),
        Control("create_key", "create_api_key", "Create key",
                ("name", "scopes", "kind", "expires_at", "reason"), after=After.SHOWN_ONCE),
        Control("revoke_key", "revoke_api_key", "Revoke", (), ("key_id",), tone="danger",
                done="Revoked.", confirm="Revoke this key? Requests using it fail at once.",
                layout="inline"),
        Control("create_channel", "create_channel", "Add channel",
                ("name", "kind", "url", "smtp_host", "smtp_port", "security", "username",
                 "password", "sender", "recipients"), done="Channel added."),
        Control("test_channel", "send_test_notification", "Send a test", (), ("channel_id",),
                done="Test sent: see its delivery below.", layout="inline"),
        Control("delete_channel", "delete_channel", "Delete", (), ("channel_id",),
                tone="danger", done="Deleted.", confirm="Delete this channel?", layout="inline"),
        Control("create_rule", "create_alert_rule", "Add rule",
                ("name", "kind", "failures", "min_success_rate", "window_seconds",
                 "late_after_seconds", "renotify_every_seconds", "job_id", "endpoint_id"),
                done="Rule added."),
        Control("delete_rule", "delete_alert_rule", "Delete", (), ("rule_id",), tone="danger",
                done="Deleted.", confirm="Delete this rule? Its incidents stay as history.",
                layout="inline"),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ControlView:
    """A control ready to render: its form, where it posts, its DOM id."""

    control: Control
    form: Form
    dom_id: str
    next: str

    @property
    def url(self) -> str:
        return f"/controls/{self.control.name}"


def control_view(
    name: str,
    ids: Mapping[str, str] | None = None,
    *,
    values: Submitted | None = None,
    problems: Sequence[tuple[str, str]] = (),
    message: str = "",
    next_url: str = "/",
    extra: Mapping[str, Any] | None = None,
) -> ControlView | None:
    """The control ``name`` for the object ``ids`` names; ``None`` when this build's
    catalogue lacks its action."""
    control = CONTROLS[name]
    if not control.available():
        return None
    ids = dict(ids or {})
    model = BY_NAME[control.action].input_model
    hidden = {**ids, **control.fixed}
    form = build_form(
        control.action,
        model,
        submit=control.submit,
        hidden=hidden,
        only=control.only,
        values=control.initial if values is None else values,
        problems=problems,
        message=message,
        extra=extra,
    )
    tag = hashlib.sha256("|".join(sorted(ids.values())).encode()).hexdigest()[:8]
    return ControlView(control, form, f"c-{name}-{tag}", local_path(next_url))


async def show(dashboard: Dashboard, request: Request) -> Response:
    """``GET /controls/{name}?<ids>``: the control's form, filled from its read action
    (for htmx, the form alone; otherwise a page with it)."""
    control = CONTROLS.get(request.path_params["name"])
    if control is None or not control.available():
        raise errors.NotFound("There is no such control.")
    viewer = await dashboard.viewer(request)
    ids = {k: request.query_params[k] for k in control.keys if k in request.query_params}
    values: dict[str, list[str]] | None = None
    if control.prefill is not None:
        read, fields = control.prefill
        current = await dashboard.call(viewer, read, ids)
        values = values_of(BY_NAME[control.action].input_model, fields(current))
    next_url = request.query_params.get("next", "/")
    view = control_view(control.name, ids, values=values, next_url=next_url)
    return _answer(dashboard, request, viewer, view)


def _submitted(form: FormData) -> dict[str, list[str]]:
    return {key: [str(v) for v in form.getlist(key)] for key in form}


def _readable(control: Control, submitted: Submitted) -> dict[str, list[str]]:
    """Only the names the control shows or carries: a tampered form cannot reach
    other fields of the action (they would still be validated and authorised)."""
    model = BY_NAME[control.action].input_model
    roots = set(control.only if control.only is not None else model.model_fields)
    roots |= set(control.keys) | set(control.fixed)
    picked = {k: list(v) for k, v in submitted.items() if k.split(".")[0] in roots}
    picked.update({k: [v] for k, v in control.fixed.items()})
    return picked


def problems_of(exc: errors.CadenzaError) -> list[tuple[str, str]]:
    if isinstance(exc, errors.InvalidInput):
        return list(exc.problems)
    if isinstance(exc, errors.ValidationError):
        return [(exc.field, exc.message)]
    return [("", exc.message)]


async def perform(dashboard: Dashboard, request: Request) -> Response:
    """``POST /controls/{name}`` (module docstring)."""
    control = CONTROLS.get(request.path_params["name"])
    if control is None or not control.available():
        raise errors.NotFound("There is no such control.")
    viewer = await dashboard.viewer(request)
    submitted = _submitted(await request.form())
    dashboard.csrf.check(request, (submitted.get(CSRF_FIELD) or [""])[-1])
    fields = _readable(control, submitted)
    ids = {k: fields[k][-1] for k in control.keys if fields.get(k)}
    next_url = (submitted.get("next") or ["/"])[-1]
    action = BY_NAME[control.action]
    try:
        result = await dashboard.call(viewer, control.action, payload(action.input_model, fields))
    except (errors.AuthenticationFailed, errors.RateLimited):
        raise
    except errors.CadenzaError as exc:
        view = control_view(
            control.name, ids, values=fields, problems=problems_of(exc), next_url=next_url
        )
        return _answer(dashboard, request, viewer, view, status=status_of(exc)[0])
    return _succeeded(dashboard, request, viewer, control, ids, fields, result, next_url)


def _succeeded(
    dashboard: Dashboard,
    request: Request,
    viewer: Viewer,
    control: Control,
    ids: Mapping[str, str],
    fields: Submitted,
    result: Any,
    next_url: str,
) -> Response:
    if control.after is After.REDIRECT and control.go_to is not None:
        return redirect(request, control.go_to(result))
    if not is_htmx(request):
        return redirect(request, local_path(next_url))
    extra = {"result": result} if control.after is After.SHOWN_ONCE else None
    view = control_view(
        control.name,
        ids,
        values=fields if control.keep_values else None,
        message=control.done,
        next_url=next_url,
        extra=extra,
    )
    response = _answer(dashboard, request, viewer, view)
    response.headers["HX-Trigger"] = CHANGED_EVENT
    return response


def _answer(
    dashboard: Dashboard,
    request: Request,
    viewer: Viewer,
    view: ControlView | None,
    status: int = 200,
) -> Response:
    data = {"view": view}
    if is_htmx(request):
        return dashboard.page(request, viewer, "control.html", data, status)
    return dashboard.page(request, viewer, "control_page.html", data, status)
