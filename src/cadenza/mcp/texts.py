"""The texts an agent reads besides the tools: the server instructions and the
``cadenza://docs/scheduling`` resource.

Conventions every tool shares are said here once instead of in each tool: units,
ids, reasons, paging, and the fields whose meaning is the same everywhere (the
glossary ``cadenza.mcp.tools`` derives from the registry).
"""

from __future__ import annotations

INSTRUCTIONS = (
    "Cadenza schedules HTTP requests (endpoints, grouped in jobs) by cron or interval and "
    "lets you steer them with short-lived hints. Start with whoami (your tenant and "
    "scopes); you see only the tools your scopes allow. Read the resource "
    "cadenza://docs/scheduling for the rules that decide the next run. Ids are opaque "
    "strings from list_jobs, list_endpoints and list_runs; ids in tool examples are "
    "placeholders. Every change is audited with your identity: pass a short reason. "
    "Times are RFC 3339 strings in UTC (e.g. 2026-01-01T09:00:00Z); durations are seconds "
    "as numbers in fields named *_seconds. Lists page by keyset: pass next_cursor back as "
    "cursor. Arguments are checked strictly: give numbers, booleans and times as such "
    "(true is not 1, 0 is not false). A failed call returns isError with a JSON text: a "
    "stable code, a message, a hint and, for bad arguments, one entry per field."
)
"""The server instructions, before the glossary of shared fields."""

SCHEDULING_GUIDE = """\
# How Cadenza decides when an endpoint runs

An endpoint has at most one baseline: a cron expression with an IANA time zone, or
an interval in seconds (at least 1). Cadenza computes the next run from it, then lets
short-lived hints and pauses bend it, always inside the endpoint's guardrails. An
endpoint without a baseline is on demand: it runs only when asked (one-shot,
trigger_run, or an interval hint while fresh, which then ends with the hint);
max_interval_seconds never makes it run by itself.

## The rules, in the order they apply
1. Archived endpoint or job: not scheduled.
2. Baseline. Cron: the next fire after now in the endpoint's zone (a time skipped by
   a daylight-saving jump runs right after the jump; a repeated hour runs once).
   Interval: last slot + interval, doubled per consecutive failure up to x32
   (backoff). After downtime the missed slots collapse into one run now
   (catch_up=run_once) or wait for the next slot (catch_up=skip).
3. Interval hint (apply_interval_hint): while fresh it replaces the baseline, cron
   included: next run = last run + hint interval, never before now.
4. One-shots (schedule_one_shot_run) queue, up to 20 per endpoint: each is one extra
   run at its run_at; the earliest wins when earlier than the cadence's next run. A
   run uses up every one-shot due by its start; cancel one with cancel_one_shot.
5. Guardrails: min_interval_seconds (also the cooldown) and max_interval_seconds,
   measured from the last actual start, bound every source: baseline, backoff and
   every hint from people, agents or the planner.
6. Never in the past: a time before now becomes now.
7. Pause wins: an endpoint or job paused until T runs no earlier than T.
8. Hints expire by themselves (ttl_seconds); the baseline then rules again.

Every change (hint, pause, resume, clear, reset, configuration) replans at once:
a tighter cadence takes effect now, not after the next run.

## Choosing a tool
- Watch closely for a while: apply_interval_hint (e.g. 30 s for 3600 s).
- Run once soon, or later reminders: schedule_one_shot_run (delay_seconds or run_at;
  call it once per reminder, e.g. at 7, 14 and 21 days).
- Run once right now (source run-now; not while paused): trigger_run.
- Hold off: pause_or_resume_endpoint with until; without until it resumes.
- Back to normal: clear_adaptive_hints (a pause stays until resumed).
- After a fix: reset_failure_count removes the backoff.
- Check a request without touching the schedule: test_endpoint.
- Why is the next run when it is: explain_schedule (the plan, each rule applied,
  and a preview of the next runs).
- What happened: list_runs, get_run_details, summarize_endpoint_health,
  list_audit_events (who changed what, and why).

Jobs group endpoints; pausing a job pauses all of its endpoints. Tiers (e.g. health,
investigation, recovery, alert) are labels you choose on each endpoint; a common
pattern keeps investigation endpoints paused until something looks wrong, and gives
recovery and alert endpoints a min_interval_seconds as their cooldown.

Conventions: times are RFC 3339 in UTC; durations are seconds in *_seconds fields;
every change takes an optional reason, recorded in the audit log with your identity.
"""
"""The ``cadenza://docs/scheduling`` resource: the scheduling rules for agents."""
