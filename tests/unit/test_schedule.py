"""Baseline schedules: cron expressions in a zone, and intervals (SCHEDULING.md §1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest
from domain_builders import T0

from cadenza.domain import errors
from cadenza.domain.limits import MAX_INTERVAL, MIN_INTERVAL
from cadenza.domain.schedule import CronSchedule, IntervalSchedule, zone

MONDAY_NOON = T0


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("@hourly", datetime(2026, 1, 5, 13, tzinfo=UTC), id="hourly is on the hour"),
        pytest.param("@daily", datetime(2026, 1, 6, tzinfo=UTC), id="daily is at midnight"),
        pytest.param("@midnight", datetime(2026, 1, 6, tzinfo=UTC), id="midnight is daily"),
        pytest.param("@weekly", datetime(2026, 1, 11, tzinfo=UTC), id="weekly is on Sunday"),
        pytest.param("@monthly", datetime(2026, 2, 1, tzinfo=UTC), id="monthly is on the 1st"),
        pytest.param("@yearly", datetime(2027, 1, 1, tzinfo=UTC), id="yearly is on 1 January"),
        pytest.param("@annually", datetime(2027, 1, 1, tzinfo=UTC), id="annually is yearly"),
        pytest.param("@DAILY", datetime(2026, 1, 6, tzinfo=UTC), id="macros ignore case"),
    ],
)
def test_cron_macros_mean_what_cron_means(expression: str, expected: datetime) -> None:
    assert CronSchedule(expression).next_after(MONDAY_NOON) == expected


def test_extra_whitespace_in_a_cron_expression_is_harmless() -> None:
    assert CronSchedule("  0   *  * * * ").next_after(T0) == T0 + timedelta(hours=1)


def test_a_six_field_cron_puts_seconds_first() -> None:
    schedule = CronSchedule("*/15 * * * * *")
    assert list(islice(schedule.fires_after(T0), 3)) == [
        T0 + timedelta(seconds=s) for s in (15, 30, 45)
    ]


def test_the_next_fire_is_strictly_after_now_even_within_a_second() -> None:
    every_minute = CronSchedule("* * * * *")
    assert every_minute.next_after(T0) == T0 + timedelta(minutes=1)
    assert every_minute.next_after(T0 + timedelta(microseconds=1)) == T0 + timedelta(minutes=1)
    assert every_minute.next_after(T0 - timedelta(microseconds=1)) == T0


def test_a_cron_fires_at_wall_clock_time_in_its_zone() -> None:
    # Asia/Kolkata is UTC+05:30 all year: 09:00 there is 03:30 UTC.
    schedule = CronSchedule("0 9 * * *", "Asia/Kolkata")
    assert schedule.next_after(T0) == datetime(2026, 1, 6, 3, 30, tzinfo=UTC)


def test_the_default_zone_is_utc() -> None:
    assert CronSchedule("0 9 * * *").timezone == "UTC"


def test_day_of_month_and_day_of_week_together_mean_either() -> None:
    # Debian cron: with both fields restricted, a day matching either one fires.
    fires = list(islice(CronSchedule("0 0 13 * 5").fires_after(T0), 3))
    assert [f.date().isoformat() for f in fires] == ["2026-01-09", "2026-01-13", "2026-01-16"]


def test_fires_come_in_utc_and_strictly_increasing() -> None:
    fires = list(islice(CronSchedule("*/7 * * * *", "Europe/Berlin").fires_after(T0), 50))
    assert all(f.tzinfo is UTC for f in fires)
    assert all(a < b for a, b in pairwise(fires))


def test_a_zone_is_looked_up_by_its_iana_name() -> None:
    assert str(zone("Europe/Berlin")) == "Europe/Berlin"


@pytest.mark.parametrize(
    "span",
    [MIN_INTERVAL, timedelta(days=25), timedelta(days=399), MAX_INTERVAL],
    ids=["one second", "25 days", "399 days", "400 days"],
)
def test_an_interval_from_one_second_to_400_days_is_accepted(span: timedelta) -> None:
    assert IntervalSchedule(span).every == span


def test_an_interval_keeps_its_start_time() -> None:
    start = T0 + timedelta(hours=1)
    assert IntervalSchedule(timedelta(minutes=5), start).start_at == start


@pytest.mark.parametrize(
    "span",
    [
        timedelta(0),
        timedelta(milliseconds=999),
        -timedelta(minutes=1),
        MAX_INTERVAL + timedelta(seconds=1),
    ],
    ids=["zero", "under one second", "negative", "a second over 400 days"],
)
def test_an_interval_outside_one_second_to_400_days_is_refused(span: timedelta) -> None:
    with pytest.raises(errors.InvalidInterval) as raised:
        IntervalSchedule(span)
    assert raised.value.field == "baseline.interval_seconds"
    assert "between 1 s and 400 days" in raised.value.message


def test_asking_inside_the_second_copy_of_a_repeated_hour_never_returns_a_past_fire() -> None:
    # 06:15 UTC on 1 November 2026 is 01:15 EST, the second 01:15 in New York; the
    # 01:30 fire already happened at 05:30 UTC, during the first copy.
    schedule = CronSchedule("30 1 * * *", "America/New_York")
    now = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)
    assert schedule.next_after(now) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "expression",
    ["0 9 * * * 30", "*/5 * * * * 59", "0 0 1 1 * 45"],
    ids=["hour-9 with seconds last", "every 5 min with seconds last", "yearly with seconds last"],
)
def test_a_six_field_cron_with_seconds_last_is_refused_naming_each_field(expression: str) -> None:
    with pytest.raises(errors.InvalidCron) as caught:
        CronSchedule(expression)
    message = str(caught.value)
    assert "seconds first" in message
    assert "second minute hour day-of-month month day-of-week" in message


def test_an_invalid_five_field_cron_names_the_five_fields() -> None:
    with pytest.raises(errors.InvalidCron, match="minute hour day-of-month month day-of-week"):
        CronSchedule("61 * * * *")


def test_the_documented_cron_form_says_seconds_first() -> None:
    from cadenza.actions.endpoint_models import BaselineSpec

    schema = json.dumps(BaselineSpec.model_json_schema())
    assert "seconds first" in schema
    assert "seconds last" not in schema
