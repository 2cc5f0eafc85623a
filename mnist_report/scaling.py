"""Batch-size scaling analyses of a learning-rate sweep (chapter 03): when a run has diverged,
which learning rates to add until every optimum is bracketed, the best learning rate per batch
size and its two regimes, steps to a validation target, and the fit of
steps = S_min (1 + B_crit / B) (McCandlish et al. 2018).

Each works on runs' records (training.TrainResult curves and snapshots) or on tidy tables, so the
chapter states what it computes and this module how.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

EXPLODED = 1.5  # a training loss above 1.5 times its initial value marks a diverged run


def diverged(run, steps: int, initial_loss: float, exploded: float = EXPLODED) -> bool:
    """Has a step-budget run diverged by `steps`? A non-finite loss, a training loss (in its
    `curve`) that rose past `exploded` times `initial_loss`, or a validation loss at the
    snapshot `steps` worse than `initial_loss` (the untrained network's validation loss). A run
    that is merely not trained yet has a validation loss below its initial one."""
    if run.diverged_at is not None and run.diverged_at <= steps:
        return True
    peak = max((p["train_loss"] for p in run.curve if p["step"] <= steps), default=0.0)
    val = run.snapshots[steps]["val_loss"]
    return bool(not np.isfinite(val) or peak > exploded * initial_loss or val > initial_loss)


def next_learning_rates(score: Mapping[float, float], bad: Iterable[float]) -> list[float]:
    """The learning rates to add to a grid until its best value is bracketed: `score` maps each
    rate tried to its mean validation accuracy, `bad` holds the rates at which a seed diverged.
    Beside the best rate: one grid step (x4) beyond an edge that holds it, or the geometric
    midpoint towards a neighbour that diverged (when more than 1.5x away). Three significant
    digits."""
    lrs, bad = sorted(score), set(bad)
    i = int(np.argmax([score[lr] for lr in lrs]))
    new = []
    for j in (i - 1, i + 1):
        if j < 0 or j >= len(lrs):
            new.append(lrs[i] * (4.0 if j > i else 0.25))
        elif lrs[j] in bad and max(lrs[i], lrs[j]) / min(lrs[i], lrs[j]) > 1.5:
            new.append(np.sqrt(lrs[i] * lrs[j]))
    return [float(f"{lr:.3g}") for lr in new]


def optimum(part) -> dict[str, Any]:
    """The best learning rate in a table of runs (`learning_rate`, `val_accuracy`, `diverged`;
    one batch size and budget): the rate with the best mean validation accuracy, its neighbours
    in the grid, and whether it is bracketed (both neighbours exist and neither diverged)."""
    curve = part.groupby("learning_rate")["val_accuracy"].mean()
    bad = part.groupby("learning_rate")["diverged"].any()
    i = int(np.argmax(curve.to_numpy()))
    lrs = curve.index.to_numpy()
    return {"best_lr": lrs[i], "low": lrs[max(i - 1, 0)], "high": lrs[min(i + 1, len(lrs) - 1)],
            "bracketed": bool(0 < i < len(lrs) - 1 and not bad.iloc[i - 1]
                              and not bad.iloc[i + 1])}


def two_regimes(batch_sizes: Sequence[float], best_lr: Sequence[float]) -> dict[str, float]:
    """A broken line through log2(best learning rate) against log2(batch size): two least-squares
    lines sharing the break point, the break chosen to minimise the squared error among those
    leaving at least three points on the left and two on the right. The slopes (1: the linear
    scaling rule; 0.5: the square-root rule; 0: a constant rate) with standard errors, and the
    batch size at the break; NaN when there are too few batch sizes."""
    from scipy import stats

    x, y = np.log2(np.asarray(batch_sizes, float)), np.log2(np.asarray(best_lr, float))
    fits = []
    for k in range(3, len(x) - 2):  # break after the k-th batch size (shared point)
        left, right = stats.linregress(x[:k], y[:k]), stats.linregress(x[k - 1:], y[k - 1:])
        sse = (np.sum((y[:k] - left.intercept - left.slope * x[:k]) ** 2)
               + np.sum((y[k - 1:] - right.intercept - right.slope * x[k - 1:]) ** 2))
        fits.append((sse, k, left, right))
    if not fits:
        return {"break": np.nan, "small": np.nan, "large": np.nan}
    _, k, left, right = min(fits, key=lambda f: f[0])
    return {"break": int(2 ** x[k - 1]), "small": left.slope, "small_stderr": left.stderr,
            "large": right.slope, "large_stderr": right.stderr}


def steps_to(curve: Sequence[Mapping[str, float]], target: float, key: str = "step") -> float:
    """When a run's validation accuracy first reaches `target`: its `key` ("step" or "seconds")
    at the first crossing, interpolated in log(step) between the recorded points of its `curve`;
    the first point's value when it starts above; NaN when it never gets there."""
    steps = np.array([p["step"] for p in curve], dtype=float)
    acc = np.array([p["val_accuracy"] for p in curve])
    values = np.array([p[key] for p in curve], dtype=float)
    hit = np.flatnonzero(acc >= target)
    if not len(hit):
        return np.nan
    i = hit[0]
    if i == 0:
        return values[0]
    frac = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
    log_step = np.log(steps[i - 1]) + frac * (np.log(steps[i]) - np.log(steps[i - 1]))
    return float(np.interp(np.exp(log_step), steps[i - 1:i + 1], values[i - 1:i + 1]))


def steps_model(batch, s_min: float, b_crit: float):
    """Steps to a target at batch size B: S_min (1 + B_crit / B). Perfect scaling (steps ∝ 1/B)
    well below B_crit, saturation at S_min well above it."""
    return s_min * (1 + b_crit / np.asarray(batch, float))


def fit_steps_model(batch_sizes: Sequence[float], steps: Sequence[float]
                    ) -> tuple[float, float]:
    """(S_min, B_crit) fitted to measured steps in log space (positive parameters); NaN for
    fewer than three batch sizes."""
    from scipy import optimize

    batch_sizes, steps = np.asarray(batch_sizes, float), np.asarray(steps, float)
    if len(batch_sizes) < 3:
        return np.nan, np.nan
    (s_min, b_crit), _ = optimize.curve_fit(
        lambda b, s, c: np.log(steps_model(b, s, c)), batch_sizes, np.log(steps),
        p0=(steps.min(), 256), bounds=(0, np.inf))
    return float(s_min), float(b_crit)


def seconds_per_epoch(run, n_train: int, batch_size: int) -> float:
    """A step-budget run's training seconds per epoch of `n_train` images, from the first and
    last points of its curve; NaN for a diverged run or a curve of one step."""
    first, last = run.curve[0], run.curve[-1]
    if run.diverged_at is not None or last["step"] == first["step"]:
        return np.nan
    return ((last["seconds"] - first["seconds"]) / (last["step"] - first["step"])
            * n_train / batch_size)
