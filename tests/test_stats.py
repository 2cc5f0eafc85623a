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


def test_confusion_matrix_and_most_confused_pairs():
    y_true = np.array([4, 4, 4, 9, 9, 7, 7, 1])
    y_pred = np.array([9, 9, 4, 4, 9, 2, 7, 1])
    cm = helpers.confusion_matrix(y_true, y_pred)
    assert cm.sum() == 8 and np.trace(cm) == 4 and cm[4, 9] == 2 and cm[9, 4] == 1
    top = helpers.most_confused(y_true, y_pred, k=2)
    assert top.iloc[0][["true", "predicted", "count", "reverse"]].tolist() == [4, 9, 2, 1]
    assert top.iloc[0]["share_of_errors"] == pytest.approx(0.5)
    assert top.iloc[1][["true", "predicted", "count"]].tolist() == [7, 2, 1]


def test_seed_summary_groups_runs_with_intervals():
    import pandas as pd

    runs = pd.DataFrame({"model": ["a", "a", "a", "b"], "test_accuracy": [0.97, 0.98, 0.99, 0.9],
                         "val_accuracy": 0.5, "test_loss": 0.1, "n_params": [5, 5, 5, 7],
                         "train_seconds": [1.0, 2.0, 3.0, 4.0]})
    table = helpers.seed_summary(runs)
    assert list(table.index) == ["a", "b"] and table.loc["a", "seeds"] == 3
    mean, low, high = helpers.mean_ci([0.97, 0.98, 0.99])
    assert table.loc["a", "test_accuracy"] == pytest.approx(mean)
    assert table.loc["a", "test_accuracy_ci_low"] == pytest.approx(low)
    assert table.loc["a", "train_seconds"] == 2.0 and table.loc["b", "n_params"] == 7
    assert math.isnan(table.loc["b", "test_accuracy_ci_high"])


def test_calibration_of_a_calibrated_and_an_overconfident_classifier():
    rng = np.random.default_rng(0)
    y = rng.integers(10, size=20000)
    confidence = rng.uniform(0.2, 1.0, size=len(y))
    right = rng.random(len(y)) < confidence  # right exactly as often as it claims
    pred = np.where(right, y, (y + 1) % 10)
    proba = np.full((len(y), 10), 0.0)
    proba[np.arange(len(y)), pred] = confidence
    table, ece = helpers.calibration(proba, y)
    assert ece < 0.02 and table["count"].sum() == len(y) and len(table) <= 15
    overconfident = proba.copy()
    overconfident[np.arange(len(y)), pred] = 1.0  # always certain, right ~60 % of the time
    table, ece = helpers.calibration(overconfident, y)
    assert len(table) == 1 and ece == pytest.approx(1 - right.mean())


def test_pareto_front_keeps_only_the_unbeaten_points():
    cost = [1, 2, 3, 4, 2]
    error = [5, 3, 3, 1, 4]
    assert helpers.pareto_front(cost, error).tolist() == [True, True, False, True, False]
    assert helpers.pareto_front([1, 1], [2, 2]).tolist() == [True, True]  # ties beat nobody


def test_clopper_pearson_matches_beta_quantiles():
    from scipy import stats

    low, high = helpers.clopper_pearson(3, 20)
    assert low == pytest.approx(stats.beta.ppf(0.025, 3, 18))
    assert high == pytest.approx(stats.beta.ppf(0.975, 4, 17))
    assert helpers.clopper_pearson(0, 20)[0] == 0.0
    assert helpers.clopper_pearson(20, 20)[1] == 1.0
    assert helpers.clopper_pearson(0, 20)[1] == pytest.approx(1 - 0.025 ** (1 / 20))


def test_fisher_exact_hand_worked():
    # 3/3 vs 2/3: the review's example; p = 1. 5/5 vs 0/5: p = 2 / C(10, 5) = 2/252.
    assert helpers.fisher_exact(3, 3, 2, 3) == pytest.approx(1.0)
    assert helpers.fisher_exact(5, 5, 0, 5) == pytest.approx(2 / 252)


