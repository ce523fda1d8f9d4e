"""Scraping: tighten for a competitor sale, honour Retry-After, relax idle polling."""

from __future__ import annotations

import itertools
from datetime import timedelta

from cadenza.simulation import Mode, load_scenario

from .replays import replay

NAME = "web-scraping"
SCENARIO = load_scenario(NAME)
SALE = SCENARIO.at(14.5)
LIMITED = SCENARIO.at(24.25)


def test_a_competitor_sale_tightens_scraping_and_alerts_the_pricing_team_once() -> None:
    result = replay(NAME)
    hint = result.changes_to("scrape_competitor_prices", "apply_interval_hint")[0]
    alerts = result.runs_of("alert_price_drop")
    assert hint.at > SALE
    assert hint.details["interval_seconds"] == 120
    assert len(alerts) == 1
    assert alerts[0].started_at > SALE


def test_the_scraper_never_calls_while_the_site_asked_it_to_wait() -> None:
    adaptive = replay(NAME)
    assert adaptive.figures.retry_after_violations == 0
    # #16.4: Retry-After is honoured by default, with or without a planner.
    assert replay(NAME, Mode.STATIC_TIGHT).figures.retry_after_violations == 0
    assert [c.actor for c in adaptive.changes_to("scrape_competitor_prices", "pause_endpoint")] == [
        "planner"
    ]


def test_rate_limiting_is_seen_within_one_tightened_interval() -> None:
    adaptive = replay(NAME).figures.detection_delay
    static = replay(NAME, Mode.STATIC).figures.detection_delay
    assert adaptive is not None
    assert static is not None
    assert adaptive <= timedelta(minutes=2) < static


def test_burnt_proxies_are_rotated_once_and_unchanged_mentions_are_polled_less_often() -> None:
    result = replay(NAME)
    rotations = result.runs_of("rotate_proxies")
    assert len(rotations) == 1
    assert rotations[0].started_at > LIMITED
    mentions = [r.started_at for r in result.runs_of("scrape_social_mentions")]
    gaps = [b - a for a, b in itertools.pairwise(mentions)]
    assert gaps[-1] > gaps[0]


def test_parsing_follows_only_successful_scrapes() -> None:
    result = replay(NAME)
    scrapes = [r for r in result.runs_of("scrape_competitor_prices") if r.ok]
    for parse in result.runs_of("parse_extracted_data"):
        assert any(
            s.finished_at <= parse.started_at <= s.finished_at + timedelta(minutes=1)
            for s in scrapes
        )
