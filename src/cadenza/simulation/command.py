"""``cadenza sim``: replay a scenario three ways, print its timeline, write the report."""

from __future__ import annotations

from pathlib import Path

import typer

from cadenza.simulation.harness import simulate
from cadenza.simulation.report import render
from cadenza.simulation.result import Mode, SimulationResult
from cadenza.simulation.scenario import load_scenario, scenario_names
from cadenza.simulation.summary import figures_table, summary_text, timeline


def compare(name: str, seed: int) -> dict[Mode, SimulationResult]:
    """The bundled scenario ``name`` replayed adaptively, statically and static-tight."""
    scenario = load_scenario(name)
    return {mode: simulate(scenario, mode, seed) for mode in Mode}


def write_outputs(results: dict[Mode, SimulationResult], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.html"
    data = out_dir / "summary.json"
    report.write_text(render(results), encoding="utf-8")
    data.write_text(summary_text(results), encoding="utf-8")
    return report, data


def list_scenarios() -> None:
    for name in scenario_names():
        scenario = load_scenario(name)
        typer.echo(f"{name:<22} {scenario.title} ({scenario.use_case})")


def sim_command(scenario: str | None, list_: bool, out_dir: Path, seed: int) -> None:
    """List scenarios, or replay one: print the adaptive timeline and the figures, and
    write ``report.html`` and ``summary.json`` into ``out_dir``. Exit code 2 for an
    unknown or missing scenario."""
    if list_:
        list_scenarios()
        return
    if scenario is None or scenario not in scenario_names():
        shown = "a scenario name" if scenario is None else f"no scenario {scenario!r}"
        typer.echo(f"Expected {shown}; one of: {', '.join(scenario_names())}.", err=True)
        raise typer.Exit(2)
    results = compare(scenario, seed)
    adaptive = results[Mode.ADAPTIVE]
    typer.echo(f"{adaptive.scenario.title}: adaptive replay, seed {seed}")
    for line in timeline(adaptive):
        typer.echo(line)
    typer.echo("")
    for line in figures_table(results):
        typer.echo(line)
    report, data = write_outputs(results, out_dir)
    typer.echo(f"\nreport:  {report}\nsummary: {data}")
