"""Statistics: intervals over seeds and over test images, paired tests, calibration."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval (mean, low, high); NaN bounds for one value."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return mean, mean - half, mean + half


def seed_summary(runs, by: str | Sequence[str] = "model", metric: str = "test_accuracy",
                 confidence: float = 0.95):
    """One row per group of a runs table (as `run_row` builds it): the number of seeds, the mean
    of `metric` with its Student-t interval over seeds, and the means of the validation accuracy,
    test loss and training time. Groups keep their order of first appearance."""
    import pandas as pd

    rows = []
    for key, group in runs.groupby(by, sort=False):
        mean, low, high = mean_ci(group[metric], confidence)
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip([by] if isinstance(by, str) else by, keys, strict=True)),
                     "seeds": len(group), metric: mean, f"{metric}_ci_low": low,
                     f"{metric}_ci_high": high, "val_accuracy": group["val_accuracy"].mean(),
                     "test_loss": group["test_loss"].mean(), "n_params": group["n_params"].iloc[0],
                     "train_seconds": group["train_seconds"].mean()})
    return pd.DataFrame(rows).set_index(by)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion, e.g. an accuracy on 10,000 test images."""
    from scipy import stats

    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for a proportion, e.g. the share of seeds that collapse."""
    from scipy import stats

    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="exact")
    return float(ci.low), float(ci.high)


def fisher_exact(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
    """Two-sided p-value of Fisher's exact test that two proportions are equal."""
    from scipy import stats

    table = [[successes_a, n_a - successes_a], [successes_b, n_b - successes_b]]
    return float(stats.fisher_exact(table).pvalue)


def fisher_power(p_a: float, p_b: float, n_a: int, n_b: int, alpha: float = 0.05) -> float:
    """The probability that Fisher's exact test rejects equal proportions at level `alpha` when
    the true shares are p_a and p_b with n_a and n_b trials: exact, summed over every outcome."""
    from scipy import stats

    weight = np.outer(stats.binom.pmf(np.arange(n_a + 1), n_a, p_a),
                      stats.binom.pmf(np.arange(n_b + 1), n_b, p_b))
    return float(weight[_fisher_rejects(n_a, n_b, alpha)].sum())


@functools.lru_cache(maxsize=16)
def _fisher_rejects(n_a: int, n_b: int, alpha: float) -> np.ndarray:
    """Which outcomes (a successes of n_a, b of n_b) Fisher's exact test rejects at `alpha`."""
    return np.array([[fisher_exact(a, n_a, b, n_b) <= alpha for b in range(n_b + 1)]
                     for a in range(n_a + 1)])


def fisher_detectable(p_base: float, n_a: int, n_b: int, alpha: float = 0.05,
                      power: float = 0.8, step: float = 0.01) -> float:
    """The smallest difference from a base share that Fisher's exact test detects with
    probability `power` (n_a trials at `p_base`, n_b at the other share), searched on a grid of
    `step` in both directions; the smaller of the two. NaN when no share within [0, 1] is
    detectable."""
    found = []
    for sign in (1, -1):
        for d in np.arange(step, 1 + step / 2, step):
            other = p_base + sign * d
            if not 0 <= other <= 1:
                break
            if fisher_power(p_base, other, n_a, n_b, alpha) >= power:
                found.append(float(d))
                break
    return min(found) if found else float("nan")


def central_range(values: Iterable[float], coverage: float = 0.95) -> tuple[float, float]:
    """The central `coverage` of a seed distribution: its empirical (1 - coverage) / 2 and
    (1 + coverage) / 2 quantiles (linear interpolation; with 10 seeds close to min and max)."""
    x = np.asarray(list(values), dtype=float)
    low, high = np.quantile(x, [(1 - coverage) / 2, (1 + coverage) / 2])
    return float(low), float(high)


