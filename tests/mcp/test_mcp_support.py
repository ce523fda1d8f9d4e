"""The SDK-free rules of the MCP surface: tool texts, the error table, stream samples."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import pytest

from cadenza import mcp_support as support
from cadenza.actions import BY_NAME, REGISTRY
from cadenza.actions.base import LineStream
from cadenza.domain import errors


def every_error_class() -> list[type[errors.CadenzaError]]:
    found: list[type[errors.CadenzaError]] = []
    pending: list[type[errors.CadenzaError]] = [errors.CadenzaError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def instance_of(cls: type[errors.CadenzaError]) -> errors.CadenzaError:
    if issubclass(cls, errors.InvalidInput):
        return cls([("a.b", "bad"), ("c", "worse")])
    if issubclass(cls, errors.NotFound):
        return cls("x_1")
    if issubclass(cls, errors.RateLimited):
        return cls("slow down", 2.5)
    if issubclass(cls, errors.ValidationError):
        return cls("bad value", "field")
    return cls("refused")


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: c.__name__)
def test_every_domain_error_becomes_a_tool_error_with_its_own_code_and_a_hint(
    cls: type[errors.CadenzaError],
) -> None:
    exc = instance_of(cls)
    error = support.tool_error(exc)
    assert error.code == cls.code
    assert error.message == exc.message
    assert error.hint
    assert error.text().startswith(f"{cls.code}: ")


def test_bad_arguments_list_every_offending_field() -> None:
    error = support.tool_error(errors.InvalidInput([("a.b", "bad"), ("c", "worse")]))
    assert [(p.field, p.message) for p in error.errors or []] == [("a.b", "bad"), ("c", "worse")]
    assert "- a.b: bad" in error.text()


def test_a_rate_limit_is_retryable_and_says_when() -> None:
    error = support.tool_error(errors.RateLimited("slow down", 2.5))
    assert error.retryable is True
    assert error.retry_after_seconds == 2.5


def test_a_missing_id_hints_at_the_tools_that_list_ids() -> None:
    assert "list_jobs" in support.tool_error(errors.JobNotFound("job_1")).hint


@pytest.mark.parametrize(
    "name", [a.name for a in REGISTRY if "example" not in a.description.lower()]
)
def test_a_generated_example_is_valid_input_for_its_action(name: str) -> None:
    action = BY_NAME[name]
    example = support.example_arguments(action.input_model.model_json_schema())
    action.input_model.model_validate(example)
    if example:
        assert f"Example arguments: {json.dumps(example)}" in support.tool_description(action)


def test_a_description_with_its_own_example_names_the_ids_to_pass_too() -> None:
    text = support.tool_description(BY_NAME["add_endpoint"])
    assert "Pass job_id in the arguments too." in text
    assert "Example arguments" not in text


def test_descriptions_say_what_a_tool_needs_and_changes() -> None:
    assert "Needs scope jobs:write. Destructive" in support.tool_description(
        BY_NAME["delete_endpoint"]
    )
    assert "pass a short reason" in support.tool_description(BY_NAME["apply_interval_hint"])
    assert "Read-only." in support.tool_description(BY_NAME["list_runs"])
    assert "acts on the outside world" in support.tool_description(BY_NAME["test_endpoint"])
    assert "Any valid key" in support.tool_description(BY_NAME["whoami"])
    assert support.UNITS_NOTE in support.tool_description(BY_NAME["apply_interval_hint"])


class Lines:
    """An async line source that records whether it was closed."""

    def __init__(self, lines: list[str], then_block: bool = False) -> None:
        self.lines = lines
        self.then_block = then_block
        self.closed = False

    async def __call__(self) -> AsyncIterator[str]:
        try:
            for line in self.lines:
                yield line
            if self.then_block:
                await anyio.Event().wait()
        finally:
            self.closed = True


@pytest.mark.anyio
async def test_a_long_json_lines_stream_is_cut_at_the_item_bound_and_closed() -> None:
    source = Lines([json.dumps({"n": n}) + "\n" for n in range(support.SAMPLE_MAX_ITEMS + 10)])
    sample = await support.read_sample(LineStream("application/jsonl", source()))
    assert len(sample["items"]) == support.SAMPLE_MAX_ITEMS
    assert sample["items"][0] == {"n": 0}
    assert sample["truncated"] is True
    assert source.closed


@pytest.mark.anyio
async def test_a_csv_stream_that_ends_is_returned_whole_as_text() -> None:
    source = Lines(["id,status\n", "run_1,success\n"])
    sample = await support.read_sample(LineStream("text/csv", source()))
    assert sample == {
        "media_type": "text/csv",
        "items": [],
        "text": "id,status\nrun_1,success\n",
        "truncated": False,
    }


@pytest.mark.anyio
async def test_server_sent_events_become_their_data_items_without_comments() -> None:
    events = ["retry: 1000\n: connected\n\n", 'id: 1\nevent: run\ndata: {"type": "run"}\n\n']
    sample = await support.read_sample(LineStream("text/event-stream", Lines(events)()))
    assert sample["items"] == [{"type": "run"}]
    assert sample["text"] is None


@pytest.mark.anyio
async def test_a_stream_that_goes_quiet_is_cut_at_the_time_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(support, "SAMPLE_MAX_SECONDS", 0)
    source = Lines(['data: {"n": 1}\n\n'], then_block=True)
    with anyio.fail_after(5):
        sample = await support.read_sample(LineStream("text/event-stream", source()))
    assert sample["truncated"] is True
    assert source.closed


def test_the_scheduling_guide_names_every_schedule_control_tool() -> None:
    for action in REGISTRY:
        if action.planner_tool or action.name in {"explain_schedule", "test_endpoint"}:
            assert action.name in support.SCHEDULING_GUIDE, action.name


def test_an_object_argument_sent_as_a_json_string_is_parsed() -> None:
    schema = BY_NAME["add_endpoint"].input_model.model_json_schema()
    arguments = {
        "job_id": "job_1",
        "name": '{"not": "parsed"}',
        "request": '{"url": "http://127.0.0.1/x"}',
        "baseline": "not json",
        "min_interval_seconds": "30",
    }
    parsed = support.parse_stringified(schema, arguments)
    assert parsed["request"] == {"url": "http://127.0.0.1/x"}
    assert parsed["name"] == '{"not": "parsed"}'
    assert parsed["baseline"] == "not json"
    assert parsed["min_interval_seconds"] == "30"


def test_a_time_argument_stays_a_string() -> None:
    schema = BY_NAME["pause_or_resume_endpoint"].input_model.model_json_schema()
    parsed = support.parse_stringified(schema, {"until": "2026-01-01T06:00:00Z"})
    assert parsed == {"until": "2026-01-01T06:00:00Z"}


@pytest.mark.parametrize("name", ["list_runs", "export_runs", "summarize_endpoint_health"])
def test_a_rest_query_example_is_offered_as_valid_tool_arguments(name: str) -> None:
    action = BY_NAME[name]
    note = next(
        part
        for part in support.tool_description(action).split("\n\n")
        if part.startswith("As tool arguments: ")
    )
    action.input_model.model_validate(json.loads(note.removeprefix("As tool arguments: ")))
