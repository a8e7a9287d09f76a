"""The statistics of A/B tests and lift, and the deterministic assignment, against figures
computed by hand (or read from printed tables), without a database."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from server.core import significance
from server.core.significance import Sample
from server.planning.experiments import bucket, choose_variant, in_holdout

IDS = range(1, 10_001)


def test_holdout_assignment_is_deterministic_and_its_slice_is_the_percentage():
    held = [i for i in IDS if in_holdout(7, "checkout_recovery", i, 10)]
    assert held == [i for i in IDS if in_holdout(7, "checkout_recovery", i, 10)]  # the same every time
    assert abs(len(held) / len(IDS) - 0.10) < 0.02
    # Another kind or shop draws another slice (the hash covers shop + kind + subscription).
    assert held != [i for i in IDS if in_holdout(7, "welcome", i, 10)]
    assert held != [i for i in IDS if in_holdout(8, "checkout_recovery", i, 10)]
    assert not any(in_holdout(7, "welcome", i, 0) for i in IDS)
    # A larger holdout contains the smaller one: raising it only moves treated subscriptions out.
    assert set(held) <= {i for i in IDS if in_holdout(7, "checkout_recovery", i, 25)}


def test_variant_assignment_is_deterministic_with_the_slice_split_evenly():
    variants = [{"key": k, "title": k} for k in "ABCD"]
    experiment = SimpleNamespace(id=42, slice_percent=20, variants=variants)
    chosen = [choose_variant(experiment, i) for i in IDS]
    assert chosen == [choose_variant(experiment, i) for i in IDS]
    in_test = [v for v in chosen if v is not None]
    assert abs(len(in_test) / len(IDS) - 0.20) < 0.02
    for key in "ABCD":
        share = sum(1 for v in in_test if v["key"] == key) / len(IDS)
        assert abs(share - 0.05) < 0.02, (key, share)
    other = SimpleNamespace(id=43, slice_percent=20, variants=variants)
    assert chosen != [choose_variant(other, i) for i in IDS]
    everyone = SimpleNamespace(id=42, slice_percent=100, variants=variants)
    assert all(choose_variant(everyone, i) is not None for i in IDS)


def test_bucket_is_a_stable_number_below_ten_thousand():
    assert bucket("experiment:1:1") == bucket("experiment:1:1")
    assert all(0 <= bucket(f"k{i}") < 10_000 for i in range(1000))


def test_two_proportion_z_test_matches_the_hand_computed_2x2_table():
    # Variant B: 50 clicks of 200 sent (p = 0.25); variant A: 30 of 200 (p = 0.15).
    # Pooled p = 80 / 400 = 0.2; se = sqrt(0.2 · 0.8 · (1/200 + 1/200)) = sqrt(0.0016) = 0.04;
    # z = (0.25 − 0.15) / 0.04 = 2.5; p = 2 · (1 − Φ(2.5)) = 2 · 0.0062097 = 0.0124193.
    result = significance.two_proportion_z_test(50, 200, 30, 200)
    assert result.statistic == pytest.approx(2.5)
    assert result.p_value == pytest.approx(0.0124193, abs=1e-6)
    assert significance.two_proportion_z_test(30, 200, 50, 200).statistic == pytest.approx(-2.5)
    assert significance.two_proportion_z_test(0, 0, 3, 10).p_value == 1.0


def test_student_t_matches_printed_tables():
    # Two-sided 5 % critical values from any t table: df 3 → 3.182, 10 → 2.228, 18 → 2.101, 30 → 2.042.
    for df, critical in ((3, 3.182), (10, 2.228), (18, 2.101), (30, 2.042)):
        assert significance.t_quantile(0.975, df) == pytest.approx(critical, abs=5e-4)
        assert significance.t_two_sided_p(critical, df) == pytest.approx(0.05, abs=5e-4)
    assert significance.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)  # the normal limit


def test_welch_test_and_interval_match_hand_figures():
    # a: 6 of 10 values are 100 (mean 60), b: 4 of 10 (mean 40). Each variance:
    # 100² · 6 · 4 / (10 · 9) = 2666.67; se = sqrt(2666.67/10 + 2666.67/10) = 23.0940;
    # df = (2 · 266.667)² / (2 · 266.667² / 9) = 18; t = 20 / 23.094 = 0.8660;
    # 95 % interval 20 ± 2.1009 · 23.094 = 20 ± 48.519 → (−28.519, 68.519).
    a, b = Sample.of([100.0] * 6, 10), Sample.of([100.0] * 4, 10)
    test = significance.welch_t_test(a, b)
    assert (test.statistic, test.df) == (pytest.approx(0.866025, abs=1e-6), pytest.approx(18))
    assert test.p_value == pytest.approx(0.3979, abs=1e-4)
    interval = significance.welch_interval(a, b)
    assert (interval.estimate, interval.low, interval.high) == (
        pytest.approx(20), pytest.approx(-28.519, abs=1e-3), pytest.approx(68.519, abs=1e-3))


def test_proportion_difference_interval_matches_hand_figures():
    # 6/10 against 4/10: 0.2 ± 1.95996 · sqrt(0.24/10 + 0.24/10) = 0.2 ± 0.429406.
    interval = significance.proportion_difference_interval(6, 10, 4, 10)
    assert (interval.low, interval.high) == (pytest.approx(-0.229406, abs=1e-6), pytest.approx(0.629406, abs=1e-6))