def reproduces(accuracies: Iterable[float], losses: Iterable[float], accuracy: float,
               loss: float, coverage: float = 0.95) -> bool:
    """The report's rule: a configuration reproduces a reported (accuracy, loss) when both lie
    inside the central `coverage` of the configuration's seed distribution."""
    (a_low, a_high), (l_low, l_high) = central_range(accuracies, coverage), central_range(
        losses, coverage)
    return bool(a_low <= accuracy <= a_high and l_low <= loss <= l_high)


def prediction_interval(values: Iterable[float], confidence: float = 0.95
                        ) -> tuple[float, float]:
    """(low, high) holding one *new* run of the same program with probability `confidence`, for
    normally distributed runs: mean +- t_{(1+confidence)/2, n-1} s sqrt(1 + 1/n), wider than a
    confidence interval for the mean by the new run's own spread. Needs two runs or more."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        raise ValueError("a prediction interval needs at least two runs")
    half = stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) * np.sqrt(1 + 1 / len(x))
    return float(x.mean() - half), float(x.mean() + half)


def prediction_p(values: Iterable[float], value: float) -> float:
    """Two-sided p-value of `value` as one new run of the program whose runs gave `values`:
    2 P(T_{n-1} > |value - mean| / (s sqrt(1 + 1/n))). 1 when it equals the mean; 0 when the
    runs have no spread and it differs from them."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if len(x) < 2:
        raise ValueError("a prediction p-value needs at least two runs")
    scale = x.std(ddof=1) * np.sqrt(1 + 1 / len(x))
    if scale == 0:
        return 1.0 if value == x.mean() else 0.0
    return float(2 * stats.t.sf(abs(value - x.mean()) / scale, len(x) - 1))


def reproduction_test(accuracies: Iterable[float], losses: Iterable[float], accuracy: float,
                      loss: float, confidence: float = 0.95) -> dict[str, Any]:
    """Is a reported (accuracy, loss) consistent with one new run of the program whose seeds
    gave `accuracies` and `losses`? Per metric a prediction p-value (`prediction_p`); the two are
    combined by Bonferroni, p = min(1, 2 min(p_accuracy, p_loss)), and the pair is reproduced when
    p >= 1 - confidence: both numbers inside their prediction intervals at 1 - (1 - confidence)/2.
    A new run of the same program passes with probability >= `confidence` (about 95 % when the
    metrics are independent, up to 97.5 % when they move together); tests/test_stats.py checks
    it by simulation."""
    accuracies, losses = list(accuracies), list(losses)
    per_metric = 1 - (1 - confidence) / 2
    p_acc, p_loss = prediction_p(accuracies, accuracy), prediction_p(losses, loss)
    p = min(1.0, 2 * min(p_acc, p_loss))
    return {"reproduced": bool(p >= 1 - confidence), "p": p, "p_accuracy": p_acc,
            "p_loss": p_loss, "accuracy_interval": prediction_interval(accuracies, per_metric),
            "loss_interval": prediction_interval(losses, per_metric), "runs": len(accuracies)}


def consistency_row(accuracies: Iterable[float], losses: Iterable[float], accuracy: float,
                    loss: float, confidence: float = 0.95) -> dict[str, Any] | None:
    """reproduction_test as one table row: the runs, their mean accuracy and loss, the two
    prediction intervals (`accuracy_low` .. `loss_high`), the p-value and whether the recorded
    pair is consistent; None for fewer than two runs, which predict nothing about the next."""
    accuracies, losses = np.asarray(list(accuracies), float), np.asarray(list(losses), float)
    if len(accuracies) < 2:
        return None
    test = reproduction_test(accuracies, losses, accuracy, loss, confidence)
    (a_low, a_high), (l_low, l_high) = test["accuracy_interval"], test["loss_interval"]
    return {"runs": test["runs"], "mean_accuracy": float(accuracies.mean()),
            "mean_loss": float(losses.mean()), "accuracy_low": a_low, "accuracy_high": a_high,
            "loss_low": l_low, "loss_high": l_high, "p": test["p"],
            "consistent": test["reproduced"]}


