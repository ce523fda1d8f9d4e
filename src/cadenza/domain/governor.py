"""The governor: when does an endpoint run next, and why (SCHEDULING.md §2).

``plan_next_run`` is a pure function of ``now``, the endpoint and its job. The
rules, in order:

1. an archived endpoint or job is not scheduled;
2. the baseline gives a candidate (cron: next fire after ``now`` in the zone;
   interval: the lattice after the last slot, stretched ×2^failures up to ×32, with
   missed slots collapsed to ``now`` or skipped per ``catch_up``), plus jitter; an
   endpoint without a baseline is *on demand* and gives none ("on-demand");
3. a fresh interval hint replaces it with ``last_run_at + hint`` (cron too);
4. the endpoint's queue of one-shots: its first live one (the earliest ``run_at``)
   competes, the earliest of it and the cadence wins; a queued run-now
   (``trigger_run``) wins outright;
5. clamps from ``last_run_at`` raise to the minimum and lower to the maximum;
   then a target's ``Retry-After`` holds the run back, at most to the maximum;
6. nothing is planned in the past;
7. a pause (endpoint or job) wins over everything.

Whatever the rules decide is written into ``Plan.explanation`` step by step, each
step naming its rule: ``archived``, ``baseline-cron``, ``baseline-interval``,
``backoff``, ``catch-up``, ``jitter``, ``on-demand``, ``hint-expired``, ``hint-interval``,
``hint-lapses``, ``one-shot-expired``, ``one-shot-unreachable``, ``hint-one-shot``,
``run-now``, ``one-shots-queued``, ``clamped-min``, ``clamped-max``, ``retry-after``,
``not-in-past``, ``paused``, and last ``chosen`` (or ``paused``/``archived`` when those decide).
``explain_plan`` may add ``in-flight`` (runs of an ``overlap=allow`` endpoint in flight)
or ``in-flight-full`` (as many as ``max_in_flight``: the next slot waits for one to
end), then ``overdue`` (a stored time passed, unclaimed).

Where SCHEDULING.md is silent, these choices hold (each is tested):

- A hint only governs while fresh. An interval hint whose next run would fall at or
  after its ``expires_at`` lapses first, so the plan is the baseline as seen when the
  hint expires ("hint-lapses"); otherwise a relaxing hint would outlive its TTL. A
  one-shot whose run time is at or after its ``expires_at`` can never run fresh and
  is ignored ("one-shot-unreachable").
- One-shots queue (``Endpoint.one_shots``, in ``run_at`` order); adding one never
  replaces another. A run serves (consumes) **every** one-shot due by its start
  (``not_served``), whatever its source: one-shots due at the same moment, or held
  back together by the cooldown, a Retry-After or a pause, share one run rather than
  run back to back; the explanation says so ("one-shots-queued"). Each one-shot is
  therefore served by exactly one run, and later ones stay queued for later runs.
- A ``skip`` catch-up lands on the first lattice slot at or after ``now``: a slot
  exactly at ``now`` is due, not missed. Where the lattice starts (a jittered first
  slot), a slot whose jittered time is still ahead is pending, not missed.
- Jitter on an interval baseline is added where a lattice starts (the first slot, a
  ``run_once`` catch-up, whose offset comes from the missed slot, not from ``now``);
  later slots are measured from the last, already jittered,
  slot and so keep that phase. Re-jittering every slot would make the lattice drift
  by half the jitter per run on average.
- Jitter on a cron baseline is per fire. A fire whose jittered time is still ahead
  stays pending, so a replan between a fire and its jittered time does not drop it.
- A cron candidate is also strictly after ``last_scheduled_for``: a worker may start
  a run up to 2 ms early and replan before the slot's instant, and must not get the
  same slot back.
- When both the endpoint and its job are paused, the longer pause binds ("paused"):
  an indefinite pause beats any bounded one, otherwise the later ``until`` wins.
- A cron expression that never fires again, with nothing else to run, plans ``None``.
- An on-demand endpoint (``baseline=None``) never runs on its own: with no fresh
  one-shot (run-now included) and no fresh interval hint it plans ``None``, source
  ``on-demand``, whatever its failures, Retry-After, guardrails or pause. So the
  claim, which takes only rows with a ``next_run_at``, never picks it. What asks:
  a one-shot or run-now runs once; an interval hint is a temporary cadence,
  ``last_run_at`` (or ``now``) plus the hint, that ends with the hint (it lapses
  into "nothing pending", never into a baseline). Baseline-only rules do not
  apply: no failure backoff (it stretches a baseline), no catch-up and no missed
  slots (there are no slots); an overdue one-shot or hint run after downtime runs
  once. ``min_interval`` (the cooldown) and Retry-After hold a pending run back as
  on any endpoint. ``max_interval`` bounds a cadence, so it lowers a run only while
  an interval hint governs, and bounds a Retry-After hold; it never creates a run.
  When a bounded pause ends, what is still pending then runs (the plan as seen at
  the pause's end); with nothing pending it plans nothing.
- A ``run_once`` catch-up already stored and still ahead (within its jitter) is kept
  by a replan, so ``explain_schedule`` names the stored ``next_run_at`` until it is due.
- Catch-up of cron fires missed during downtime happens when the scheduler claims the
  stale ``next_run_at``; a replan always looks forward from ``now``.
- A ``run_once`` catch-up is one run. Whether it runs a stale claimed slot or a slot
  planned at ``now``, it stands for the last slot due before it started
  (``catchup.standing_slot``), so the next run is on the original lattice (or the
  next cron fire) and counts no missed slot twice; slots that failure backoff
  stretched past are not missed (``missed_slots``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cadenza.domain.limits import MAX_BACKOFF_EXPONENT
from cadenza.domain.model import (
    CatchUp,
    Endpoint,
    Job,
    OneShot,
    Pause,
    Plan,
    PlanSource,
    PlanStep,
    RunStatus,
)
from cadenza.domain.schedule import CronSchedule, IntervalSchedule

_MAX_COUNTED_SLOTS = 100_000
"""Counting missed cron fires stops here; beyond it the count is a lower bound."""

_NEVER = datetime.max.replace(tzinfo=UTC)
"""The candidate of a cron that never fires again; planned as ``None``."""


@dataclass(slots=True)
class _Draft:
    at: datetime
    source: PlanSource
    steps: list[PlanStep]
    cadence: bool = True
    """Whether a baseline or a fresh interval hint governs (``max_interval`` bounds it)."""

    def note(self, rule: str, at: datetime | None, note: str) -> None:
        self.steps.append(PlanStep(rule, at, note))


def plan_next_run(now: datetime, endpoint: Endpoint, job: Job) -> Plan:
    """The next run of ``endpoint`` as seen at ``now``; see the module docstring."""
    if endpoint.archived or job.archived:
        what = "endpoint" if endpoint.archived else "job"
        step = PlanStep("archived", None, f"The {what} is archived; nothing is scheduled.")
        return Plan(None, PlanSource.ARCHIVED, (step,))
    return _apply_pauses(now, endpoint, job, _unpaused(now, endpoint))


def _unpaused(now: datetime, endpoint: Endpoint) -> _Draft:
    """Rules 2 to 6: the plan as if nothing were paused."""
    draft = _baseline(now, endpoint)
    _apply_interval_hint(now, endpoint, draft)
    _apply_one_shots(now, endpoint, draft)
    _apply_clamps(endpoint, draft)
    _apply_retry_after(endpoint, draft)
    if draft.at < now:
        draft.note("not-in-past", now, "The candidate is in the past; running now instead.")
        draft.at = now
    return draft


def _baseline(now: datetime, endpoint: Endpoint) -> _Draft:
    if endpoint.baseline is None:
        note = "On demand: no baseline, so it runs only when asked (one-shot, run-now, hint)."
        return _Draft(_NEVER, PlanSource.ON_DEMAND, [PlanStep("on-demand", None, note)], False)
    if isinstance(endpoint.baseline, CronSchedule):
        return _cron_baseline(now, endpoint, endpoint.baseline)
    return _interval_baseline(now, endpoint, endpoint.baseline)


def _cron_baseline(now: datetime, endpoint: Endpoint, cron: CronSchedule) -> _Draft:
    draft = _Draft(_NEVER, PlanSource.BASELINE_CRON, [])
    previous = endpoint.last_scheduled_for
    floor = now if previous is None else max(now, previous)
    found = _next_cron_slot(endpoint, cron, floor)
    if found is None:
        draft.note("baseline-cron", None, f"Cron {cron.expression!r} never fires again.")
        return draft
    fire, draft.at = found
    draft.note(
        "baseline-cron",
        fire,
        f"Cron {cron.expression!r} in {cron.timezone} fires next at this time.",
    )
    if draft.at != fire:
        offset = draft.at - fire
        draft.note("jitter", draft.at, f"Deterministic jitter of {_seconds(offset)} for this fire.")
    return draft


def _next_cron_slot(
    endpoint: Endpoint, cron: CronSchedule, floor: datetime
) -> tuple[datetime, datetime] | None:
    """The first fire whose jittered time is after ``floor``, and that time.

    A fire up to one jitter before ``floor`` may still be pending, so the search
    starts there. Any fire after ``floor`` qualifies, which bounds the loop.
    """
    for fire in cron.fires_after(floor - endpoint.jitter):
        at = fire + jitter_offset(endpoint.id, fire, endpoint.jitter)
        if at > floor:
            return fire, at
    return None


def _interval_baseline(now: datetime, endpoint: Endpoint, interval: IntervalSchedule) -> _Draft:
    exponent = min(endpoint.failure_count, MAX_BACKOFF_EXPONENT)
    step = interval.every * (2**exponent)
    draft = _Draft(now, PlanSource.BASELINE_INTERVAL, [])
    lattice_starts = endpoint.last_scheduled_for is None
    if endpoint.last_scheduled_for is None:
        origin = endpoint.anchor
        draft.at = origin + step if interval.start_at is None else origin
        draft.note("baseline-interval", draft.at, _first_slot_note(interval))
    else:
        draft.at = endpoint.last_scheduled_for + step
        draft.note(
            "baseline-interval",
            draft.at,
            f"Last slot plus the interval of {_seconds(step)}.",
        )
    if exponent:
        draft.note(
            "backoff",
            draft.at,
            f"{endpoint.failure_count} consecutive failure(s) stretch the interval "
            f"×{2**exponent} (at most ×{2**MAX_BACKOFF_EXPONENT}).",
        )
    if draft.at < now and endpoint.catch_up is CatchUp.RUN_ONCE:
        _run_once(now, endpoint, draft)
        return draft
    if draft.at < now:
        _skip(now, endpoint, step, draft, jittered=lattice_starts)
    if lattice_starts:
        _apply_jitter(endpoint, draft)
    return draft


def _first_slot_note(interval: IntervalSchedule) -> str:
    if interval.start_at is not None:
        return "No run yet: the first slot is the configured start time."
    return f"No run yet: creation time plus the interval of {_seconds(interval.every)}."


def _run_once(now: datetime, endpoint: Endpoint, draft: _Draft) -> None:
    """Collapse the missed slot(s) into one run now, jittered by the missed slot.

    A catch-up already stored and still ahead within its jitter is kept: replanning
    or explaining it again names the same time instead of a new "now".
    """
    missed, stored = draft.at, endpoint.next_run_at
    kept = (
        stored is not None
        and endpoint.next_run_source is PlanSource.BASELINE_INTERVAL
        and max(missed, now) <= stored < now + endpoint.jitter
    )
    if stored is not None and kept:
        draft.at = stored
        note = "Missed slot(s) collapse into the one catch-up run planned (catch_up=run_once)."
        draft.note("catch-up", stored, note)
        return
    draft.note("catch-up", now, "Missed slot(s) collapse into one run now (catch_up=run_once).")
    draft.at = now
    offset = jitter_offset(endpoint.id, missed, endpoint.jitter)
    if offset:
        draft.at += offset
        draft.note("jitter", draft.at, f"Deterministic jitter of {_seconds(offset)} for this slot.")


def _skip(
    now: datetime, endpoint: Endpoint, step: timedelta, draft: _Draft, *, jittered: bool
) -> None:
    """Move to the first slot at or after ``now``. Where a lattice starts (its slot is
    jittered), to the first slot whose *jittered* time is at or after ``now``: a slot
    still pending within its jitter is not skipped, so a replan or an explanation at
    any moment before that time names the same slot."""
    # Ceiling division: the first slot at or after now; every slot before it is missed.
    behind = -((draft.at - now) // step)
    if jittered and endpoint.jitter:
        # Offsets differ per slot, so scan forward from the first slot that could
        # still be pending; at most jitter/step slots (capped), ending by ``behind``.
        first = max(0, -((draft.at - now + endpoint.jitter) // step), behind - _MAX_JITTER_STEPS)
        for index in range(first, behind):
            slot = draft.at + step * index
            if slot + jitter_offset(endpoint.id, slot, endpoint.jitter) >= now:
                behind = index
                break
    draft.at = draft.at + step * behind
    if behind:
        note = f"Skipping {behind} missed slot(s) to the next one (catch_up=skip)."
        draft.note("catch-up", draft.at, note)


_MAX_JITTER_STEPS = 100_000
"""How many slots a jittered skip scans at most (a jitter of an hour over a 1 s
interval is 3,600); bounds the loop."""


def _apply_jitter(endpoint: Endpoint, draft: _Draft) -> None:
    if not endpoint.jitter:
        return
    offset = jitter_offset(endpoint.id, draft.at, endpoint.jitter)
    draft.at += offset
    draft.note("jitter", draft.at, f"Deterministic jitter of {_seconds(offset)} for this slot.")


def jitter_offset(endpoint_id: str, slot: datetime, jitter: timedelta) -> timedelta:
    """A stable offset in ``[0, jitter)`` from a hash of the endpoint id and the slot.

    A zero (or sub-microsecond) jitter gives a zero offset.
    """
    micros = int(jitter / timedelta(microseconds=1))
    if micros <= 0:
        return timedelta(0)
    digest = hashlib.blake2b(f"{endpoint_id}|{slot.isoformat()}".encode(), digest_size=8).digest()
    return timedelta(microseconds=int.from_bytes(digest, "big") % micros)


def _apply_interval_hint(now: datetime, endpoint: Endpoint, draft: _Draft) -> None:
    hint = endpoint.interval_hint
    if hint is None:
        return
    if not hint.fresh(now):
        draft.note("hint-expired", None, "An interval hint expired and is ignored.")
        return
    base = endpoint.last_run_at or now
    at = max(base + hint.interval, now)
    who = f"{hint.actor}: {hint.reason or 'no reason given'}"
    if at >= hint.expires_at:
        _hint_lapses(endpoint, hint.expires_at, at, draft)
        return
    draft.at, draft.source, draft.cadence = at, PlanSource.HINT_INTERVAL, True
    draft.note(
        "hint-interval",
        at,
        f"Interval hint of {_seconds(hint.interval)} replaces the baseline until "
        f"{hint.expires_at.isoformat()} ({who}).",
    )


def _hint_lapses(endpoint: Endpoint, expires_at: datetime, hinted: datetime, draft: _Draft) -> None:
    # The hint's own next run would come after it expires; from expiry on the
    # baseline governs, so plan the baseline as seen at that moment.
    draft.note(
        "hint-interval",
        hinted,
        f"The interval hint would run next only after it expires at {expires_at.isoformat()}.",
    )
    resumed = _baseline(expires_at, endpoint)
    draft.at, draft.source, draft.cadence = resumed.at, resumed.source, resumed.cadence
    note = "The hint lapses first; the baseline as seen at its expiry applies."
    if endpoint.baseline is None:
        note = "The hint lapses first; on demand, nothing runs after it unless asked."
    draft.note("hint-lapses", None if resumed.at == _NEVER else resumed.at, note)


def _apply_one_shots(now: datetime, endpoint: Endpoint, draft: _Draft) -> None:
    """The queue's first live one-shot competes with the cadence; a run-now wins."""
    live = _live_one_shots(now, endpoint.one_shots, draft)
    if not live:
        return
    asked = next((shot for shot in live if shot.run_now), None)
    head = live[0] if asked is None else asked
    at = max(head.run_at, now)
    who = f"{head.actor}: {head.reason or 'no reason given'}"
    if asked is not None:
        # Run now: as soon as possible, whatever the cadence (guardrails still apply).
        draft.at, draft.source = at, PlanSource.RUN_NOW
        draft.note("run-now", at, f"A run was asked for now ({who}).")
    elif at <= draft.at:
        draft.at, draft.source = at, PlanSource.HINT_ONE_SHOT
        draft.note("hint-one-shot", at, f"One-shot run comes first ({who}).")
    else:
        draft.note("hint-one-shot", at, "A one-shot is pending after the cadence's next run.")
    if len(live) > 1:
        times = ", ".join(shot.run_at.isoformat() for shot in live)
        draft.note(
            "one-shots-queued",
            None,
            f"{len(live)} one-shots queued ({times}); a run serves every one due by its start.",
        )


