"""``PrometheusObserver``: the ``Observer`` port as Prometheus metrics.

Each process keeps its own registry (never the library's global one, so tests and
embedded servers can build as many as they like) and serves it in the text format at
``/metrics``: the API server on its own port, ``cadenza worker`` and ``cadenza
planner`` on ``CADENZA_METRICS_PORT`` (``cadenza.adapters.probe_server``).

Series (``_total`` is added to counters by the client library):

* ``cadenza_runs_total{status,source}``; histograms ``cadenza_run_start_lateness_seconds``
  (``started_at − scheduled_for``) and ``cadenza_run_duration_seconds``;
* ``cadenza_due_backlog``: unleased endpoints whose slot has come, sampled by the
  worker every stats interval;
* ``cadenza_claims_total`` and the histogram ``cadenza_claim_batch_size``;
* ``cadenza_leases_lost_total{reason}``: ``expired`` or ``fenced``;
* ``cadenza_planner_analyses_total{planner,outcome}`` and
  ``cadenza_planner_changes_total{verdict}`` (each tool call of an analysis);
* ``cadenza_retention_pruned_total{kind}``;
* ``cadenza_notifications_total{channel,result}`` (``sent`` or ``failed``);
* ``cadenza_api_requests_total{route,method,status}`` and the histogram
  ``cadenza_api_request_duration_seconds{route,method}``;
* the client library's ``process_*`` figures (memory, CPU, open files).

Label children are cached: the per-run cost is two dict lookups and three updates.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from cadenza.domain.model import PlanSource, RunStatus
from cadenza.domain.planning import PlannerSession

LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
VERDICTS = frozenset({"applied", "pending", "refused", "suppressed"})


class PrometheusObserver:
    """See the module docstring. ``render()`` is the ``/metrics`` response."""

    def __init__(self, *, process_figures: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process_figures:
            ProcessCollector(registry=self.registry)
        self._build_run_metrics()
        self._build_core_metrics()
        self._build_api_metrics()

    def _build_run_metrics(self) -> None:
        r = self.registry
        self._runs = Counter(
            "cadenza_runs",
            "Runs performed, by status and plan source.",
            ["status", "source"],
            registry=r,
        )
        self._lateness = Histogram(
            "cadenza_run_start_lateness_seconds",
            "How late each run started after its slot.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self._duration = Histogram(
            "cadenza_run_duration_seconds",
            "How long each run took, retries included.",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._run_children: dict[tuple[RunStatus, PlanSource], Counter] = {}

    def _build_core_metrics(self) -> None:
        r = self.registry
        self._backlog = Gauge(
            "cadenza_due_backlog", "Unleased endpoints whose slot has come.", registry=r
        )
        self._claims = Counter("cadenza_claims", "Claims made by the scheduler.", registry=r)
        self._batch = Histogram(
            "cadenza_claim_batch_size", "Slots leased per claim.", buckets=BATCH_BUCKETS, registry=r
        )
        self._lost = Counter(
            "cadenza_leases_lost", "Leases lost: expired or fenced.", ["reason"], registry=r
        )
        self._analyses = Counter(
            "cadenza_planner_analyses",
            "Planner analyses, by planner and outcome.",
            ["planner", "outcome"],
            registry=r,
        )
        self._changes = Counter(
            "cadenza_planner_changes",
            "Changes the planner asked for, by what became of them.",
            ["verdict"],
            registry=r,
        )
        self._pruned = Counter(
            "cadenza_retention_pruned", "Rows deleted by retention.", ["kind"], registry=r
        )
        self._notifications = Counter(
            "cadenza_notifications",
            "Notifications sent or failed, by channel kind.",
            ["channel", "result"],
            registry=r,
        )

    def _build_api_metrics(self) -> None:
        r = self.registry
        self._requests = Counter(
            "cadenza_api_requests",
            "HTTP requests, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self._latency = Histogram(
            "cadenza_api_request_duration_seconds",
            "HTTP request latency, by route template and method.",
            ["route", "method"],
            registry=r,
        )

    # -- Observer -------------------------------------------------------------------

    def run_finished(
        self, status: RunStatus, source: PlanSource, lateness: float, duration: float
    ) -> None:
        child = self._run_children.get((status, source))
        if child is None:
            child = self._run_children[status, source] = self._runs.labels(status, source)
        child.inc()
        self._lateness.observe(max(lateness, 0.0))
        self._duration.observe(max(duration, 0.0))

    def claimed(self, count: int) -> None:
        self._claims.inc()
        self._batch.observe(count)

    def leases_lost(self, reason: str, count: int) -> None:
        if count:
            self._lost.labels(reason).inc(count)

    def due_backlog(self, count: int) -> None:
        self._backlog.set(count)

    def planner_analysis(self, session: PlannerSession) -> None:
        self._analyses.labels(session.planner.value, session.outcome.value).inc()
        for call in session.tool_calls:
            self._changes.labels(call.outcome if call.outcome in VERDICTS else "other").inc()

    def pruned(self, kind: str, count: int) -> None:
        if count:
            self._pruned.labels(kind).inc(count)

    def notification(self, channel_kind: str, ok: bool) -> None:
        self._notifications.labels(channel_kind, "sent" if ok else "failed").inc()

    def api_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route, method).observe(seconds)

    # -- exposition -----------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
