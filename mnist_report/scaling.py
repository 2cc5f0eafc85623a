"""Batch-size scaling analyses of a learning-rate sweep (chapter 03): the searches that extend a
learning-rate grid until its optimum is bracketed (tuning at convergence; the fixed-budget sweep),
when a run has diverged, the best learning rate per batch size and its two regimes, steps to a
validation target, and the fit of steps = S_min (1 + B_crit / B) (McCandlish et al. 2018).

The searches take a `train` callable (a list of cells in, their runs out, in order), so the
chapter keeps the choice of network, recipe and entry point (train_many) and this module the
search.

Each works on runs' records (training.TrainResult curves and snapshots) or on tidy tables, so the
chapter states what it computes and this module how.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def grid_around(grid: Sequence[float], guess: float, width: int = 1) -> set[float]:
    """The value of `grid` nearest `guess` on a log scale and up to `width` values each side."""
    i = int(np.argmin([abs(np.log10(v) - np.log10(guess)) for v in grid]))
    return set(grid[max(i - width, 0):i + width + 1])


def best_rate(scores: Mapping[float, float]) -> float:
    """The rate with the best score; among rates tied for it, the smallest."""
    best = max(scores.values())
    return min(lr for lr, score in scores.items() if score == best)


def tune_until_bracketed(train: Callable[[list[tuple]], list],
                         start: Mapping[Any, Iterable[float]], grid: Sequence[float],
                         extend: bool = True, seeds: Sequence[int] | None = None
                         ) -> dict[tuple[Any, float], Any]:
    """Tune a learning rate per key (a batch size) on a fixed grid: train every (key, rate) of
    `start`, then, while a key's best rate on validation sits at an edge of the rates tried, add
    the grid's next value beyond that edge (`extend`). `train` gets the untrained (key, rate)
    pairs, key by key in `start`'s order and rates ascending, and returns their runs in that
    order; with `seeds`, it gets (key, rate, seed) triples, every seed of a pair in turn, and a
    pair's score is the mean validation accuracy of its runs. A rate tied for the best counts as
    the best: the grid is extended past every edge that holds one. Returns {(key, rate): run},
    or {(key, rate): [runs, one per seed]} with `seeds`."""
    grid = list(grid)
    tried = {key: set(rates) for key, rates in start.items()}
    tuning: dict[tuple[Any, float], Any] = {}
    while todo := [(key, lr) for key in tried for lr in sorted(tried[key])
                   if (key, lr) not in tuning]:
        if seeds is None:
            tuning |= dict(zip(todo, train(todo), strict=True))
        else:
            runs = list(train([(key, lr, s) for key, lr in todo for s in seeds]))
            if len(runs) != len(todo) * len(seeds):
                raise ValueError(f"train returned {len(runs)} runs for "
                                 f"{len(todo) * len(seeds)} (rate, seed) pairs")
            tuning |= {pair: runs[i * len(seeds):(i + 1) * len(seeds)]
                       for i, pair in enumerate(todo)}
        for key in tried if extend else ():
            rates = sorted(tried[key])
            val = {lr: tuning_score(tuning[key, lr]) for lr in rates}
            tied = {lr for lr in rates if val[lr] == max(val.values())}
            low, high = grid.index(rates[0]), grid.index(rates[-1])
            if rates[0] in tied and low > 0:
                tried[key].add(grid[low - 1])
            if rates[-1] in tied and high < len(grid) - 1:
                tried[key].add(grid[high + 1])
    return tuning


def tuning_score(runs) -> float:
    """The validation accuracy a tuning cell is judged by: its run's, or the mean of its runs'."""
    if isinstance(runs, Sequence):
        return float(np.mean([r.val_accuracy for r in runs]))
    return runs.val_accuracy


def tuning_table(tuning: Mapping[tuple[Any, float], Any]):
    """One row per (batch size, learning rate) of `tune_until_bracketed`'s result: the mean
    validation accuracy and epochs run over its seeds, and how many seeds."""
    import pandas as pd

    rows = []
    for (bs, lr), runs in tuning.items():
        runs = list(runs) if isinstance(runs, Sequence) else [runs]
        rows.append({"batch_size": bs, "learning_rate": lr, "val_accuracy": tuning_score(runs),
                     "epochs_run": float(np.mean([r.epochs_run for r in runs])),
                     "seeds": len(runs)})
    return pd.DataFrame(rows)


def extend_until_bracketed(train: Callable[[list[float]], dict[float, list]],
                           rates: Iterable[float], factor: float = 3.0,
                           extend: bool = True) -> dict[float, list]:
    """Tune one learning rate on validation: `train(rates)` returns {rate: runs}; while the rate
    with the best mean validation accuracy over its runs is the smallest or the largest tried,
    try the rate `factor` beyond it (one significant digit). Returns {rate: runs}."""
    results = train(sorted(rates))
    while extend:
        val = {lr: np.mean([r.val_accuracy for r in rs]) for lr, rs in results.items()}
        best = max(val, key=val.get)
        if best == min(val):
            results |= train([float(f"{best / factor:.1g}")])
        elif best == max(val):
            results |= train([float(f"{best * factor:.1g}")])
        else:
            break
    return results


def strictly_bracketed(scores: Mapping[float, float], chosen: float) -> bool:
    """Whether the chosen rate has a tried neighbour on each side, both strictly worse."""
    rates = sorted(scores)
    i = rates.index(chosen)
    return bool(0 < i < len(rates) - 1
                and scores[rates[i - 1]] < scores[rates[i]] > scores[rates[i + 1]])


def budget_specs(net, recipe, cells: Iterable[tuple[int, float, int]],
                 budgets: Mapping[str, Callable[[int], int]]) -> list[tuple]:
    """(net, recipe, seed) for each (batch size, learning rate, seed): one run per cell, trained
    for the largest of the `budgets` (each a batch size -> steps function) and snapshotted at
    every budget (Recipe keeps the snapshots sorted)."""
    specs = []
    for bs, lr, seed in cells:
        steps = tuple(budget(bs) for budget in budgets.values())
        specs.append((net, recipe.replace(batch_size=bs, learning_rate=lr, steps=max(steps),
                                          snapshots=steps), seed))
    return specs


def refine_sweep(train: Callable[[list[tuple[int, float, int]]], list],
                 batch_sizes: Sequence[int], learning_rates: Sequence[float],
                 seeds: Sequence[int], budgets: Mapping[str, Callable[[int], int]],
                 initial_loss: Mapping[int, float], rounds: int,
                 exploded: float = EXPLODED) -> dict[tuple[int, float, int], Any]:
    """A learning-rate sweep over batch sizes, refined until every optimum is bracketed: train
    every (batch size, rate, seed) of the grid, then, for up to `rounds` rounds, add the rates
    next_learning_rates asks for at each batch size and budget (scores: mean validation accuracy
    over seeds at the budget's snapshot; bad: a seed diverged by then, with `initial_loss` per
    seed). `train` gets (batch size, rate, seed) triples and returns their runs in order.
    Returns {(batch size, rate, seed): run}."""
    sweep: dict[tuple[int, float, int], Any] = {}

    def run(cells) -> None:
        todo = [(bs, lr, seed) for bs, lr in cells for seed in seeds]
        sweep.update(zip(todo, train(todo), strict=True))

    run(itertools.product(batch_sizes, learning_rates))
    for _ in range(rounds):
        todo = set()
        for bs, budget in itertools.product(batch_sizes, budgets.values()):
            steps, rates = budget(bs), sorted({lr for b, lr, _ in sweep if b == bs})
            score = {lr: np.mean([sweep[bs, lr, s].snapshots[steps]["val_accuracy"]
                                  for s in seeds]) for lr in rates}
            bad = {lr for lr in rates if any(diverged(sweep[bs, lr, s], steps, initial_loss[s],
                                                      exploded) for s in seeds)}
            todo |= {(bs, lr) for lr in next_learning_rates(score, bad)}
        todo -= {(b, lr) for b, lr, _ in sweep}
        if not todo:
            break
        run(sorted(todo))
    return sweep


def budget_table(sweep: Mapping[tuple[int, float, int], Any],
                 budgets: Mapping[str, Callable[[int], int]], n_train: int,
                 initial_loss: Mapping[int, float], exploded: float = EXPLODED):
    """One row per sweep run and budget: its scores at the budget's snapshot, the budget in
    epochs, steps and images, and whether the run had diverged by then."""
    import pandas as pd

    rows = []
    for (bs, lr, seed), r in sweep.items():
        for name, budget in budgets.items():
            steps = budget(bs)
            snap = r.snapshots[steps]
            rows.append({"budget": name, "batch_size": bs, "learning_rate": lr, "seed": seed,
                         "epochs": steps * bs / n_train, "steps": steps, "images": steps * bs,
                         **{k: snap[k] for k in ("train_accuracy", "val_accuracy",
                                                 "test_accuracy", "train_loss", "val_loss",
                                                 "test_loss")},
                         "seconds": snap["seconds"],
                         "diverged": diverged(r, steps, initial_loss[seed], exploded)})
    return pd.DataFrame(rows)


def initial_loss(net, x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """The loss on (x, y) of the untrained network as the run with this seed starts (the seed
    set as training sets it)."""
    from .config import set_seed

    set_seed(seed)
    model = net.make()
    model.compile(loss="sparse_categorical_crossentropy")
    return float(model.evaluate(x, y, batch_size=len(y), verbose=0))


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
    in the grid, and whether it is bracketed (both neighbours exist and neither diverged; they
    score no better than it, and may tie)."""
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