def _live_one_shots(now: datetime, queue: tuple[OneShot, ...], draft: _Draft) -> list[OneShot]:
    """The one-shots that can still run, in queue order; the others are noted."""
    live = [shot for shot in queue if shot.fresh(now) and max(shot.run_at, now) < shot.expires_at]
    expired = sum(1 for shot in queue if not shot.fresh(now))
    if expired:
        draft.note("one-shot-expired", None, f"{expired} one-shot(s) expired unused; ignored.")
    if len(queue) - expired > len(live):
        draft.note(
            "one-shot-unreachable",
            None,
            f"{len(queue) - expired - len(live)} one-shot(s) would run after expiring; ignored.",
        )
    return live


def _apply_clamps(endpoint: Endpoint, draft: _Draft) -> None:
    last = endpoint.last_run_at
    rails = endpoint.guardrails
    if last is None:
        return
    if rails.min_interval is not None and draft.at < last + rails.min_interval:
        draft.at, draft.source = last + rails.min_interval, PlanSource.CLAMPED_MIN
        draft.note(
            "clamped-min",
            draft.at,
            f"Raised to the minimum interval of {_seconds(rails.min_interval)}.",
        )
    # No cadence (on demand, no hint): nothing to bound, and a bound must not create a run.
    if draft.cadence and rails.max_interval is not None and draft.at > last + rails.max_interval:
        draft.at, draft.source = last + rails.max_interval, PlanSource.CLAMPED_MAX
        draft.note(
            "clamped-max",
            draft.at,
            f"Lowered to the maximum interval of {_seconds(rails.max_interval)}.",
        )


