"""The manifest: jobs as code (YAML on disk, the same shape as JSON on the wire).

A manifest names what should exist, keyed by name: jobs by their name, endpoints by
their name within their job. Each endpoint carries exactly the fields of
``add_endpoint`` (``EndpointSpec`` is kept equal to its input model by a test), plus
its planner settings (``set_endpoint_planner``'s) and ``start_paused``. A section
added later (alert rules, say) is one more list of named items on ``JobSpec``,
matched by name the way ``endpoints`` are (see ``cadenza.actions.manifest``).
Alert rules are such a section (``alerts`` on a job), and the notification channels
they name are a top-level list (``channels``), like tenant-wide rules (``alerts``)::

    version: 1
    jobs:
      - name: storefront
        tags: [web]
        endpoints:
          - name: health
            request:
              url: https://shop.example.com/health
              headers:
                - {name: Authorization, value: "${SHOP_TOKEN}", secret: true}
            baseline: {interval_seconds: 300}
            min_interval_seconds: 15
        alerts:
          - {name: storefront-down, kind: consecutive_failures, failures: 3, channels: [ops]}
    channels:
      - {name: ops, kind: slack, url: "${OPS_SLACK_URL}"}

Secret header values are never written out: an export writes a reference
``${NAME}`` in their place, and ``cadenza apply`` fills references in URLs and header
values from its environment before it sends the manifest. The server refuses a
reference that is still unfilled.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, RootModel

from cadenza.actions.alerts import ChannelFields, RuleFields
from cadenza.actions.endpoint_models import EndpointFields
from cadenza.actions.planner_models import PlannerSettingsIn
from cadenza.actions.wire import Description, Input, Name
from cadenza.domain import limits

MANIFEST_VERSION: Literal[1] = 1
MAX_MANIFEST_JOBS = 1_000
"""Jobs one manifest may name."""
MAX_JOB_ENDPOINTS = 100_000
"""Endpoints one job of a manifest may name: bulk set-ups go through one apply."""

MAX_ALERTS = 1_000
"""Channels, and alert rules per job (or at the top level), one manifest may name."""

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""``${NAME}`` or ``${NAME:-default}``: a value the CLI takes from its environment."""


class EndpointSpec(EndpointFields):
    """One endpoint, keyed by ``name`` within its job; the fields of ``add_endpoint``."""

    start_paused: bool = Field(False, description="Created paused until resumed.")
    planner: PlannerSettingsIn | None = Field(
        None, description="set_endpoint_planner's settings; omitted: kept as they are."
    )


class ChannelSpec(ChannelFields):
    """A notification channel, keyed by ``name``; ``url`` and ``password`` may be
    ``${NAME}`` references."""


class AlertSpec(RuleFields):
    """An alert rule, keyed by ``name`` (unique in the tenant). On a job it watches
    the job, or one of its endpoints by name; at the top level, the whole tenant."""

    name: Name
    endpoint: str | None = Field(None, max_length=limits.MAX_NAME_LENGTH)
    channels: list[str] = Field(default_factory=list, max_length=20)


class JobSpec(Input):
    """One job, keyed by ``name``, with its endpoints and alert rules."""

    name: Name
    description: Description = ""
    tags: list[str] = Field(
        default_factory=list, max_length=limits.MAX_TAGS, description="Free labels."
    )
    planner_enabled: bool = Field(True, description="Let the planner write hints here.")
    endpoints: list[EndpointSpec] = Field(default_factory=list, max_length=MAX_JOB_ENDPOINTS)
    alerts: list[AlertSpec] = Field(default_factory=list, max_length=MAX_ALERTS)


class Manifest(Input):
    """Jobs as code: what ``apply_manifest`` makes exist and ``export_manifest`` writes."""

    version: Literal[1] = Field(MANIFEST_VERSION, description="The manifest format's version.")
    jobs: list[JobSpec] = Field(default_factory=list, max_length=MAX_MANIFEST_JOBS)
    channels: list[ChannelSpec] = Field(default_factory=list, max_length=MAX_ALERTS)
    alerts: list[AlertSpec] = Field(default_factory=list, max_length=MAX_ALERTS)


class ManifestSchema(RootModel[dict[str, Any]]):
    """A JSON Schema document."""


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema of a manifest file, for editors and validators."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/api/v1/schemas/manifest.json"
    schema["title"] = "Cadenza manifest"
    return schema
