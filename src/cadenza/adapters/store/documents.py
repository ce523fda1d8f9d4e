"""The JSON documents inside rows: an endpoint's configuration and hints, and the
planner's settings.

Everything is compact JSON: durations in seconds, times in ISO 8601,
secret header values sealed by the ``SecretBox``. Decoding runs the entities'
constructors (so a row that violates an invariant fails loudly), except a request's
(``restored_request``), and caches decoded configuration by its raw text: the scheduler
decodes the same request and baseline on every claim and completion, and
re-validating URLs and cron expressions there would dominate the hot path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cadenza.domain.assertions import Comparison, Op
from cadenza.domain.model import (
    DEFAULT_EXPECTED_STATUS,
    Actor,
    ActorKind,
    Body,
    BodyKind,
    Guardrails,
    Header,
    IntervalHint,
    Method,
    OneShot,
    Pause,
    Request,
    RetryPolicy,
    RunStatus,
)
from cadenza.domain.planning import (
    AdaptivePolling,
    Condition,
    EndpointPlanner,
    Metric,
    MetricCompare,
    OutcomeIs,
    PlannerKind,
    Policies,
    ResponseChange,
    ResponseMatches,
    Rule,
    SiblingLatest,
    Step,
    TightenOnFailures,
    Verb,
)
from cadenza.domain.schedule import Baseline, CronSchedule, IntervalSchedule
from cadenza.ports import SecretBox

_CACHE_SIZE = 4096


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _secs(value: timedelta) -> float:
    return value.total_seconds()


def _td(value: float) -> timedelta:
    return timedelta(seconds=value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def actor_doc(actor: Actor) -> list[str]:
    return [actor.kind.value, actor.id, actor.name]


def actor_from(doc: list[str]) -> Actor:
    return Actor(ActorKind(doc[0]), doc[1], doc[2])


def status_ranges(codes: frozenset[int]) -> list[list[int]]:
    """``{200, …, 299}`` as ``[[200, 299]]``: status sets are mostly ranges."""
    ranges: list[list[int]] = []
    for code in sorted(codes):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return ranges


class ConfigCodec:
    """Encodes and decodes an endpoint's nested configuration (JSON text)."""

    def __init__(self, secret_box: SecretBox) -> None:
        self._box = secret_box
        # Bounded caches keyed by the stored text; entities are immutable, so sharing
        # one decoded value between endpoints is safe.
        self.request: Callable[[str], Request] = lru_cache(_CACHE_SIZE)(self._request)
        self.baseline: Callable[[str], Baseline | None] = lru_cache(_CACHE_SIZE)(_baseline)
        self.guardrails: Callable[[str], Guardrails] = lru_cache(_CACHE_SIZE)(_guardrails)

    def request_text(self, request: Request) -> str:
        retry = request.retry
        body = request.body
        assertion = request.assertion
        return dumps(
            {
                "method": request.method.value,
                "url": request.url,
                "headers": [
                    [h.name, self._box.seal(h.value) if h.secret else h.value, h.secret]
                    for h in request.headers
                ],
                "body": None
                if body is None
                else [body.kind.value, body.json, body.text, body.content_type],
                "timeout": _secs(request.timeout),
                "expected_status": status_ranges(request.expected_status),
                "assertion": None
                if assertion is None
                else [assertion.op.value, assertion.value, assertion.json_pointer],
                "retry": _retry_doc(retry),
            }
        )

    def _request(self, text: str) -> Request:
        doc = json.loads(text)
        body = doc["body"]
        assertion = doc["assertion"]
        return restored_request(
            method=_METHODS[doc["method"]],
            url=doc["url"],
            headers=tuple(
                Header(name, self._box.open(value) if secret else value, secret)
                for name, value, secret in doc["headers"]
            ),
            body=None if body is None else Body(BodyKind(body[0]), body[1], body[2], body[3]),
            timeout=_td(doc["timeout"]),
            expected_status=_expected_status(doc["expected_status"]),
            assertion=None
            if assertion is None
            else Comparison(Op(assertion[0]), assertion[1], assertion[2]),
            retry=_retry_from(doc["retry"]),
        )


_METHODS = {m.value: m for m in Method}
_REQUEST_FIELDS = frozenset(f.name for f in fields(Request))


def restored_request(**values: Any) -> Request:
    """``Request(**values)`` without its checks, for a request this store validated
    when it wrote it.

    Checking a URL and headers again cost ~5 µs of every claim whose request is not
    in the cache (10k endpoints are more than it holds): a third of a claimed row's
    decoding (``bench/claim.py``, client CPU per row). Every field must be given; the
    names come from the class itself, so a new field cannot be left out unnoticed.
    """
    if values.keys() != _REQUEST_FIELDS:
        differ = sorted(values.keys() ^ _REQUEST_FIELDS)
        raise TypeError(f"A Request takes exactly its fields; these differ: {differ}")
    request = object.__new__(Request)
    for name, value in values.items():
        object.__setattr__(request, name, value)
    return request