RULES = ("prediction", "central")  # the calibrated rule; the old central-95 %-of-seeds rule


def _passes(rule: str, accuracies, losses, accuracy: float, loss: float,
            confidence: float) -> bool:
    if rule == "prediction":
        return reproduction_test(accuracies, losses, accuracy, loss, confidence)["reproduced"]
    if rule == "central":
        return reproduces(accuracies, losses, accuracy, loss, confidence)
    raise ValueError(f"rule must be one of {RULES}, not {rule!r}")


def held_out_pass_rate(groups: Iterable[tuple[Sequence[float], Sequence[float]]],
                       confidence: float = 0.95, rule: str = "prediction") -> tuple[int, int]:
    """How often a held-out run passes the `rule` ("prediction": `reproduction_test`; "central":
    the old `reproduces`) against the other runs of its own program (leave one out, every run of
    every group of >= 3 runs): (passes, trials). The calibration check on real runs: about
    `confidence` of them should pass."""
    passes = trials = 0
    for accuracies, losses in groups:
        acc, loss = np.asarray(accuracies, float), np.asarray(losses, float)
        if len(acc) < 3:
            continue
        for i in range(len(acc)):
            rest = np.arange(len(acc)) != i
            passes += _passes(rule, acc[rest], loss[rest], acc[i], loss[i], confidence)
            trials += 1
    return passes, trials


def simulated_pass_rate(n: int, correlation: float = 0.0, rule: str = "prediction",
                        sims: int = 4000, confidence: float = 0.95, seed: int = 0) -> float:
    """Calibration by simulation: the share of new runs of one normal program (accuracy and loss
    with the given correlation) that pass the `rule` against `n` earlier runs."""
    rng = np.random.default_rng(seed)
    cov = np.multiply([[1.0, correlation], [correlation, 1.0]], 1e-4)
    passes = 0
    for _ in range(sims):
        draws = rng.multivariate_normal([0.95, 0.2], cov, size=n + 1)
        (acc, loss), (new_acc, new_loss) = draws[:n].T, draws[n]
        passes += _passes(rule, acc, loss, new_acc, new_loss, confidence)
    return passes / sims


def standardised_difference(a, b):
    """(mean(b) - mean(a)) / pooled SD, sqrt((var a + var b) / 2), column by column for
    DataFrames: how far two samples' means are apart in units of their spread (Cohen's d;
    0.2 is conventionally a small effect). Chapter 01 compares test with training images."""
    pooled = np.sqrt((a.var() + b.var()) / 2)
    return (b.mean() - a.mean()) / pooled


def neighbour_overlap(points: np.ndarray, labels: np.ndarray, k: int = 10):
    """How mixed the labels are among each point's k nearest neighbours (in a 2-D map, say):
    (the share of neighbour pairs with different labels, and a Series of the label pairs
    (a, b), a < b, as shares of those mixed pairs, largest first)."""
    import pandas as pd
    from sklearn.neighbors import NearestNeighbors

    _, nearest = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    pairs = np.sort(np.stack([np.repeat(labels, k), labels[nearest[:, 1:]].ravel()]), axis=0)
    mixed = pairs[0] != pairs[1]
    table = pd.Series(map(tuple, pairs[:, mixed].T)).value_counts()
    return float(mixed.mean()), table / mixed.sum()


def distance(accuracy: float, loss: float, target_accuracy: float, target_loss: float) -> float:
    """How far a run's (accuracy, loss) is from a target: sqrt(da^2 + dl^2) with da the accuracy
    difference in percentage points and dl ten times the difference of log losses, so a loss 10 %
    off weighs about as much as one accuracy point."""
    da = 100 * (accuracy - target_accuracy)
    dl = 10 * (np.log(loss) - np.log(target_loss))
    return float(np.hypot(da, dl))


