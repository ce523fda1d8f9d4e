"""The ``cadenza admin`` and ``cadenza migrate`` commands, run as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cadenza(tmp_path: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CADENZA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
        "CADENZA_SECRET_KEY": "a-test-secret-that-is-long-enough",
        "CADENZA_NEW_PASSWORD": password,
    }
    return subprocess.run(
        [sys.executable, "-m", "cadenza.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    assert cadenza(tmp_path, "migrate").returncode == 0
    return tmp_path


def test_a_user_and_an_agent_key_are_created_and_the_key_is_printed_once(migrated: Path) -> None:
    created = cadenza(
        migrated, "admin", "create-user", "ops@example.com", password="long-password-1"
    )
    assert created.returncode == 0, created.stderr
    assert "ops@example.com" in created.stdout

    key = cadenza(
        migrated,
        "admin",
        "create-key",
        "--email",
        "ops@example.com",
        "--name",
        "bot",
        "--scope",
        "jobs:read",
        "--scope",
        "runs:read",
        "--agent",
    )
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip().startswith("cdz_")


def test_a_second_user_with_the_same_email_is_refused_as_a_conflict(migrated: Path) -> None:
    cadenza(migrated, "admin", "create-user", "ops@example.com", password="long-password-1")
    again = cadenza(migrated, "admin", "create-user", "OPS@example.com", password="long-password-2")
    assert again.returncode == 5
    assert "exists" in again.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--email", "ops@example.com", "--name", "k", "--scope", "jobs:nope"), 2, "Unknown scope"),
        (("--email", "nobody@example.com", "--name", "k", "--scope", "jobs:read"), 3, "nobody"),
    ],
    ids=["an unknown scope", "an unknown user"],
)
def test_bad_key_requests_exit_non_zero_with_a_message(
    migrated: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    cadenza(migrated, "admin", "create-user", "ops@example.com", password="long-password-1")
    result = cadenza(migrated, "admin", "create-key", *args)
    assert result.returncode == code
    assert message in result.stderr


def test_a_short_password_is_refused(migrated: Path) -> None:
    result = cadenza(migrated, "admin", "create-user", "ops@example.com", password="short")
    assert result.returncode == 2
    assert "password" in result.stderr
