"""Each kind of error exits with its documented code (``cadenza.cli.exits``), with the
problem's message and its field errors on stderr."""

from __future__ import annotations

import pytest
from cli_kit import Tenant, add_key, free_port
from test_command_groups import make_endpoint

from cadenza.cli import exits
from cadenza.domain.identity import Scope

pytestmark = pytest.mark.slow


def test_input_the_server_refuses_exits_2_naming_the_field_and_its_option(tenant: Tenant) -> None:
    _, endpoint = make_endpoint(tenant)
    result = tenant.run("hint", "interval", endpoint, "0s")
    assert result.code == exits.BAD_INPUT
    assert "interval_seconds" in result.stderr
    assert result.stdout == ""


def test_a_value_the_cli_cannot_parse_exits_2_before_any_request(tenant: Tenant) -> None:
    result = tenant.run("runs", "list", "--since", "yesterday", CADENZA_URL="http://127.0.0.1:9")
    assert result.code == exits.BAD_INPUT
    assert "RFC 3339" in result.stderr


def test_an_unknown_id_exits_3(tenant: Tenant) -> None:
    result = tenant.run("endpoints", "get", "ep_01kjq6psg0bz0nmmxd7gzhz90c")
    assert result.code == exits.NOT_FOUND
    assert "ep_01kjq6psg0bz0nmmxd7gzhz90c" in result.stderr


def test_a_missing_scope_and_a_missing_key_exit_4(tenant: Tenant) -> None:
    reader = add_key(tenant, frozenset({Scope.RUNS_READ}))
    refused = tenant.run("jobs", "create", "x", CADENZA_API_KEY=reader)
    assert refused.code == exits.PERMISSION
    assert "jobs:write" in refused.stderr
    anonymous = tenant.run("jobs", "list", CADENZA_API_KEY="")
    assert anonymous.code == exits.PERMISSION
    assert "CADENZA_API_KEY" in anonymous.stderr


def test_a_change_the_state_forbids_exits_5(tenant: Tenant) -> None:
    job = tenant.json("jobs", "create", "once")["id"]
    assert tenant.run("jobs", "archive", job).code == 0
    again = tenant.run("jobs", "archive", job)
    assert again.code == exits.CONFLICT
    assert "archived" in again.stderr


def test_a_server_that_does_not_answer_exits_6(tenant: Tenant) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = tenant.run("jobs", "list", CADENZA_URL=closed)
    assert result.code == exits.UNREACHABLE
    assert closed in result.stderr
