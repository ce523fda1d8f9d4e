"""A bad setting stops a process command with one line per problem, naming the
variable as it is set and never echoing its value, and exit status 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli_kit import CADENZA

SECRET_VALUE = "not-a-port-but-a-secret"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(
        [CADENZA, "serve"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CADENZA_PORT": SECRET_VALUE}, "CADENZA_PORT: Input should be a valid integer"),
        ({"CADENZA_SSRF_ALLOWLIST": "127.0.0.1"}, "CADENZA_SSRF_ALLOWLIST: not valid JSON"),
        ({"CADENZA_TRUSTED_PROXIES": '["x"]'}, "CADENZA_TRUSTED_PROXIES: Value error"),
        ({"CADENZA_PLANNER_CONCURRENCY": "0"}, "CADENZA_PLANNER_CONCURRENCY: Input should be"),
    ],
)
def test_a_bad_setting_is_one_clear_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run(tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"cadenza: invalid setting {expected}"), result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET_VALUE not in result.stderr
    assert not (tmp_path / "cadenza.db").exists()  # nothing started


def test_a_setting_from_dot_env_is_named_the_same_way(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CADENZA_PORT=eighty\n")
    result = run(tmp_path)
    assert result.returncode == 2, result.stderr
    assert "CADENZA_PORT: Input should be a valid integer" in result.stderr
