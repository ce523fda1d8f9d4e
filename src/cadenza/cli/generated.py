"""A command for every catalogue action, generated; none is written by hand.

``action_commands(actions)`` returns a Typer app with one command per entry of
``commands_for(action)``, grouped by noun (``cadenza jobs list``). Each command sends
one request to a running Cadenza (``cadenza.cli.client``) and prints the result as a
table, or as JSON with ``--json``. Besides the action's own fields every command
takes ``--input`` (the whole input as JSON; options override its fields),
``--profile`` and ``--json``; lists also take ``--all`` (follow every page).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from cadenza.actions.base import AnyAction
from cadenza.cli import exits, output
from cadenza.cli.client import ApiClient, CliError
from cadenza.cli.commands import GROUP_HELP, Command, commands_for
from cadenza.cli.params import Param, field_param, flag_param, parser
from cadenza.cli.profiles import resolve
from cadenza.cli.values import BadValue, parse_json

_INPUT = Param(
    "input_",
    Annotated[
        Any | None,
        typer.Option(
            "--input",
            help="The whole input as JSON (inline, @file or @- for stdin); options override it.",
            parser=parser(parse_json),
            metavar="JSON",
            show_default=False,
        ),
    ],
    None,
    lambda payload, value: None,
)
_PROFILE = Param(
    "profile",
    Annotated[
        str | None,
        typer.Option("--profile", help="A profile of the config file.", show_default=False),
    ],
    None,
    lambda payload, value: None,
)
_JSON = Param(
    "as_json",
    Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")],
    False,
    lambda payload, value: None,
)
_ALL = Param(
    "all_pages",
    Annotated[bool, typer.Option("--all", help="Follow next_cursor and print every page.")],
    False,
    lambda payload, value: None,
)
_COMMON = ("input_", "profile", "as_json", "all_pages")


def action_commands(actions: Iterable[AnyAction]) -> tuple[typer.Typer, dict[str, list[str]]]:
    """The Typer app of every action's commands, and each action's command lines."""
    root = typer.Typer(no_args_is_help=True)
    groups: dict[str, typer.Typer] = {}
    index: dict[str, list[str]] = {}
    for action in actions:
        for command in commands_for(action):
            index.setdefault(action.name, []).append(" ".join(command.words))
            if command.custom:
                continue
            *group_words, verb = command.words
            target = root
            if group_words:
                group = group_words[0]
                if group not in groups:
                    groups[group] = typer.Typer(help=GROUP_HELP.get(group), no_args_is_help=True)
                    root.add_typer(groups[group], name=group)
                target = groups[group]
            target.command(verb, help=_help(action, command))(build(action, command))
    return root, index


def _help(action: AnyAction, command: Command) -> str:
    text = command.help or f"{action.summary}.\n\n{action.description}"
    return text.replace("[", r"\[") + f"\n\nAction: {action.name} ({action.method} {action.path})"


def parameters(action: AnyAction, command: Command) -> list[Param]:
    fields = action.input_model.model_fields
    positional = [
        *action.path_params,
        *(f for f in command.positional if f not in action.path_params),
    ]
    params = [field_param(name, fields[name], argument=True) for name in positional]
    for name, info in fields.items():
        if name in positional or name in command.preset:
            continue
        params.append(field_param(name, info, argument=False, option=command.options.get(name, "")))
    params += [flag_param(flag) for flag in command.flags]
    params += [_INPUT, _PROFILE, _JSON]
    if _pages(action):
        params.append(_ALL)
    return params


def _pages(action: AnyAction) -> bool:
    return "cursor" in action.input_model.model_fields and "next_cursor" in getattr(
        action.output_model, "model_fields", {}
    )


def build(action: AnyAction, command: Command) -> Callable[..., None]:
    """The function Typer turns into ``command``; its signature is the parameters'."""
    params = parameters(action, command)

    def run(**given: Any) -> None:
        try:
            payload = _payload(params, given, command)
            with ApiClient(resolve(given["profile"])) as client:
                _call(client, action, command, payload, given)
        except BadValue as exc:
            _fail(CliError(str(exc), exits.BAD_INPUT), params)
        except CliError as exc:
            _fail(exc, params)

    run.__signature__ = inspect.Signature([p.signature() for p in params])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__name__ = action.name
    return run


def _payload(params: list[Param], given: dict[str, Any], command: Command) -> dict[str, Any]:
    start = given.get("input_")
    if start is not None and not isinstance(start, dict):
        raise BadValue("--input must be a JSON object.")
    payload: dict[str, Any] = dict(start or {})
    for param in params:
        value = given.get(param.name)
        if param.name in _COMMON or value is None or value == []:
            continue
        param.write(payload, value)
    payload.update(command.preset)
    return payload


def _call(
    client: ApiClient,
    action: AnyAction,
    command: Command,
    payload: dict[str, Any],
    given: dict[str, Any],
) -> None:
    as_json = bool(given["as_json"])
    if action.streams:
        _stream(client, action, payload, as_json)
        return
    result = client.call(action, payload)
    if given.get("all_pages"):
        result = _every_page(client, action, payload, result)
    if as_json:
        output.print_json(result)
    else:
        output.render(result, command.columns)


def _every_page(
    client: ApiClient, action: AnyAction, payload: dict[str, Any], first: Any
) -> dict[str, Any]:
    items = list(first["items"])
    cursor = first.get("next_cursor")
    while cursor:
        page = client.call(action, {**payload, "cursor": cursor})
        items += page["items"]
        cursor = page.get("next_cursor")
    return {"items": items, "next_cursor": None}


def _stream(client: ApiClient, action: AnyAction, payload: dict[str, Any], as_json: bool) -> None:
    """Raw lines (CSV, JSON Lines) as they come; Server-Sent Events as one line per
    event: its JSON with ``--json``, a short summary without."""
    sse = "text/event-stream" in action.streams
    for line in client.stream(action, payload):
        if not sse:
            typer.echo(line)
        elif line.startswith("data:"):
            event = json.loads(line[5:])
            typer.echo(json.dumps(event) if as_json else _event_line(event))


def _event_line(event: dict[str, Any]) -> str:
    if event.get("type") == "run" and event.get("run"):
        run = event["run"]
        return (
            f"{event['at']}  run     {run['endpoint_id']}  {run['status']}"
            f"  {run.get('http_status') or '-'}  {run['duration_seconds']:.3f}s"
        )
    change = event.get("change") or {}
    return (
        f"{event.get('at')}  change  {change.get('target_id', '-')}  {change.get('action', '-')}"
        f"  {change.get('reason', '')}"
    )


def _fail(error: CliError, params: list[Param]) -> None:
    options = {p.name[2:]: p.option for p in params if p.name.startswith("f_") and p.option}
    fields = [
        (f"{field} ({options[field]})" if field in options else field, message)
        for field, message in error.field_errors
    ]
    output.print_error(error.message, fields)
    raise typer.Exit(error.code)