def test_central_range_and_reproduction_rule():
    values = np.arange(11) / 10  # 0.0 ... 1.0
    assert helpers.central_range(values) == pytest.approx((0.025, 0.975))
    assert helpers.reproduces(values, values + 1, 0.5, 1.5)
    assert not helpers.reproduces(values, values + 1, 0.5, 2.5)  # the loss is outside
    assert not helpers.reproduces(values, values + 1, 0.99, 1.5)  # the accuracy is outside


def test_distance_weighs_points_and_log_loss():
    assert helpers.distance(0.93, 0.2843, 0.92, 0.2843) == pytest.approx(1.0)
    assert helpers.distance(0.92, 0.2843 * math.e, 0.92, 0.2843) == pytest.approx(10.0)


def test_diff_ci_is_welch():
    a, b = [1.0, 2.0, 3.0], [1.0, 1.5, 2.0, 2.5]
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)  # Welch-Satterthwaite
    from scipy import stats

    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff, low, high = helpers.diff_ci(a, b)
    assert diff == pytest.approx(0.25)
    assert (low, high) == pytest.approx((0.25 - half, 0.25 + half))


def test_test_sampling_interval_of_one_run_is_close_to_wilson():
    correct = np.r_[np.ones(9_950, bool), np.zeros(50, bool)]
    low, high = helpers.test_sampling_interval(correct)
    w_low, w_high = helpers.wilson_interval(9_950, 10_000)
    assert low < 0.995 < high
    assert abs(low - w_low) < 5e-4 and abs(high - w_high) < 5e-4
    assert helpers.test_sampling_interval(np.ones(100, bool)) == (1.0, 1.0)


def test_test_sampling_interval_averages_seeds_per_image():
    rng = np.random.default_rng(1)
    one = rng.random(5_000) < 0.9
    # two identical seeds are one run; a second seed that errs elsewhere narrows nothing away
    assert helpers.test_sampling_interval(np.vstack([one, one])) == \
        helpers.test_sampling_interval(one)
    other = rng.random(5_000) < 0.9
    low, high = helpers.test_sampling_interval(np.vstack([one, other]))
    assert low < (one.mean() + other.mean()) / 2 < high
    assert high - low < np.subtract(*helpers.test_sampling_interval(one)[::-1])


def test_welch_p_matches_the_hand_worked_statistic():
    from scipy import stats

    a, b = [0.991, 0.992, 0.990, 0.993, 0.991], [0.994, 0.996, 0.995]
    va, vb = np.var(a, ddof=1) / 5, np.var(b, ddof=1) / 3
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 2)
    assert helpers.welch_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)


def test_holm_hand_worked():
    adjusted = helpers.holm([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> max(0.04, 0.06)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(helpers.holm([0.5, 0.9]), [1.0, 1.0])


def test_prediction_interval_against_hand_worked_values():
    # runs 1, 2, 3: mean 2, s 1, n 3; t(0.975, 2) = 4.302653; half width 4.302653 * sqrt(4/3)
    low, high = helpers.prediction_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - 4.968275, 2 + 4.968275), abs=1e-5)
    assert helpers.prediction_p([1.0, 2.0, 3.0], 2 + 4.968275) == pytest.approx(0.05, abs=1e-6)
    assert helpers.prediction_p([1.0, 2.0, 3.0], 2.0) == 1.0
    assert helpers.prediction_p([0.5, 0.5], 0.5) == 1.0
    assert helpers.prediction_p([0.5, 0.5], 0.6) == 0
    with pytest.raises(ValueError, match="at least two runs"):
        helpers.prediction_interval([1.0])