def _apply_retry_after(endpoint: Endpoint, draft: _Draft) -> None:
    """No run before the target's Retry-After, but none later than ``max_interval``
    after the last run: a guardrail bounds every source of delay."""
    until = endpoint.retry_after_until
    if until is None or draft.at >= until:
        return
    at, note = until, f"The target asked not to be called before {until.isoformat()} (Retry-After)."
    rails = endpoint.guardrails
    if rails.max_interval is not None and endpoint.last_run_at is not None:
        bound = endpoint.last_run_at + rails.max_interval
        if bound < until:
            at, note = bound, note[:-1] + "; bounded by the maximum interval."
    if at > draft.at:
        draft.at = at
        draft.note("retry-after", at, note)


def _apply_pauses(now: datetime, endpoint: Endpoint, job: Job, draft: _Draft) -> Plan:
    binding = _binding_pause(now, endpoint, job)
    if binding is not None:
        if endpoint.baseline is None:
            return _paused_on_demand(*binding, endpoint, draft)
        return _paused_plan(*binding, draft)
    if draft.at == _NEVER and endpoint.baseline is None:
        draft.note("chosen", None, "On demand: nothing is pending; it runs only when asked.")
        return Plan(None, draft.source, tuple(draft.steps))
    if draft.at == _NEVER:
        draft.note("chosen", None, "Nothing will run: no source gives a next run.")
        return Plan(None, draft.source, tuple(draft.steps))
    draft.note("chosen", draft.at, f"Next run at this time, source {draft.source.value}.")
    return Plan(draft.at, draft.source, tuple(draft.steps))