def _status_set(ranges: list[list[int]]) -> frozenset[int]:
    """The inverse of ``status_ranges``; equal sets are shared between requests."""
    return _interned(tuple((low, high) for low, high in ranges))


@lru_cache(maxsize=256)
def _interned(ranges: tuple[tuple[int, int], ...]) -> frozenset[int]:
    return frozenset(code for low, high in ranges for code in range(low, high + 1))


def _retry_doc(retry: RetryPolicy) -> list[Any]:
    return [
        retry.max_attempts,
        _secs(retry.backoff),
        _secs(retry.max_backoff),
        status_ranges(retry.retry_on_status),
    ]


# Most requests keep the defaults: one list comparison recognises their documents.
_DEFAULT_STATUS_DOC = status_ranges(DEFAULT_EXPECTED_STATUS)
_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_RETRY_DOC = _retry_doc(_DEFAULT_RETRY)


def _expected_status(ranges: list[list[int]]) -> frozenset[int]:
    return DEFAULT_EXPECTED_STATUS if ranges == _DEFAULT_STATUS_DOC else _status_set(ranges)


def _retry_from(doc: list[Any]) -> RetryPolicy:
    if doc == _DEFAULT_RETRY_DOC:
        return _DEFAULT_RETRY
    attempts, backoff, max_backoff, retry_on = doc
    return RetryPolicy(attempts, _td(backoff), _td(max_backoff), _status_set(retry_on))


def baseline_text(baseline: Baseline | None) -> str:
    # On demand is the JSON document null: the column stays NOT NULL, no migration.
    if baseline is None:
        return "null"
    if isinstance(baseline, CronSchedule):
        return dumps({"cron": baseline.expression, "timezone": baseline.timezone})
    return dumps({"every": _secs(baseline.every), "start_at": _iso(baseline.start_at)})


def _baseline(text: str) -> Baseline | None:
    doc = json.loads(text)
    if doc is None:
        return None
    if "cron" in doc:
        return CronSchedule(doc["cron"], doc["timezone"])
    return IntervalSchedule(_td(doc["every"]), _dt(doc["start_at"]))


def guardrails_text(g: Guardrails) -> str:
    low, high = g.min_interval, g.max_interval
    return dumps([None if low is None else _secs(low), None if high is None else _secs(high)])


def _guardrails(text: str) -> Guardrails:
    low, high = json.loads(text)
    return Guardrails(None if low is None else _td(low), None if high is None else _td(high))


def hint_text(hint: IntervalHint | None) -> str | None:
    if hint is None:
        return None
    return dumps([_secs(hint.interval), _iso(hint.expires_at), hint.reason, actor_doc(hint.actor)])


def hint_from(text: str | None) -> IntervalHint | None:
    if text is None:
        return None
    interval, expires, reason, actor = json.loads(text)
    return IntervalHint(_td(interval), datetime.fromisoformat(expires), reason, actor_from(actor))


def one_shots_text(queue: tuple[OneShot, ...]) -> str | None:
    """A queue as a list of ``[id, run_at, expires_at, reason, actor(, true)]``, the
    last element only for a run-now; an empty queue is ``None`` (SQL NULL)."""
    if not queue:
        return None
    return dumps([_one_shot_doc(shot) for shot in queue])


def _one_shot_doc(shot: OneShot) -> list[Any]:
    doc = [shot.id, _iso(shot.run_at), _iso(shot.expires_at), shot.reason, actor_doc(shot.actor)]
    return [*doc, True] if shot.run_now else doc


def one_shots_from(text: str | None) -> tuple[OneShot, ...]:
    if text is None:
        return ()
    when = datetime.fromisoformat
    return tuple(
        OneShot(shot_id, when(run_at), when(expires), reason, actor_from(actor), bool(run_now))
        for shot_id, run_at, expires, reason, actor, *run_now in json.loads(text)
    )


def pause_text(pause: Pause | None) -> str | None:
    if pause is None:
        return None
    return dumps([_iso(pause.until), pause.reason, actor_doc(pause.actor)])


def pause_from(text: str | None) -> Pause | None:
    if text is None:
        return None
    until, reason, actor = json.loads(text)
    return Pause(_dt(until), reason, actor_from(actor))


def micros(value: timedelta) -> int:
    return value // timedelta(microseconds=1)


