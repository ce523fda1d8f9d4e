"""The command line generated from the catalogue, checked in-process: every action has
a command, a new action gets one by itself, and what people type becomes the input
the action takes."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from cadenza.actions import REGISTRY
from cadenza.actions.base import Action, Context
from cadenza.actions.wire import Cursor, Input, Output, PageLimit
from cadenza.cli import app
from cadenza.cli.client import ApiClient
from cadenza.cli.commands import derive
from cadenza.cli.generated import action_commands
from cadenza.domain.identity import Scope


def resolve(words: list[str]) -> Any:
    """The command that ``cadenza <words>`` runs, found as the CLI finds it."""
    command: Any = typer.main.get_command(app)
    context: Any = typer.Context(command)
    for word in words:
        command = command.get_command(context, word)
        assert command is not None, f"cadenza {' '.join(words)}: no command {word!r}"
        context = typer.Context(command, parent=context)
    return command


def test_every_action_of_the_catalogue_has_a_command_the_cli_runs() -> None:
    _, index = action_commands(REGISTRY)
    assert set(index) == {a.name for a in REGISTRY}
    for name, lines in index.items():
        for line in lines:
            resolve(line.split())
            assert name


class WidgetsInput(Input):
    widget_id: str | None = Field(None, description="Only this widget.")
    colour: str = Field("blue", description="Its colour.")
    max_age_seconds: float | None = None
    cursor: Cursor = None
    limit: PageLimit = 50


class WidgetPage(Output):
    items: list[dict[str, Any]]
    next_cursor: str | None


async def _list_widgets(ctx: Context, data: WidgetsInput) -> WidgetPage:
    return WidgetPage(items=[], next_cursor=None)


WIDGETS = Action(
    name="list_widgets",
    summary="List widgets",
    description="Every widget.",
    input_model=WidgetsInput,
    output_model=WidgetPage,
    handler=_list_widgets,
    scopes=frozenset({Scope.JOBS_READ}),
    method="GET",
    path="/widgets",
    mutates=False,
    idempotent=True,
)


def test_an_action_without_an_entry_in_the_table_still_gets_a_command() -> None:
    root, index = action_commands([WIDGETS])
    assert index == {"list_widgets": ["widgets list"]}
    shown = CliRunner().invoke(root, ["widgets", "list", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    for option in ("--widget", "--colour", "--max-age", "--cursor", "--limit", "--all", "--json"):
        assert option in shown.output


@pytest.mark.parametrize(
    ("name", "path", "words"),
    [
        ("create_alert_rule", "/alert-rules", ("alert-rules", "create")),
        ("list_workers", "/workers", ("workers", "list")),
        (
            "send_test_notification",
            "/channels/{channel_id}/test",
            ("channels", "send-test-notification"),
        ),
        ("get_job", "/jobs/{job_id}", ("jobs", "get")),
    ],
)
def test_a_derived_command_is_the_paths_noun_and_the_names_verb(
    name: str, path: str, words: tuple[str, ...]
) -> None:
    action = Action(
        name=name,
        summary="s",
        description="d",
        input_model=Input,
        output_model=Output,
        handler=_list_widgets,
        scopes=frozenset(),
        method="GET",
        path=path,
        mutates=False,
        idempotent=True,
    )
    assert derive(action).words == words


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """What the commands would send, instead of sending it."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def call(self: ApiClient, action: Any, payload: dict[str, Any]) -> Any:
        calls.append((action.name, payload))
        return {"items": [], "next_cursor": None}

    monkeypatch.setattr(ApiClient, "call", call)
    monkeypatch.setenv("CADENZA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CADENZA_CONFIG", "/nonexistent/config.toml")
    return calls


@pytest.mark.parametrize(
    ("argv", "action", "payload"),
    [
        (
            ["hint", "interval", "ep_1", "30s", "--ttl", "20m", "--reason", "deploy"],
            "apply_interval_hint",
            {
                "endpoint_id": "ep_1",
                "interval_seconds": 30.0,
                "ttl_seconds": 1200.0,
                "reason": "deploy",
            },
        ),
        (
            ["pause", "ep_1", "--until", "2026-12-31T06:00Z"],
            "pause_or_resume_endpoint",
            {"endpoint_id": "ep_1", "until": "2026-12-31T06:00:00Z"},
        ),
        (["resume", "ep_1"], "pause_or_resume_endpoint", {"endpoint_id": "ep_1", "until": None}),
        (
            ["runs", "list", "--endpoint", "ep_1", "--status", "failure"],
            "list_runs",
            {"endpoint_id": "ep_1", "status": "failure"},
        ),
        (
            ["explain", "ep_1", "--preview", "5"],
            "explain_schedule",
            {"endpoint_id": "ep_1", "preview": 5},
        ),
        (
            ["keys", "create", "--name", "bot", "--scope", "runs:read", "--kind", "agent"],
            "create_api_key",
            {"name": "bot", "scopes": ["runs:read"], "kind": "agent"},
        ),
        (
            [
                "endpoints",
                "add",
                "job_1",
                "--name",
                "health",
                "--url",
                "https://x.example/h",
                "--every",
                "1h30m",
                "--header",
                "Accept: text/plain",
                "--secret-header",
                "Authorization: Bearer t",
                "--expect-status",
                "200",
            ],
            "add_endpoint",
            {
                "job_id": "job_1",
                "name": "health",
                "request": {
                    "url": "https://x.example/h",
                    "headers": [
                        {"name": "Accept", "value": "text/plain"},
                        {"name": "Authorization", "value": "Bearer t", "secret": True},
                    ],
                    "expected_status": [200],
                },
                "baseline": {"interval_seconds": 5400.0},
            },
        ),
        (
            ["endpoints", "update", "ep_1", "--on-demand", "--reason", "alerts only"],
            "update_endpoint",
            {"endpoint_id": "ep_1", "baseline": None, "reason": "alerts only"},
        ),
        (
            ["endpoints", "update", "ep_1", "--tier", "alert"],
            "update_endpoint",
            {"endpoint_id": "ep_1", "tier": "alert"},
        ),
        (
            ["jobs", "list", "--input", '{"status": "paused", "limit": 5}', "--limit", "7"],
            "list_jobs",
            {"status": "paused", "limit": 7},
        ),
        (
            ["proposals", "reject", "prp_1"],
            "decide_proposal",
            {"proposal_id": "prp_1", "decision": "reject"},
        ),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_what_people_type_becomes_the_actions_input(
    sent: list[tuple[str, dict[str, Any]]], argv: list[str], action: str, payload: dict[str, Any]
) -> None:
    result = CliRunner().invoke(app, [*argv, "--json"])
    assert result.exit_code == 0, result.output
    assert sent == [(action, payload)]


@pytest.mark.parametrize(
    "argv",
    [
        ["hint", "interval", "ep_1", "soon"],
        ["pause", "ep_1", "--until", "tomorrow"],
        ["endpoints", "add", "job_1", "--header", "no colon here"],
        ["jobs", "list", "--input", "[1, 2]"],
        ["runs", "list", "--status", "exploded"],
    ],
)
def test_a_value_that_cannot_be_read_exits_2_without_a_request(
    sent: list[tuple[str, dict[str, Any]]], argv: list[str]
) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert sent == []