def diff_ci(a: Iterable[float], b: Iterable[float], confidence: float = 0.95
            ) -> tuple[float, float, float]:
    """Difference of two means over independent seeds, mean(a) - mean(b), with Welch's
    t interval (unequal variances): (difference, low, high)."""
    from scipy import stats

    x, y = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
    return float(x.mean() - y.mean()), float(ci.low), float(ci.high)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float]:
    """Exact McNemar test on paired per-image correctness of two classifiers."""
    from scipy import stats

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": float(p)}


def calibration(proba: np.ndarray, y_true: np.ndarray, bins: int = 15):
    """Reliability of the top-class confidence: (table, ECE). The table has one row per
    equal-width confidence bin that holds predictions (its `confidence` and `accuracy` means and
    `count`); the expected calibration error is the count-weighted mean |accuracy - confidence|
    (Guo et al., 2017, with 15 bins)."""
    import pandas as pd

    proba = np.asarray(proba)
    confidence, correct = proba.max(1), proba.argmax(1) == np.asarray(y_true)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    table = (pd.DataFrame({"bin": which, "confidence": confidence, "accuracy": correct})
             .groupby("bin").agg(confidence=("confidence", "mean"), accuracy=("accuracy", "mean"),
                                 count=("accuracy", "size")))
    ece = float((table["count"] * (table.accuracy - table.confidence).abs()).sum() / len(proba))
    return table, ece


