"""The mass 404/410 guard's arithmetic: the sliding window, the baseline and the threshold."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server.core.models import PushHost
from server.delivery.storm import (ENDED, STARTED, STORM, UNSURE, StormSettings, origin, record, roll, threshold,
                                   verdict, window)

T0 = datetime(2026, 6, 26, 12, 0, tzinfo=timezone.utc)
SETTINGS = StormSettings(window_seconds=600, min_answers=50, min_share=0.2, baseline_factor=5, retry_seconds=1800)


def host(**overrides) -> PushHost:
    values = dict(host="https://fcm.googleapis.com", bucket_start=T0, answers=0, gone=0, previous_answers=0,
                  previous_gone=0, baseline=None, storm_since=None, storm_until=None, updated_at=T0)
    values.update(overrides)
    return PushHost(**values)


def test_settings_are_read_from_the_config_whose_defaults_are_the_declared_ones():
    from server.core.config import Settings

    defaults = Settings().model_dump()
    assert StormSettings.from_config(defaults) == StormSettings()
    read = StormSettings.from_config({**defaults, "PUSH_STORM_MIN_ANSWERS": "10", "PUSH_STORM_MIN_SHARE": "0.3",
                                      "PUSH_STORM_RETRY_SECONDS": 60})
    assert (read.min_answers, read.min_share, read.retry_seconds) == (10, 0.3, 60.0)


@pytest.mark.parametrize("endpoint, expected", [
    ("https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"),
    ("https://Updates.Push.Services.Mozilla.com/wpush/v2/x", "https://updates.push.services.mozilla.com"),
    ("http://127.0.0.1:8090/push/a", "http://127.0.0.1:8090"),
    ("not an endpoint", ""),
])
def test_the_host_is_the_endpoints_origin(endpoint, expected):
    assert origin(endpoint) == expected


def test_the_threshold_is_the_floor_or_five_times_the_baseline_capped_at_a_half():
    assert threshold(None, SETTINGS) == 0.2
    assert threshold(0.02, SETTINGS) == 0.2
    assert threshold(0.06, SETTINGS) == pytest.approx(0.3)
    assert threshold(0.4, SETTINGS) == 0.5


def test_a_full_window_of_gone_answers_starts_a_storm():
    row = host()
    assert record(row, 60, 60, T0, SETTINGS) == STARTED
    assert row.storm_since == T0


def test_too_few_answers_never_start_a_storm():
    row = host()
    assert record(row, 49, 49, T0, SETTINGS) is None
    assert row.storm_since is None


def test_a_few_percent_of_gone_is_churn_not_a_storm():
    row = host()
    assert record(row, 200, 8, T0, SETTINGS) is None
    assert row.storm_since is None


def test_a_share_just_over_the_threshold_starts_one_and_just_under_does_not():
    assert record(host(), 100, 21, T0, SETTINGS) == STARTED
    assert record(host(), 100, 20, T0, SETTINGS) is None


def test_a_host_with_a_high_baseline_needs_five_times_it():
    row = host(baseline=0.05)  # threshold 25 %
    assert record(row, 100, 24, T0, SETTINGS) is None
    assert record(row, 100, 40, T0 + timedelta(seconds=1), SETTINGS) == STARTED


def test_the_storm_ends_when_a_full_window_is_back_under_the_threshold():
    row = host()
    record(row, 100, 100, T0, SETTINGS)
    later = T0 + timedelta(seconds=1800)  # the held pushes come back after the old window left
    assert record(row, 20, 0, later, SETTINGS) is None  # too few answers to call it over
    assert row.storm_since is not None
    assert record(row, 40, 1, later, SETTINGS) == ENDED
    assert (row.storm_since, row.storm_until) == (None, later)


def test_the_previous_bucket_counts_by_the_part_still_in_the_window():
    row = host(answers=100, gone=50)
    roll(row, T0 + timedelta(seconds=900), SETTINGS)  # a bucket and a half later
    assert (row.previous_answers, row.previous_gone, row.answers, row.gone) == (100, 50, 0, 0)
    assert row.bucket_start == T0 + timedelta(seconds=600)
    assert window(row, T0 + timedelta(seconds=900), SETTINGS) == pytest.approx((50.0, 25.0))


def test_an_idle_window_forgets_everything():
    row = host(answers=100, gone=90, previous_answers=100, previous_gone=90)
    roll(row, T0 + timedelta(seconds=1300), SETTINGS)
    assert window(row, T0 + timedelta(seconds=1300), SETTINGS) == (0, 0)
    assert row.bucket_start == T0 + timedelta(seconds=1200)


def test_calm_full_buckets_move_the_baseline_and_storm_buckets_do_not():
    row = host(answers=100, gone=4)
    roll(row, T0 + timedelta(seconds=600), SETTINGS)
    assert row.baseline == pytest.approx(0.04)
    row.answers, row.gone = 100, 14
    roll(row, T0 + timedelta(seconds=1200), SETTINGS)
    assert row.baseline == pytest.approx(0.04 + 0.2 * (0.14 - 0.04))
    before = row.baseline
    row.answers, row.gone, row.storm_since = 100, 100, T0
    roll(row, T0 + timedelta(seconds=1800), SETTINGS)
    assert row.baseline == before


def test_a_bucket_with_too_few_answers_leaves_the_baseline_alone():
    row = host(answers=10, gone=5)
    roll(row, T0 + timedelta(seconds=600), SETTINGS)
    assert row.baseline is None


def test_a_single_gone_in_a_quiet_window_is_calm_and_several_are_too_early_to_judge():
    row = host()
    record(row, 3, 1, T0, SETTINGS)
    assert verdict(row, T0, SETTINGS) is None  # one expiry: churn, expire it
    record(row, 3, 2, T0, SETTINGS)
    assert verdict(row, T0, SETTINGS) == UNSURE  # 3 gone of 6: hold until the window can judge
    record(row, 94, 0, T0, SETTINGS)
    assert verdict(row, T0, SETTINGS) is None  # 3 of 100: churn


def test_a_storm_is_a_storm_whatever_the_window():
    row = host(storm_since=T0)
    assert verdict(row, T0 + timedelta(hours=5), SETTINGS) == STORM
