"""The LLM planner's tools come from the catalogue: one per planner-tool action, with
its input schema (``endpoint`` in place of ``endpoint_id``), plus the planner-only
reads."""

from __future__ import annotations

from cadenza.actions import PLANNER_TOOLS, REGISTRY
from cadenza.planner.tools import ENDPOINT_ARGUMENT, INTENTS, planner_tools, tool_schema

READS = {"latest_response", "response_history", "siblings_latest_responses"}


def test_the_planner_is_offered_every_planner_tool_action_and_the_planner_only_reads() -> None:
    offered = {tool.name for tool in planner_tools()}
    assert offered == {a.name for a in REGISTRY if a.planner_tool} | READS
    assert PLANNER_TOOLS  # the registry's own list is what the planner uses


def test_every_schedule_changing_planner_tool_has_an_intent() -> None:
    assert {a.name for a in PLANNER_TOOLS if a.mutates} == set(INTENTS)


def test_a_catalogue_tool_takes_the_actions_input_with_an_endpoint_name_for_its_id() -> None:
    for action in PLANNER_TOOLS:
        schema = tool_schema(action)
        own = action.input_model.model_json_schema()
        assert schema["properties"]["endpoint"] == ENDPOINT_ARGUMENT
        assert set(schema["properties"]) - {"endpoint"} == set(own["properties"]) - {"endpoint_id"}
        assert schema["required"][0] == "endpoint"
        by_name = {tool.name: tool for tool in planner_tools()}
        assert by_name[action.name].tool_def.parameters_json_schema == schema