def _binding_pause(now: datetime, endpoint: Endpoint, job: Job) -> tuple[str, Pause] | None:
    """The active pause that ends last (indefinite ends never), endpoint first on ties."""
    active = [
        (owner, pause)
        for owner, pause in (("endpoint", endpoint.pause), ("job", job.pause))
        if pause is not None and pause.active(now)
    ]
    if not active:
        return None
    return max(active, key=lambda item: _NEVER if item[1].until is None else item[1].until)


def _paused_on_demand(owner: str, pause: Pause, endpoint: Endpoint, draft: _Draft) -> Plan:
    """A baseline resumes when a pause ends; on demand, only what is still pending
    then does: the plan as seen at the pause's end (a one-shot or hint expired by
    then asks nothing)."""
    if pause.until is None:
        return _paused_plan(owner, pause, draft)
    who = f"{pause.actor}: {pause.reason or 'no reason given'}"
    resumed = _unpaused(pause.until, endpoint).at
    if resumed == _NEVER:
        note = f"on demand, nothing is pending when it ends ({who})."
        draft.note(
            "paused", None, f"The {owner} is paused until {pause.until.isoformat()}; " + note
        )
        return Plan(None, PlanSource.PAUSED, tuple(draft.steps))
    note = (
        f"The {owner} is paused until {pause.until.isoformat()}; what is pending runs then ({who})."
    )
    draft.note("paused", resumed, note)
    return Plan(resumed, PlanSource.PAUSED, tuple(draft.steps))


