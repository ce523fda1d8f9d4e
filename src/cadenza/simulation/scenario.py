"""Scenario files: what a simulation replays, as data (``cadenza/scenarios/*.json``).

A scenario names a job and its endpoints exactly as a person would set them up
through the catalogue (baseline, guardrails, tier, description, planner rules in the
wire format of ``set_endpoint_planner``), plus the script of the world they watch:

* **signals**: numbers over time (visitors per minute, error rate …), given as
  points ``[minute, value]`` held (``step``) or interpolated (``linear``), with a
  relative noise drawn from the run's seeded random source;
* **effects**: a recovery endpoint's run multiplies some signals by a factor from
  ``delay_seconds`` after its first run on (a warm cache stays warm);
* what each endpoint **reports** (its JSON body), when it **fails** (status code,
  optional ``Retry-After``) and how long its requests take;
* **incidents**: when something goes wrong and which runs count as observing it,
  for the detection-delay figure.

A ``baseline`` of ``null`` makes an endpoint on demand (the recovery and alert
tiers): it runs only when the planner (or a scripted one-shot) asks. Endpoints
marked ``asleep`` are paused by the user at setup (until a day after the start);
only the planner can wake them. ``tight_interval_seconds`` is the cadence the
endpoint runs at when watched closely: the static-tight reference runs every endpoint
at it for the whole scenario.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Compare = Literal["gt", "ge", "lt", "le", "eq"]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalSpec(_Spec):
    points: list[tuple[float, float]] = Field(min_length=1)
    shape: Literal["step", "linear"] = "step"
    noise: float = Field(0.0, ge=0, lt=1)
    decimals: int = Field(0, ge=0, le=6)


class EffectSpec(_Spec):
    endpoint: str
    delay_seconds: float = Field(0, ge=0)
    multiply: dict[str, float]


class FailWhen(_Spec):
    signal: str
    op: Compare
    value: float
    status: int = Field(503, ge=400, le=599)
    retry_after_seconds: int | None = None
    error: str = ""


class EndpointSpec(_Spec):
    name: str
    tier: str
    description: str
    path: str
    method: Literal["GET", "POST"] = "GET"
    baseline: dict[str, Any] | None
    min_interval_seconds: float | None = None
    max_interval_seconds: float | None = None
    tight_interval_seconds: float = Field(gt=0)
    asleep: bool = False
    reports: list[str] = Field(default_factory=list)
    fails_when: list[FailWhen] = Field(default_factory=list)
    latency_ms: float = Field(150, gt=0)
    latency_signal: str | None = None
    planner: dict[str, Any] | None = None


class IncidentSpec(_Spec):
    """Observed by a run of one of ``observed_by`` that fails (with ``failure``) or
    whose reported ``field`` compares as given."""

    name: str
    start_minute: float = Field(ge=0)
    observed_by: list[str] = Field(min_length=1)
    failure: bool = False
    field: str | None = None
    op: Compare = "gt"
    value: float = 0

    @model_validator(mode="after")
    def _one_way(self) -> IncidentSpec:
        if not self.failure and self.field is None:
            raise ValueError("an incident is seen by a failure, a field, or both")
        return self


class OneShotSpec(_Spec):
    endpoint: str
    at_minute: float = Field(ge=0)
    reason: str = ""


class Scenario(_Spec):
    name: str
    title: str
    use_case: str
    description: str
    story: list[str] = Field(default_factory=list)
    start: datetime
    duration_minutes: float = Field(gt=0, le=24 * 60)
    host: str
    job_name: str
    job_description: str = ""
    debounce_seconds: float = Field(30, ge=0)
    signals: dict[str, SignalSpec]
    effects: list[EffectSpec] = Field(default_factory=list)
    endpoints: list[EndpointSpec] = Field(min_length=1)
    incidents: list[IncidentSpec] = Field(default_factory=list)
    one_shots: list[OneShotSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        names = {e.name for e in self.endpoints}
        if len(names) != len(self.endpoints):
            raise ValueError("endpoint names must be unique")
        used = {s for e in self.endpoints for s in e.reports}
        used |= {f.signal for e in self.endpoints for f in e.fails_when}
        used |= {s for eff in self.effects for s in eff.multiply}
        missing = used - set(self.signals)
        if missing:
            raise ValueError(f"unknown signals: {sorted(missing)}")
        refs = {eff.endpoint for eff in self.effects} | {o.endpoint for o in self.one_shots}
        refs |= {n for i in self.incidents for n in i.observed_by}
        if refs - names:
            raise ValueError(f"unknown endpoints: {sorted(refs - names)}")
        return self

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def endpoint(self, name: str) -> EndpointSpec:
        return next(e for e in self.endpoints if e.name == name)


def _folder() -> Any:
    return resources.files("cadenza").joinpath("scenarios")


def scenario_names() -> list[str]:
    """Every bundled scenario, by file name without ``.json``, sorted."""
    return sorted(p.name[: -len(".json")] for p in _folder().iterdir() if p.name.endswith(".json"))


def load_scenario(name: str) -> Scenario:
    """The bundled scenario ``name``; ``KeyError`` names the ones that exist."""
    if name not in scenario_names():
        raise KeyError(f"No scenario {name!r}; try one of: {', '.join(scenario_names())}.")
    text = _folder().joinpath(f"{name}.json").read_text(encoding="utf-8")
    return Scenario.model_validate(json.loads(text))