def pareto_front(cost: Sequence[float], error: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points no other point beats: none has a cost and an error both at
    least as low, with one of them strictly lower."""
    cost, error = np.asarray(cost, float), np.asarray(error, float)
    beaten = ((cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
              & ((cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])))
    return ~beaten.any(axis=1)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes (always n_classes x n_classes)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def most_confused(y_true: np.ndarray, y_pred: np.ndarray, k: int = 5):
    """The k most frequent (true, predicted) error pairs as a DataFrame, with each pair's share
    of all errors and the count of the reverse confusion."""
    import pandas as pd

    cm = confusion_matrix(y_true, y_pred)
    errors = cm.sum() - np.trace(cm)
    rows = [{"true": t, "predicted": p, "count": int(cm[t, p]), "reverse": int(cm[p, t]),
             "share_of_errors": cm[t, p] / errors if errors else 0.0}
            for t in range(10) for p in range(10) if t != p]
    return (pd.DataFrame(rows).sort_values(["count", "true"], ascending=[False, True])
            .head(k).reset_index(drop=True))


MINUS = "\u2212"  # a true minus sign for signed numbers in prose and tables ("−0.21")


def signed(value: float, digits: int = 2) -> str:
    """A signed number with a true minus sign: 0.6 -> "+0.60", -0.21 -> "−0.21"; a value that
    rounds to zero prints "+0.00", whatever its sign."""
    if round(value, digits) == 0:
        value = 0.0
    return f"{value:+.{digits}f}".replace("-", MINUS)


def signed_pct(p: float, digits: int = 2) -> str:
    """A signed difference of proportions in percent: 0.0123 -> "+1.23 %", "−0.40 %"."""
    return f"{signed(100 * p, digits)} %"


def fmt_pct(p: float, digits: int = 2) -> str:
    """0.9871 -> '98.71 %'."""
    return f"{100 * p:.{digits}f} %"


def interval_text(low: float, high: float, pct: bool = True) -> str:
    """An interval as the report's tables print it: "99.49–99.60 %" for proportions, or
    "0.0245–0.0272" (`pct=False`)."""
    return f"{100 * low:.2f}–{100 * high:.2f} %" if pct else f"{low:.4f}–{high:.4f}"


def test_sampling_interval(correct: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                           seed: int = 0) -> tuple[float, float]:
    """How much a model's test accuracy would move on another test set of the same size: a
    percentile bootstrap over test images (the same images for every seed) of the accuracy
    averaged over seeds. `correct` is per-image correctness, one row per seed (or one vector for
    a single run). It ignores seed variance, which `mean_ci` over seeds measures."""
    from scipy import stats

    per_image = np.atleast_2d(np.asarray(correct, dtype=float)).mean(axis=0)
    if per_image.min() == per_image.max():  # every resample gives the same accuracy
        return float(per_image[0]), float(per_image[0])
    ci = stats.bootstrap((per_image,), np.mean, confidence_level=confidence,
                         n_resamples=resamples, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    return float(ci.low), float(ci.high)


def welch_p(a: Iterable[float], b: Iterable[float]) -> float:
    """Two-sided p-value of Welch's t test that two models' mean accuracies over their seeds are
    equal (independent seeds, unequal variances): significance across seeds, not test images."""
    from scipy import stats

    return float(stats.ttest_ind(np.asarray(list(a), float), np.asarray(list(b), float),
                                 equal_var=False).pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (family-wise error rate): the i-th
    smallest is multiplied by (m - i), running maxima keep the order, capped at 1."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    scaled = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(p)
    out[order] = scaled
    return out


# ------------------------------------------------------------------------------------------------
# Convergence, power, paired comparisons over test images, calibration (issue 28)
# ------------------------------------------------------------------------------------------------


def paired_ci(a: Iterable[float], b: Iterable[float], confidence: float = 0.95
              ) -> tuple[float, float, float]:
    """Mean of the paired differences b - a (the same seeds, or images, in both) with its
    Student-t interval: (difference, low, high)."""
    d = np.asarray(list(b), dtype=float) - np.asarray(list(a), dtype=float)
    return mean_ci(d, confidence)


def converged(short: Iterable[float], doubled: Iterable[float], margin: float,
              confidence: float = 0.95) -> dict[str, Any]:
    """The report's convergence test: a setting is converged when doubling its budget changes
    mean validation accuracy by less than `margin`, shown by the paired interval (the same seeds
    at both budgets, >= 3 of them) lying inside +-margin. Returns the difference (doubled -
    short), its interval and the verdict: "converged" (inside +-margin), "still improving" (the
    interval lies wholly above 0 and reaches past the margin), or "undecided" (neither: more
    seeds are needed)."""
    short, doubled = list(short), list(doubled)
    if len(short) != len(doubled) or len(short) < 3:
        raise ValueError("the convergence test pairs >= 3 seeds run at both budgets")
    diff, low, high = paired_ci(short, doubled, confidence)
    if -margin < low and high < margin:
        verdict = "converged"
    elif low > 0:
        verdict = "still improving"
    else:
        verdict = "undecided"
    return {"difference": diff, "low": low, "high": high, "margin": margin, "verdict": verdict,
            "seeds": len(short)}


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8,
                              paired: bool = True) -> float:
    """The smallest true difference a two-sided t test detects with probability `power` at level
    `alpha`: paired (sd of the differences, n pairs), or two independent groups of n each with
    a common sd. Exact, from the noncentral t distribution. NaN where no test is possible (one
    run, or a spread that is not finite)."""
    from scipy import optimize, stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    df = n - 1 if paired else 2 * n - 2
    scale = sd / np.sqrt(n) if paired else sd * np.sqrt(2 / n)
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(nc: float) -> float:  # nc: the effect in units of its standard error
        wrong_side = stats.nct.cdf(-critical, df, nc)  # rejecting in the wrong tail: for nc > 0
        if not np.isfinite(wrong_side):  # ~0, and scipy returns NaN there at few degrees of
            wrong_side = 0.0  # freedom (nct.cdf(-12.7, 1, 7.6)); the upper tail stays exact
        return stats.nct.sf(critical, df, nc) + wrong_side - power

    upper = 1.0
    while shortfall(upper) < 0:  # the smallest bracket: scipy's nct fails far in the tail
        upper *= 1.5
    return float(optimize.brentq(shortfall, 0.0, upper) * scale)


def detectable_from_interval(low: float, high: float, n: int, confidence: float = 0.95,
                             paired: bool = True, power: float = 0.8) -> float:
    """minimum_detectable_effect for a t-interval already reported as (low, high) over n seeds
    (paired: n pairs; else two groups of n): the standard deviation is recovered from the
    interval's half-width, half = t * sd / sqrt(n) (paired) or t * sd * sqrt(2 / n) (two groups
    with a pooled sd and 2n - 2 degrees of freedom; a Welch interval, with fewer, would overstate
    the sd a little)."""
    from scipy import stats

    df = n - 1 if paired else 2 * n - 2
    half = (high - low) / 2
    sd = half / stats.t.ppf((1 + confidence) / 2, df) / (1 / np.sqrt(n) if paired
                                                         else np.sqrt(2 / n))
    return minimum_detectable_effect(sd, n, alpha=1 - confidence, power=power, paired=paired)


def paired_bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray,
                          confidence: float = 0.95, resamples: int = 5000,
                          seed: int = 0) -> dict[str, float]:
    """Accuracy of b minus accuracy of a on the same test images, with a percentile bootstrap
    interval over images (both resampled together) and a two-sided bootstrap p-value (twice the
    smaller share of resampled differences on either side of 0). For an ensemble against its
    mean member, pass the member's mean per-image correctness as `correct_a`."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    d = b - a
    rng = np.random.default_rng(seed)
    draws = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(resamples)])
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    p = min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean()))
    return {"difference": float(d.mean()), "low": float(low), "high": float(high), "p": float(p)}


