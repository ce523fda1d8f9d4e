"""Deterministic replays of the seed scenarios on a virtual clock (``cadenza sim``).

``simulate`` runs Cadenza's worker and planner loop through one scenario on a
``VirtualTimeLoop`` (``ReplayFailed`` if they misbehave); ``run_scenario`` replays a
bundled scenario adaptively or statically; ``compare`` replays it three ways
(adaptive, static, static-tight) for the figures; ``sim_command`` is the CLI's body:
a timeline, ``report.html`` and ``summary.json``.
"""

from cadenza.simulation.harness import ReplayFailed, run_scenario, simulate
from cadenza.simulation.result import Figures, Mode, SimulationResult
from cadenza.simulation.scenario import Scenario, load_scenario, scenario_names

__all__ = [
    "Figures",
    "Mode",
    "ReplayFailed",
    "Scenario",
    "SimulationResult",
    "load_scenario",
    "run_scenario",
    "scenario_names",
    "simulate",
]