# The planner's settings ----------------------------------------------------------
# One document per endpoint, in the store's own shape (the API's models may change
# without touching stored rows): durations in seconds, conditions tagged by "kind".


def planner_doc(config: EndpointPlanner) -> str:
    p = config.policies
    polling, tighten = p.adaptive_polling, p.tighten_on_failures
    return dumps(
        {
            "kind": config.kind.value,
            "approval": config.approval,
            "rules": [_rule_doc(r) for r in config.rules],
            "policies": {
                "adaptive_polling": None
                if polling is None
                else {
                    "unchanged_runs": polling.unchanged_runs,
                    "factor": polling.factor,
                    "json_pointer": polling.json_pointer,
                },
                "honour_retry_after": p.honour_retry_after,
                "tighten_on_failures": None
                if tighten is None
                else {
                    "streak": tighten.streak,
                    "interval_seconds": _opt_secs(tighten.interval),
                    "ttl_seconds": _secs(tighten.ttl),
                    "recover_after": tighten.recover_after,
                },
            },
        }
    )


def planner_from(tenant_id: str, endpoint_id: str, text: str) -> EndpointPlanner:
    doc = json.loads(text)
    p = doc["policies"]
    polling, tighten = p["adaptive_polling"], p["tighten_on_failures"]
    policies = Policies(
        adaptive_polling=None
        if polling is None
        else AdaptivePolling(polling["unchanged_runs"], polling["factor"], polling["json_pointer"]),
        honour_retry_after=p["honour_retry_after"],
        tighten_on_failures=None
        if tighten is None
        else TightenOnFailures(
            tighten["streak"],
            _opt_td(tighten["interval_seconds"]),
            _td(tighten["ttl_seconds"]),
            tighten["recover_after"],
        ),
    )
    rules = tuple(_rule_from(r) for r in doc["rules"])
    return EndpointPlanner(
        tenant_id, endpoint_id, PlannerKind(doc["kind"]), doc["approval"], rules, policies
    )


def _opt_secs(value: timedelta | None) -> float | None:
    return None if value is None else _secs(value)


def _opt_td(value: float | None) -> timedelta | None:
    return None if value is None else _td(value)


def _rule_doc(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "when": [_condition_doc(c) for c in rule.when],
        "then": [
            {
                "verb": s.verb.value,
                "target": s.target,
                "interval_seconds": _opt_secs(s.interval),
                "ttl_seconds": _opt_secs(s.ttl),
                "delay_seconds": _opt_secs(s.delay),
            }
            for s in rule.then
        ],
        "for_runs": rule.for_runs,
        "cooldown_seconds": _secs(rule.cooldown),
    }


def _rule_from(doc: dict[str, Any]) -> Rule:
    steps = tuple(
        Step(
            Verb(s["verb"]),
            s["target"],
            _opt_td(s["interval_seconds"]),
            _opt_td(s["ttl_seconds"]),
            _opt_td(s["delay_seconds"]),
        )
        for s in doc["then"]
    )
    when = tuple(_condition_from(c) for c in doc["when"])
    return Rule(doc["name"], when, steps, doc["for_runs"], _td(doc["cooldown_seconds"]))


def _condition_doc(c: Condition) -> dict[str, Any]:
    if isinstance(c, SiblingLatest):
        return {"kind": "sibling", "sibling": c.sibling, "condition": _condition_doc(c.condition)}
    if isinstance(c, OutcomeIs):
        return {"kind": "outcome", "statuses": sorted(s.value for s in c.statuses)}
    if isinstance(c, MetricCompare):
        return {"kind": "metric", "metric": c.metric.value, "op": c.op.value, "value": c.value}
    if isinstance(c, ResponseMatches):
        comp = c.comparison
        return {
            "kind": "response",
            "op": comp.op.value,
            "value": comp.value,
            "json_pointer": comp.json_pointer,
        }
    return {
        "kind": "response_change",
        "changed": c.changed,
        "runs": c.runs,
        "json_pointer": c.json_pointer,
    }


def _condition_from(doc: dict[str, Any]) -> Any:
    kind = doc["kind"]
    if kind == "sibling":
        return SiblingLatest(doc["sibling"], _condition_from(doc["condition"]))
    if kind == "outcome":
        return OutcomeIs(frozenset(RunStatus(s) for s in doc["statuses"]))
    if kind == "metric":
        return MetricCompare(Metric(doc["metric"]), Op(doc["op"]), doc["value"])
    if kind == "response":
        return ResponseMatches(Comparison(Op(doc["op"]), doc["value"], doc["json_pointer"]))
    return ResponseChange(doc["changed"], doc["runs"], doc["json_pointer"])