def calibration_scores(proba: np.ndarray, y_true: np.ndarray, bins: int = 15,
                       confidence: float = 0.95, resamples: int = 1000, seed: int = 0
                       ) -> dict[str, float]:
    """ECE (with a bootstrap interval over test images; none, NaN, with resamples=0), negative
    log-likelihood and Brier score of predicted class probabilities."""
    proba, y = np.asarray(proba, float), np.asarray(y_true)
    rng = np.random.default_rng(seed)
    eces = []
    for _ in range(resamples):
        pick = rng.integers(0, len(y), len(y))
        eces.append(calibration(proba[pick], y[pick], bins)[1])
    low, high = (np.quantile(eces, [(1 - confidence) / 2, (1 + confidence) / 2]) if eces
                 else (np.nan, np.nan))
    truth = np.eye(proba.shape[1])[y]
    return {"ece": calibration(proba, y, bins)[1], "ece_low": float(low),
            "ece_high": float(high),
            "nll": float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)))),
            "brier": float(np.mean(np.sum((proba - truth) ** 2, axis=1)))}


def fit_temperature(proba: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T that minimises the negative log-likelihood of softmax(log p / T) on
    (validation) images: temperature scaling (Guo et al., 2017), fitted without the test set."""
    from scipy import optimize

    logits = np.log(np.clip(np.asarray(proba, float), 1e-12, None))
    y = np.asarray(y_true)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    return float(np.exp(optimize.minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def temperature_calibration(val_proba: np.ndarray, val_labels: np.ndarray,
                            test_proba: np.ndarray, test_labels: np.ndarray) -> dict[str, float]:
    """One run's calibration on the test images before and after temperature scaling, the
    temperature fitted on the validation images only (fit_temperature): the fitted temperature,
    the test error rate, and the overconfidence (mean top-class confidence - accuracy), ECE, NLL
    and Brier score before and after (`_scaled`)."""
    temperature = fit_temperature(val_proba, val_labels)
    y = np.asarray(test_labels)
    out = {"temperature": temperature,
           "error": float(1 - (np.asarray(test_proba).argmax(1) == y).mean())}
    for suffix, proba in (("", np.asarray(test_proba, float)),
                          ("_scaled", scale_temperature(test_proba, temperature))):
        scores = calibration_scores(proba, y, resamples=0)
        out |= {f"{k}{suffix}": scores[k] for k in ("ece", "nll", "brier")}
        out[f"overconfidence{suffix}"] = float(proba.max(1).mean() - (proba.argmax(1) == y).mean())
    return out


def scale_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities after temperature scaling."""
    z = np.log(np.clip(np.asarray(proba, float), 1e-12, None)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
