"""The rules planner, the default, runs without the 'ai' extra: the LLM SDKs load
only when a model is configured (``cadenza serve`` failed at start without them)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cadenza.planner.providers import ModelSettings, build_model


def test_serve_and_the_rules_planner_do_not_load_the_llm_sdks() -> None:
    # A fresh interpreter: this one may have loaded them for other tests.
    probe = (
        "import sys\n"
        "from cadenza import cli, container\n"
        "from cadenza.planner import service\n"
        "from cadenza.config import Settings\n"
        "container.planner_config(Settings())\n"
        "print(sorted(m for m in ('pydantic_ai', 'openai') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_a_configured_model_without_the_extra_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pydantic_ai.models.openai", None)  # not installed
    with pytest.raises(RuntimeError, match=r"needs the 'ai' extra: pip install 'cadenza\[ai\]'"):
        build_model(ModelSettings(model="gpt-4o-mini"))
