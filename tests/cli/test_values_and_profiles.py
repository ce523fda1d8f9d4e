"""Durations, times and JSON as typed on the command line; exit codes by error kind;
which server and key a command uses."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_kit import CADENZA

from cadenza.cli import exits
from cadenza.cli.profiles import DEFAULT_URL, config_path, resolve, save_profile
from cadenza.cli.values import BadValue, parse_duration, parse_json, parse_time
from cadenza.domain import errors
from cadenza.testing import FrozenClock

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("45", 45),
        ("0.5", 0.5),
        (" 10M ", 600),
    ],
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 m", "m5", "1h-5m", "-3s", "nan", "inf", "5x"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(BadValue, match="30s, 5m, 1h30m"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31T06:00Z", "2026-12-31T06:00:00Z"),
        ("2026-12-31T07:00:00+01:00", "2026-12-31T06:00:00Z"),
        ("+10m", "2026-06-01T12:10:00Z"),
        ("-1h", "2026-06-01T11:00:00Z"),
        ("now", "2026-06-01T12:00:00Z"),
    ],
)
def test_times_are_rfc_3339_or_relative_to_now(text: str, expected: str) -> None:
    assert parse_time(text, FrozenClock(NOW)) == expected


@pytest.mark.parametrize("text", ["2026-12-31T06:00", "tomorrow", "+", "+soon"])
def test_a_time_without_an_offset_or_a_meaning_is_refused(text: str) -> None:
    with pytest.raises(BadValue):
        parse_time(text, FrozenClock(NOW))


def test_json_is_read_inline_or_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('[{"name": "r"}]')
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json(f"@{path}") == [{"name": "r"}]
    with pytest.raises(BadValue, match="Not valid JSON"):
        parse_json("{oops")
    with pytest.raises(BadValue, match="Cannot read"):
        parse_json(f"@{tmp_path}/missing.json")


@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("invalid_cron", 422, exits.BAD_INPUT),
        ("invalid_input", 422, exits.BAD_INPUT),
        ("unsafe_target", 422, exits.BAD_INPUT),
        ("endpoint_not_found", 404, exits.NOT_FOUND),
        ("route_not_found", 404, exits.NOT_FOUND),
        ("authentication_failed", 401, exits.PERMISSION),
        ("permission_denied", 403, exits.PERMISSION),
        ("archived", 409, exits.CONFLICT),
        ("already_decided", 409, exits.CONFLICT),
        ("rate_limited", 429, exits.RATE_LIMITED),
        ("budget_exhausted", 429, exits.RATE_LIMITED),
        ("internal_error", 500, exits.FAILURE),
        ("something_new", 409, exits.CONFLICT),
    ],
)
def test_each_problem_code_exits_with_the_code_of_its_kind(
    code: str, status: int, exit_code: int
) -> None:
    assert exits.exit_code(exits.kind_of_problem(code, status)) == exit_code


def test_the_table_covers_the_kinds_of_the_error_tree() -> None:
    assert exits.exit_code(errors.InvalidCron) == exits.BAD_INPUT
    assert exits.exit_code(errors.ProposalNotFound) == exits.NOT_FOUND
    assert exits.exit_code(errors.DuplicateName) == exits.CONFLICT


def test_the_environment_beats_the_default_profile_and_a_named_profile_beats_both(
    tmp_path: Path,
) -> None:
    config = tmp_path / "cadenza" / "config.toml"
    env = {"CADENZA_CONFIG": str(config)}
    assert resolve(None, env).url == DEFAULT_URL
    save_profile(config, "prod", "https://cadenza.example.com/api/v1/", "cdz_prod", default=True)
    save_profile(config, "local", "http://127.0.0.1:8000", "cdz_local", default=False)
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert resolve(None, env).api_key == "cdz_prod"
    assert resolve(None, env).url == "https://cadenza.example.com"
    overridden = {**env, "CADENZA_URL": "http://127.0.0.1:9000", "CADENZA_API_KEY": "cdz_env"}
    assert (resolve(None, overridden).url, resolve(None, overridden).api_key) == (
        "http://127.0.0.1:9000",
        "cdz_env",
    )
    assert resolve("local", overridden).api_key == "cdz_local"
    assert resolve(None, {**env, "CADENZA_PROFILE": "local"}).api_key == "cdz_local"
    with pytest.raises(BadValue, match="No profile 'staging'"):
        resolve("staging", env)


def test_the_config_file_follows_xdg_config_home() -> None:
    assert config_path({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/cadenza/config.toml")


def _complete(shell: str, words: str) -> str:
    env = {
        **os.environ,
        "_CADENZA_COMPLETE": f"complete_{shell}",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "_TYPER_COMPLETE_ARGS": words,
        "_TYPER_COMPLETE_FISH_ACTION": "get-args",
    }
    done = subprocess.run([CADENZA], env=env, capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_and_answers_for_bash_zsh_and_fish(shell: str) -> None:
    script = subprocess.run(
        [CADENZA, "--show-completion", shell], capture_output=True, text=True, timeout=120
    )
    assert script.returncode == 0, script.stderr
    assert "_CADENZA_COMPLETE" in script.stdout
    assert "jobs" in _complete(shell, "cadenza jo")
    assert "interval" in _complete(shell, "cadenza hint ")
