"""Statistics helpers against hand-computed values."""

import math

import numpy as np
import pytest

import helpers


def test_mean_ci_matches_student_t():
    mean, low, high = helpers.mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, df=2) * s / sqrt(n)
    assert mean == 2.0
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half))


def test_mean_ci_of_one_value_has_no_interval():
    mean, low, high = helpers.mean_ci([0.98])
    assert mean == 0.98 and math.isnan(low) and math.isnan(high)


def test_wilson_interval_matches_formula():
    k, n, z = 9000, 10000, 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert helpers.wilson_interval(k, n) == pytest.approx((centre - half, centre + half))


def test_mcnemar_counts_discordant_pairs():
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 0], bool)
    b = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1, 0], bool)
    result = helpers.mcnemar(a, b)
    assert (result["only_a_correct"], result["only_b_correct"]) == (5, 1)
    assert result["p_value"] == pytest.approx(2 * 7 / 64)  # exact two-sided binomial, n=6


def test_fmt_pct():
    assert helpers.fmt_pct(0.98712) == "98.71 %"