def _paused_plan(owner: str, pause: Pause, draft: _Draft) -> Plan:
    who = f"{pause.actor}: {pause.reason or 'no reason given'}"
    if pause.until is None:
        draft.note("paused", None, f"The {owner} is paused indefinitely ({who}).")
        return Plan(None, PlanSource.PAUSED, tuple(draft.steps))
    draft.note("paused", pause.until, f"The {owner} is paused until this time ({who}).")
    return Plan(pause.until, PlanSource.PAUSED, tuple(draft.steps))


def explain_plan(now: datetime, endpoint: Endpoint, job: Job) -> Plan:
    """The plan ``explain_schedule`` shows: ``plan_next_run`` at ``now``, except that a
    stored ``next_run_at`` already passed and not yet claimed is named as stored, with
    its source ("overdue"), instead of a made-up "now": that slot is what a worker
    claims next (a replan only looks forward, and would name a later cron fire).
    """
    plan = _with_flights(endpoint, plan_next_run(now, endpoint, job))
    stored = endpoint.next_run_at
    claimed = endpoint.lease is not None and endpoint.lease.until > now
    if stored is None or stored >= now or claimed:
        return plan
    wait = (
        "claimed once a run in flight ends" if endpoint.full else "it runs when a worker claims it"
    )
    late = f"Due at this stored time, {_seconds(now - stored)} ago; {wait}."
    step = PlanStep("overdue", stored, late)
    return Plan(stored, endpoint.next_run_source or plan.source, (*plan.explanation, step))