# ------------------------------------------------------------------------------------------------
# Tables of chapter 03's results: at convergence, per budget, the learning-rate rule, to target
# ------------------------------------------------------------------------------------------------


def _mean_ci_columns(values) -> dict[str, float]:
    from .stats import mean_ci

    mean, low, high = mean_ci(values)
    return {"test_accuracy": mean, "ci_low": low, "ci_high": high}


def convergence_runs(runs, max_epochs: int):
    """One row per run trained to convergence (early stopping on validation): its scores, the
    epoch of its best validation accuracy, whether it stopped before `max_epochs`, and the
    training images and seconds it took to reach that best epoch (the patience excluded)."""
    import pandas as pd

    conv = pd.DataFrame([{"batch_size": r.recipe.batch_size,
                          "learning_rate": r.recipe.learning_rate, "seed": r.seed,
                          "test_accuracy": r.test_accuracy, "test_loss": r.test_loss,
                          "best_epoch": int(np.argmax(r.history["val_accuracy"])) + 1,
                          "epochs_run": r.epochs_run, "stopped_early": r.epochs_run < max_epochs,
                          "images_seen": r.images_seen, "seconds": r.train_seconds}
                         for r in runs])
    return conv.assign(images_to_best=conv.best_epoch * (conv.images_seen // conv.epochs_run),
                       seconds_to_best=conv.seconds * conv.best_epoch / conv.epochs_run)


def convergence_summary(conv):
    """Per batch size of convergence_runs: the learning rate, mean test accuracy with its 95 %
    t interval over seeds, mean test loss, the median best epoch, images and seconds to it, and
    the share of runs that stopped early."""
    import pandas as pd

    loss = conv.groupby("batch_size").test_loss.mean()  # pandas' grouped mean, to the last bit
    rows = {bs: {"learning_rate": part.learning_rate.iloc[0],
                 **_mean_ci_columns(part.test_accuracy), "test_loss": loss[bs],
                 "best_epoch": part.best_epoch.median(),
                 "images_to_best": part.images_to_best.median(),
                 "seconds_to_best": part.seconds_to_best.median(),
                 "stopped_early": part.stopped_early.mean()}
            for bs, part in conv.groupby("batch_size")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("batch_size")


def chosen_runs(table):
    """The rows of a budget table (budget_table) at the learning rate chosen, per budget and
    batch size, by the best mean validation accuracy over seeds."""
    mean_val = table.groupby(["budget", "batch_size", "learning_rate"])["val_accuracy"].mean()
    chosen_lr = mean_val.groupby(["budget", "batch_size"]).idxmax().map(lambda key: key[2])
    chosen = table.merge(chosen_lr.rename("chosen_lr").reset_index(), on=["budget", "batch_size"])
    return chosen[chosen.learning_rate == chosen.chosen_lr].drop(columns="chosen_lr")


def best_per_budget(chosen):
    """Per budget and batch size of chosen_runs: the chosen learning rate, the seeds, and the
    mean test accuracy with its 95 % t interval over seeds."""
    import pandas as pd

    rows = {key: {"learning_rate": part.learning_rate.iloc[0], "seeds": len(part),
                  **_mean_ci_columns(part.test_accuracy)}
            for key, part in chosen.groupby(["budget", "batch_size"])}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["budget", "batch_size"])


def learning_rate_rule(table) -> tuple[Any, dict[str, dict[str, float]]]:
    """The best learning rate per budget and batch size (optimum: the rate, its neighbours,
    bracketed or not) and, per budget, its two regimes over batch size (two_regimes)."""
    import pandas as pd

    rule = table.groupby(["budget", "batch_size"]).apply(
        lambda part: pd.Series(optimum(part)), include_groups=False)
    regimes = {budget: two_regimes(part.droplevel("budget").index, part.best_lr)
               for budget, part in rule.groupby(level="budget")}
    return rule, regimes


def rate_cap(best_lr, regime: Mapping[str, float]) -> tuple[float, int]:
    """Where the best learning rate stops growing: the lower median of the best rates past the
    regimes' break (all of them without a break), so the cap is a rate that was tried, and the
    smallest batch size whose best rate reaches it (before the break, if the best rates are not
    monotone there)."""
    past = best_lr[best_lr.index >= regime["break"]] if np.isfinite(regime["break"]) else best_lr
    cap = float(np.sort(past.to_numpy())[(len(past) - 1) // 2])
    return cap, int(best_lr[best_lr >= cap].index.min())


def fastest_to_target(sweep: Mapping[tuple[int, float, int], Any], target: float):
    """Per batch size, the learning rate that reaches `target` validation accuracy in the fewest
    steps (geometric mean over seeds; a rate counts only if every seed got there), with the
    geometric mean and 95 % interval over seeds of its steps and seconds to the target. A batch
    size at which no rate gets every seed there is left out."""
    import pandas as pd

    from .stats import mean_ci

    reach = pd.DataFrame([{"batch_size": bs, "learning_rate": lr, "seed": seed,
                           "steps": steps_to(r.curve, target),
                           "seconds": steps_to(r.curve, target, "seconds")}
                          for (bs, lr, seed), r in sweep.items()])
    log_steps = reach.groupby(["batch_size", "learning_rate"])["steps"].apply(
        lambda v: np.log(v).mean(skipna=False))  # NaN unless every seed reached the target
    fastest = log_steps.dropna().groupby("batch_size").idxmin().map(lambda key: key[1])
    rows = {}
    for bs, lr in fastest.items():
        part = reach[(reach.batch_size == bs) & (reach.learning_rate == lr)]
        rows[bs] = {"learning_rate": lr, **{
            f"{col}_{stat}": float(np.exp(value)) for col in ("steps", "seconds")
            for stat, value in zip(("mean", "low", "high"), mean_ci(np.log(part[col])),
                                   strict=True)}}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("batch_size")
