"""The report and the ``cadenza sim`` command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from cadenza.cli import app
from cadenza.simulation import Mode, SimulationResult
from cadenza.simulation.report import render
from cadenza.simulation.summary import summary

from .replays import replay


def _results() -> dict[Mode, SimulationResult]:
    return {mode: replay("flash-sale", mode) for mode in Mode}


def test_the_report_is_self_contained_html_with_inline_svg() -> None:
    html = render(_results())
    assert html.startswith("<!doctype html>")
    for outside in ("<script", "<link", "src=", "@import", "cdn"):
        assert outside not in html
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) > 3
    for svg in svgs:
        ET.fromstring(svg)
    for name in ("traffic_monitor", "emergency_oncall_page", "resume_endpoint", "Escalations"):
        assert name in html


def test_the_summary_compares_every_figure_across_the_three_modes() -> None:
    data = summary(_results())
    assert set(data["figures"]) == {"adaptive", "static", "static-tight"}
    for figures in data["figures"].values():
        assert {
            "detection_delay_seconds",
            "calls",
            "recovery_actions",
            "escalations",
            "cooldown_violations",
            "clamp_violations",
        } <= set(figures)
    assert data["adaptive_calls_share_of_static_tight"] <= 0.4


def test_cadenza_sim_prints_a_timeline_and_writes_the_report_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "flash"
    result = CliRunner().invoke(app, ["sim", "flash-sale", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "incident: checkout strain" in result.output
    assert "planner traffic_monitor" in result.output
    assert "detection delay (s)" in result.output
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["seed"] == 3


def test_cadenza_sim_lists_the_scenarios_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    listed = CliRunner().invoke(app, ["sim", "--list"])
    unknown = CliRunner().invoke(app, ["sim", "cyber-monday", "--out", str(tmp_path)])
    assert listed.exit_code == 0
    assert "flash-sale" in listed.output
    assert "web-scraping" in listed.output
    assert unknown.exit_code == 2
    assert not (tmp_path / "report.html").exists()