def test_reproduction_test_combines_the_two_metrics_by_bonferroni():
    acc, loss = [0.90, 0.91, 0.92, 0.93], [0.30, 0.29, 0.28, 0.27]
    inside = helpers.reproduction_test(acc, loss, 0.915, 0.285)
    assert inside["reproduced"] and inside["p"] == pytest.approx(
        min(1, 2 * min(inside["p_accuracy"], inside["p_loss"])))
    (a_low, a_high), (_, l_high) = inside["accuracy_interval"], inside["loss_interval"]
    assert (a_low, a_high) == pytest.approx(helpers.prediction_interval(acc, 0.975))
    # exactly at the per-metric 97.5 % edge: p_accuracy = 0.025, combined p = 0.05
    edge = helpers.reproduction_test(acc, loss, a_high, 0.285)
    assert edge["p"] == pytest.approx(0.05, abs=1e-9)
    assert not helpers.reproduction_test(acc, loss, 0.915, l_high + 0.01)["reproduced"]


@pytest.mark.parametrize("n", [5, 10, 20])
@pytest.mark.parametrize("correlation", [0.0, -0.9])
def test_a_new_run_of_the_same_program_passes_about_95_percent_of_the_time(n, correlation):
    """Calibration by simulation: runs drawn from one normal program (accuracy and loss with the
    given correlation); the next run must pass with probability 95 % (independent metrics) up to
    97.5 % (metrics that move together), unlike the old min-max-like rule."""
    rate = helpers.simulated_pass_rate(n, correlation, seed=n)
    old_rate = helpers.simulated_pass_rate(n, correlation, rule="central", seed=n)
    assert 0.94 <= rate <= 0.985, rate
    assert old_rate < rate - 0.1  # the central-95 %-of-seeds rule under-covers
    with pytest.raises(ValueError, match="rule"):
        helpers.simulated_pass_rate(n, rule="min-max", sims=1)


def test_held_out_pass_rate_counts_every_leave_one_out_trial():
    rng = np.random.default_rng(0)
    groups = [(rng.normal(0.9, 0.01, 8), rng.normal(0.3, 0.02, 8)) for _ in range(50)]
    passes, trials = helpers.held_out_pass_rate(groups + [([0.9, 0.91], [0.3, 0.31])])
    assert trials == 400  # the group of 2 is skipped: one run left cannot be predicted
    assert 0.9 <= passes / trials <= 1.0
    old_passes, old_trials = helpers.held_out_pass_rate(groups, rule="central")
    assert old_trials == 400 and old_passes < passes


def test_the_convergence_test_reads_the_paired_interval_against_the_margin():
    short = [0.990, 0.991, 0.992, 0.990]
    flat = helpers.converged(short, [0.9902, 0.9909, 0.9921, 0.9901], margin=0.001)
    assert flat["verdict"] == "converged" and flat["difference"] == pytest.approx(0.000075)
    rising = helpers.converged(short, [0.993, 0.994, 0.995, 0.993], margin=0.001)
    assert rising["verdict"] == "still improving" and rising["low"] > 0
    noisy = helpers.converged(short, [0.985, 0.996, 0.990, 0.994], margin=0.001)
    assert noisy["verdict"] == "undecided"
    with pytest.raises(ValueError, match=">= 3 seeds"):
        helpers.converged([0.9, 0.9], [0.9, 0.9], margin=0.001)


def test_minimum_detectable_effect_against_the_normal_approximation_and_simulation():
    from scipy import stats

    # large n: the t test's MDE tends to (z_0.975 + z_0.8) sd / sqrt(n)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert helpers.minimum_detectable_effect(1.0, 2000) == pytest.approx(z / np.sqrt(2000), 1e-3)
    assert helpers.minimum_detectable_effect(1.0, 2000, paired=False) == pytest.approx(
        z * np.sqrt(2 / 2000), 1e-3)
    # small n: the stated power, checked by simulation (paired t test, 3 seeds)
    mde = helpers.minimum_detectable_effect(0.1, 3)
    rng = np.random.default_rng(0)
    hits = np.mean([stats.ttest_1samp(rng.normal(mde, 0.1, 3), 0).pvalue < 0.05
                    for _ in range(4000)])
    assert hits == pytest.approx(0.8, abs=0.03)


