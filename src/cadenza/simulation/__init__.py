"""Deterministic replays of the seed scenarios on a virtual clock (``cadenza sim``).

``run_scenario`` replays one bundled scenario adaptively or statically;
``compare`` replays it three ways (adaptive, static, static-tight) for the figures;
``sim_command`` is the CLI's body: a timeline, ``report.html`` and ``summary.json``.
"""

from cadenza.simulation.harness import run_scenario, simulate
from cadenza.simulation.result import Figures, Mode, SimulationResult
from cadenza.simulation.scenario import Scenario, load_scenario, scenario_names

__all__ = [
    "Figures",
    "Mode",
    "Scenario",
    "SimulationResult",
    "load_scenario",
    "run_scenario",
    "scenario_names",
    "simulate",
]
