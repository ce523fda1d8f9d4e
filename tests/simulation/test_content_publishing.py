"""Content: publish on cron, watch fresh content closely, promote once, then relax."""

from __future__ import annotations

from datetime import timedelta

from cadenza.simulation import Mode, load_scenario

from .replays import replay

NAME = "content-publishing"
SCENARIO = load_scenario(NAME)
PUBLISH = SCENARIO.at(2)
VIRAL = SCENARIO.at(18)


def test_the_post_goes_out_on_its_cron_and_the_announcements_on_their_one_shots() -> None:
    result = replay(NAME)
    assert [r.started_at for r in result.runs_of("publish_blog_post")] == [PUBLISH]
    assert [r.started_at for r in result.runs_of("tweet_announcement")] == [SCENARIO.at(3)]
    assert [r.started_at for r in result.runs_of("linkedin_article")] == [SCENARIO.at(7)]
    assert {r.source for r in result.runs_of("tweet_announcement")} == {"hint-one-shot"}


def test_engagement_monitoring_tightens_within_a_minute_of_publishing() -> None:
    result = replay(NAME)
    for name in ("track_blog_analytics", "monitor_social_metrics"):
        hint = result.changes_to(name, "apply_interval_hint")[0]
        assert PUBLISH < hint.at <= PUBLISH + timedelta(minutes=1)
        assert hint.details["interval_seconds"] == 300


def test_going_viral_is_seen_within_one_tightened_interval_and_static_misses_it() -> None:
    adaptive = replay(NAME).figures.detection_delay
    assert adaptive is not None
    assert adaptive <= timedelta(minutes=5)
    assert replay(NAME, Mode.STATIC).figures.detection_delay is None


def test_the_post_is_boosted_and_cross_posted_once_only_after_the_thresholds() -> None:
    result = replay(NAME)
    for name in ("boost_high_performing_post", "crosspost_viral_content"):
        runs = result.runs_of(name)
        assert len(runs) == 1
        assert runs[0].started_at > VIRAL


def test_analytics_relax_as_engagement_fades_and_the_weekly_analysis_is_untouched() -> None:
    result = replay(NAME)
    assert result.changes_to("track_blog_analytics")[-1].action == "clear_adaptive_hints"
    assert result.runs_of("analyze_best_posting_times") == []
    assert result.changes_to("analyze_best_posting_times") == []
    assert result.figures.clamp_violations == 0