def _with_flights(endpoint: Endpoint, plan: Plan) -> Plan:
    """``plan`` with a last step naming the runs in flight, if any: a full endpoint's
    next slot is not claimed until one of them ends, whatever its time."""
    if not endpoint.in_flight:
        return plan
    count = f"{endpoint.in_flight} of at most {endpoint.max_in_flight} runs in flight"
    if endpoint.full:
        step = PlanStep("in-flight-full", None, f"{count}: the next slot waits for one to end.")
    else:
        step = PlanStep("in-flight", None, f"{count}; the next slot may start meanwhile.")
    return replace(plan, explanation=(*plan.explanation, step))


def preview(now: datetime, endpoint: Endpoint, job: Job, n: int) -> list[Plan]:
    """The next ``n`` plans assuming each run starts on time, succeeds, and no new hints.

    A pause until T plans a run at T, so the preview carries on past it; it stops
    at the first plan that schedules nothing.
    """
    plans: list[Plan] = []
    current = endpoint
    at = now
    for _ in range(n):
        plan = plan_next_run(at, current, job)
        plans.append(plan)
        if plan.next_run_at is None:
            break
        start = plan.next_run_at
        current = replace(
            current,
            last_run_at=start,
            last_scheduled_for=start,
            last_status=RunStatus.SUCCESS,
            failure_count=0,
            one_shots=not_served(current.one_shots, start),
        )
        at = start
    return plans


def not_served(queue: tuple[OneShot, ...], started_at: datetime) -> tuple[OneShot, ...]:
    """The one-shots a run that started at ``started_at`` leaves queued: it serves
    (consumes) every one due by its start, so each one-shot is served exactly once."""
    if not queue or queue[0].run_at > started_at:
        return queue
    return tuple(shot for shot in queue if shot.run_at > started_at)


def missed_slots(endpoint: Endpoint, slot: datetime) -> int:
    """Baseline slots in ``(last slot, slot]`` beyond ``slot`` itself, where ``slot``
    is the one a run stands for (``catchup.standing_slot``).

    An interval lattice steps by the backed-off interval the run was planned with, so
    slots that failure backoff skipped are not missed. Each missed slot is counted on
    exactly one run: the run's standing slot becomes the next run's ``last slot``.
    """
    previous = endpoint.last_scheduled_for
    if previous is None or slot <= previous or endpoint.baseline is None:
        return 0
    if isinstance(endpoint.baseline, IntervalSchedule):
        step = endpoint.baseline.every * (1 << min(endpoint.failure_count, MAX_BACKOFF_EXPONENT))
        return max(0, (slot - previous) // step - 1)
    count = 0
    for fire in endpoint.baseline.fires_after(previous):
        if fire > slot or count >= _MAX_COUNTED_SLOTS:
            break
        count += 1
    return max(0, count - 1)


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g} s"