def test_minimum_detectable_effect_with_two_pairs():
    # one degree of freedom, where scipy's noncentral t gives NaN for the wrong tail: still the
    # stated power, by simulation (a smoke profile's two seeds)
    from scipy import stats

    mde = helpers.minimum_detectable_effect(1.0, 2)
    assert np.isfinite(mde) and mde > helpers.minimum_detectable_effect(1.0, 3)
    rng = np.random.default_rng(1)
    hits = np.mean([stats.ttest_1samp(rng.normal(mde, 1.0, 2), 0).pvalue < 0.05
                    for _ in range(4000)])
    assert hits == pytest.approx(0.8, abs=0.03)


def test_paired_bootstrap_difference_over_test_images():
    rng = np.random.default_rng(0)
    a = rng.random(10_000) < 0.99
    b = a.copy()
    b[np.flatnonzero(~a)[:20]] = True  # b fixes 20 of a's errors
    out = helpers.paired_bootstrap_diff(a, b)
    assert out["difference"] == pytest.approx(0.002) and out["low"] > 0 and out["p"] < 0.01
    same = helpers.paired_bootstrap_diff(a, a)
    assert same["difference"] == 0 and same["p"] == 1.0


def test_calibration_scores_and_temperature_scaling():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (20_000, 10))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (truth.cumsum(1) > rng.random((20_000, 1))).argmax(1)  # labels drawn from softmax(logits)
    exp = np.exp(logits * 3)  # overconfident: logits three times too large
    proba = exp / exp.sum(1, keepdims=True)
    scores = helpers.calibration_scores(proba, y, resamples=200)
    assert scores["ece_low"] <= scores["ece"] <= scores["ece_high"]
    assert scores["brier"] > 0 and scores["nll"] > 0
    t = helpers.fit_temperature(proba, y)
    assert t == pytest.approx(3.0, rel=0.1)  # undoes the factor of three
    fixed = helpers.scale_temperature(proba, t)
    assert helpers.calibration_scores(fixed, y, resamples=50)["ece"] < scores["ece"] / 3
    assert np.allclose(fixed.sum(1), 1)


def test_fisher_power_is_exact_and_the_detectable_difference_is_its_inverse():
    rng = np.random.default_rng(0)
    a, b = rng.binomial(20, 0.1, 3000), rng.binomial(20, 0.6, 3000)
    simulated = np.mean([helpers.fisher_exact(x, 20, y, 20) <= 0.05
                         for x, y in zip(a, b, strict=True)])
    assert helpers.fisher_power(0.1, 0.6, 20, 20) == pytest.approx(simulated, abs=0.03)
    assert helpers.fisher_power(0.3, 0.3, 20, 20) <= 0.05  # the test is conservative
    d = helpers.fisher_detectable(0.0, 20, 20)
    assert helpers.fisher_power(0.0, d, 20, 20) >= 0.8 > helpers.fisher_power(0.0, d - 0.01, 20, 20)
    assert d == helpers.fisher_detectable(1.0, 20, 20)  # the floors mirror each other
    assert helpers.fisher_detectable(0.5, 20, 20) > d  # hardest in the middle


def test_the_detectable_effect_of_a_reported_interval_is_that_of_its_runs():
    rng = np.random.default_rng(3)
    diffs = rng.normal(0.001, 0.002, 3)
    low, high = helpers.paired_ci(np.zeros(3), diffs)[1:]
    assert helpers.detectable_from_interval(low, high, 3) == pytest.approx(
        helpers.minimum_detectable_effect(np.std(diffs, ddof=1), 3))
    a, b = rng.normal(0, 0.002, 5), rng.normal(0, 0.002, 5)
    sd = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    from scipy import stats

    half = stats.t.ppf(0.975, 8) * sd * np.sqrt(2 / 5)
    assert helpers.detectable_from_interval(-half, half, 5, paired=False) == pytest.approx(
        helpers.minimum_detectable_effect(sd, 5, paired=False))


def test_no_detectable_effect_without_a_spread():
    assert math.isnan(helpers.minimum_detectable_effect(0.01, 1))
    assert math.isnan(helpers.minimum_detectable_effect(float("nan"), 5, paired=False))
