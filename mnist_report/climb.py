"""The CNN's analyses (chapter 04): the reproduction table, the climb one change at a time with
paired gains, ensembles over subsets of seeds, the budget outlook, the fast-to-99 % search, the
spatial controls (permuted pixels, shifted and noisy digits), the ensemble's errors, and the
headline records that chapter 05, bench.py and the README read.

Like `scaling`, it works on runs (training.TrainResult) or tidy tables, and a search takes a
`train` callable, so the chapter keeps the choice of network, recipe and entry point and this
module the computation. Analyses that need weights (perturbed or noisy accuracy) are called
through `probes` and `analyses`, whose own cache keys they keep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from .stats import (
    clopper_pearson,
    consistency_row,
    distance,
    mean_ci,
    paired_ci,
    prediction_interval,
    prediction_p,
)

# ------------------------------------------------------------------------------------------------
# Reproductions and the climb
# ------------------------------------------------------------------------------------------------


def reproduction_table(programs: Mapping[str, Sequence], accuracy: float, loss: float):
    """One row per program (its runs over seeds) against a recorded (accuracy, loss): the mean
    test accuracy and loss, their 95 % prediction intervals for one new run and the combined
    p-value (stats.consistency_row, the calibrated rule), whether the recorded pair is
    consistent (`reproduced`), the distance to it (stats.distance), the parameters, the images
    seen and the mean training time; closest first."""
    import pandas as pd

    rows = []
    for name, runs in programs.items():
        acc = [r.test_accuracy for r in runs]
        row = consistency_row(acc, [r.test_loss for r in runs], accuracy, loss)
        rows.append({"program": name, "seeds": row["runs"], "test_accuracy": row["mean_accuracy"],
                     "accuracy_low": row["accuracy_low"], "accuracy_high": row["accuracy_high"],
                     "test_loss": row["mean_loss"], "loss_low": row["loss_low"],
                     "loss_high": row["loss_high"], "p": row["p"],
                     "reproduced": row["consistent"],
                     "distance": distance(row["mean_accuracy"], row["mean_loss"], accuracy, loss),
                     "n_params": runs[0].n_params, "images_seen": runs[0].images_seen,
                     "train_seconds": float(np.mean([r.train_seconds for r in runs]))})
    return pd.DataFrame(rows).set_index("program").sort_values("distance")


def published_table(programs: Mapping[str, Sequence], published: Mapping[str, float],
                    log_reports_test: Sequence[str] = ()):
    """Positive controls: each program's runs against the one figure its authors published,
    read after the last epoch (`final`) and, for the programs in `log_reports_test` (whose
    training log prints the *test* accuracy after every epoch, as `mnist_cnn.py`'s does), also
    at the best snapshot (`best_epoch`, else NaN), as a reader of that log could report it. For
    each reading, the mean over seeds, the 95 % prediction interval for one new run and the
    p-value of the published figure as that run (stats.prediction_p)."""
    import pandas as pd

    rows = []
    for name, runs in programs.items():
        reads = {"final": [r.test_accuracy for r in runs],
                 "best_epoch": [max(s["test_accuracy"] for s in r.snapshots.values())
                                for r in runs] if name in log_reports_test else None}
        row = {"program": name, "published": published[name], "seeds": len(runs),
               "epochs": runs[0].recipe.epochs}
        for how, values in reads.items():
            low, high = prediction_interval(values) if values else (np.nan, np.nan)
            row |= {how: float(np.mean(values)) if values else np.nan, f"{how}_low": low,
                    f"{how}_high": high,
                    f"{how}_p": prediction_p(values, published[name]) if values else np.nan}
        rows.append(row)
    return pd.DataFrame(rows).set_index("program")


def snapshot_table(groups: Mapping[str, Sequence], label: str = "program"):
    """Every run's epoch snapshots as a tidy table: one row per run and epoch (`label`, seed,
    epoch and the snapshot's scores)."""
    import pandas as pd

    return pd.DataFrame([{label: name, "seed": r.seed, "epoch": epoch, **snap}
                         for name, runs in groups.items() for r in runs
                         for epoch, snap in r.snapshots.items()])


def loss_turns(curves, label: str = "program") -> dict[str, dict[str, float]]:
    """Per `label`, where its mean test loss over seeds is lowest (`best_epoch`) and how far
    above that it ends (`rise`)."""
    mean = curves.groupby([label, "epoch"]).test_loss.mean().unstack()
    return {name: {"best_epoch": int(row.dropna().idxmin()),
                   "rise": float(row.dropna().iloc[-1] - row.min())}
            for name, row in mean.iterrows()}


def climb_configs(net, recipe, steps: Sequence[tuple[str, Mapping, Mapping]]) -> dict:
    """The climb's rows: each (name, change to the net, change to the recipe) applied to the row
    above, starting from (`net`, `recipe`). Returns {name: (Net, Recipe)}."""
    configs = {}
    for name, net_change, recipe_change in steps:
        net, recipe = net.replace(**net_change), recipe.replace(**recipe_change)
        configs[name] = (net, recipe)
    return configs


def paired_gains(runs, metric: str, order: Sequence[str], label: str = "model"):
    """Each row's change in `metric` over the row above (`order`), paired by seed: the mean
    difference and its 95 % t-interval (columns gain, low, high), indexed by the row."""
    import pandas as pd

    wide = runs.pivot(index="seed", columns=label, values=metric)[list(order)]
    return pd.DataFrame({row: mean_ci(wide[row] - wide[above])
                         for above, row in zip(order[:-1], order[1:], strict=True)},
                        index=["gain", "low", "high"]).T


def reading(low: float, high: float) -> str:
    """What a paired 95 % interval of a gain says: "a gain", "a loss" or "within seed noise"."""
    return "a gain" if low > 0 else "a loss" if high < 0 else "within seed noise"


def paired_metric_gains(better: Sequence, base: Sequence,
                        metrics: Sequence[str] = ("val_accuracy", "test_accuracy")
                        ) -> dict[str, tuple[float, float, float]]:
    """`better` minus `base`, run by run (the same seeds in the same order), per metric: the
    mean difference and its 95 % t-interval."""
    return {m: paired_ci([getattr(r, m) for r in base], [getattr(r, m) for r in better])
            for m in metrics}


# ------------------------------------------------------------------------------------------------
# Ensembles and the budget
# ------------------------------------------------------------------------------------------------


def ensemble_proba(runs: Sequence) -> np.ndarray:
    """The ensemble's test probabilities: the mean of its members' predicted probabilities."""
    return np.mean([r.test_proba for r in runs], axis=0)


def subset_ensembles(runs: Sequence, labels: np.ndarray):
    """Test accuracy of the ensemble of every non-empty subset of `runs`: one row per subset
    (`members`, `test_accuracy`), for the spread over member draws."""
    import pandas as pd

    return pd.DataFrame([{"members": k, "test_accuracy": float(
        (ensemble_proba([runs[i] for i in subset]).argmax(1) == labels).mean())}
        for k in range(1, len(runs) + 1) for subset in combinations(range(len(runs)), k)])


def ensemble_summary(pools: Mapping[str, Sequence], x_val: np.ndarray, y_val: np.ndarray,
                     y_test: np.ndarray, val_accuracy: Callable) -> dict[str, Any]:
    """Each pool of runs as an ensemble, scored on validation (`val_accuracy(runs, x, y)`, e.g.
    analyses.ensemble_accuracy, cached) and on test; the pool best on validation is chosen.
    Returns the table, the chosen pool's name, its members, test probabilities and accuracy, and
    the exact (Clopper-Pearson) interval of its test accuracy (test-set sampling)."""
    import pandas as pd

    table = pd.DataFrame([{"ensemble": name, "members": len(runs),
                           "val_accuracy": val_accuracy(runs, x_val, y_val),
                           "test_accuracy": float((ensemble_proba(runs).argmax(1) == y_test
                                                   ).mean())}
                          for name, runs in pools.items()]).set_index("ensemble")
    name = table.val_accuracy.idxmax()
    proba = ensemble_proba(pools[name])
    correct = proba.argmax(1) == y_test
    return {"table": table, "name": name, "members": list(pools[name]), "proba": proba,
            "accuracy": float(correct.mean()),
            "ci": clopper_pearson(int(correct.sum()), len(y_test))}


def budget_outlook(by_budget, goal: float) -> dict[str, float | str]:
    """Where a power law of the test error through the last two budgets (`by_budget`: mean
    accuracy indexed by epochs) reaches `goal`: its exponent `k` (error ∝ epochs^-k) and the
    epochs `needed` (inf when the error stopped falling); `status` is "reached" when a measured
    budget already meets the goal, "extrapolated" or "stalled". Two points: an extrapolation,
    not a measurement."""
    errors = 1 - by_budget.sort_index()
    (e_short, e_long), (b_short, b_long) = errors.iloc[-2:], errors.index[-2:]
    k = float(np.log(e_short / e_long) / np.log(b_long / b_short))
    needed = float(b_long * (e_long / (1 - goal)) ** (1 / k)) if k > 0 else float("inf")
    status = ("reached" if by_budget.max() >= goal else
              "extrapolated" if np.isfinite(needed) else "stalled")
    return {"k": k, "needed": needed, "status": status}


# ------------------------------------------------------------------------------------------------
# Fast to a validation target
# ------------------------------------------------------------------------------------------------


def best_per_group(screen, group: str = "net", score: str = "val_accuracy", at: str = "epochs"):
    """Each group's best row by `score` among the rows at the largest value of `at` (stage 1's
    longest budget): the settings stage 2 trains longer."""
    longest = screen[screen[at] == screen[at].max()]
    return longest.sort_values(score).groupby(group).tail(1)


def _setting(recipe, row):
    return recipe.replace(batch_size=int(row.batch), learning_rate=float(row.peak_lr),
                          epochs=int(row.epochs))


def screen_configs(train: Callable, nets: Mapping[str, Any], recipe,
                   grid: Sequence[tuple[str, int, float, int]], seed: int):
    """Train each (net, batch, peak learning rate, epochs) of `grid` once (`train(net, recipe,
    seed)`, `recipe` with those three replaced): one row per configuration with its validation
    and test accuracy, training time and images seen."""
    import pandas as pd

    rows = []
    for net, batch, lr, epochs in grid:
        run = train(nets[net], recipe.replace(batch_size=batch, learning_rate=lr, epochs=epochs),
                    seed)
        rows.append({"net": net, "batch": batch, "peak_lr": lr, "epochs": epochs,
                     **{k: getattr(run, k) for k in ("val_accuracy", "test_accuracy",
                                                     "train_seconds", "images_seen")}})
    return pd.DataFrame(rows)


def first_confirmed(screen, train: Callable, nets: Mapping[str, Any], recipe,
                    seeds: Sequence[int], target: float, fallback: bool = False):
    """The quickest screened configuration (by `train_seconds`) whose validation accuracy reached
    `target` and whose runs over `seeds` reach it on average; candidates are tried in order of
    time, so only those up to the first confirmed one are trained. Returns (row, runs,
    confirmed). When none is confirmed: a ValueError, or with `fallback` (a smoke run, whose
    tiny runs reach nothing) the most accurate configuration on validation, not confirmed."""
    def runs_of(row):
        return [train(nets[row.net], _setting(recipe, row), s) for s in seeds]

    for row in screen[screen.val_accuracy >= target].sort_values("train_seconds").itertuples():
        runs = runs_of(row)
        if np.mean([r.val_accuracy for r in runs]) >= target:
            return row, runs, True
    if not fallback:
        raise ValueError(f"no screened configuration reached {target:.1%} on validation over "
                         f"{len(seeds)} seeds")
    row = screen.sort_values("val_accuracy").iloc[-1]
    return row, runs_of(row), False


# ------------------------------------------------------------------------------------------------
# The spatial controls
# ------------------------------------------------------------------------------------------------


def permutation_effects(runs) -> dict[str, tuple[float, float, float]]:
    """From a tidy table of (model, pixels, seed, test_accuracy) with models "MLP" and "CNN" and
    pixels "original" and "permuted", paired by seed (95 % t-intervals): what permuting costs each
    model (`drop_MLP`, `drop_CNN`), how much more it costs the CNN (`difference`), and the CNN's
    lead over the MLP on real and on permuted pixels (`real_gap`, `permuted_gap`)."""
    wide = runs.pivot(index="seed", columns=["model", "pixels"], values="test_accuracy")
    drop = {m: wide[(m, "original")] - wide[(m, "permuted")] for m in ("MLP", "CNN")}
    return {"drop_MLP": mean_ci(drop["MLP"]), "drop_CNN": mean_ci(drop["CNN"]),
            "difference": mean_ci(drop["CNN"] - drop["MLP"]),
            "real_gap": mean_ci(wide[("CNN", "original")] - wide[("MLP", "original")]),
            "permuted_gap": mean_ci(wide[("CNN", "permuted")] - wide[("MLP", "permuted")])}


def group_table(groups: Mapping[tuple[str, str], Sequence], names: Sequence[str] = ("model",
                "pixels")):
    """Runs in labelled groups as a tidy table: one row per run (the labels, seed, test and
    validation accuracy, epochs run and images seen)."""
    import pandas as pd

    return pd.DataFrame([{**dict(zip(names, key, strict=True)), "seed": r.seed,
                          "test_accuracy": r.test_accuracy, "val_accuracy": r.val_accuracy,
                          "epochs": r.epochs_run, "images_seen": r.images_seen}
                         for key, runs in groups.items() for r in runs])


def level_table(models: Mapping[str, Sequence], score: Callable[[Any, Any], Sequence[float]],
                levels: Sequence, level: str):
    """Accuracy at each perturbation level, one row per model, seed and level: `score(run, label)`
    gives a run's accuracies at `levels` (a cached probe, so a warm rerun predicts nothing)."""
    import pandas as pd

    return pd.DataFrame([{"model": label, level: v, "seed": r.seed, "test_accuracy": a}
                         for label, runs in models.items() for r in runs
                         for v, a in zip(levels, score(r, label), strict=True)])


# ------------------------------------------------------------------------------------------------
# Errors and the headline records
# ------------------------------------------------------------------------------------------------


def missed_by_all(runs: Sequence, labels: np.ndarray) -> np.ndarray:
    """Per test image: is it missed by every one of `runs`?"""
    return np.all([r.test_predictions != labels for r in runs], axis=0)


def seeds_record(runs: Sequence, runs_label: str, headline: Callable) -> dict[str, Any]:
    """A headline model's record for the results file: how it was trained (`headline(net,
    recipe, seeds)`), its budget, its mean test accuracy with the 95 % t-interval over seeds, the
    per-seed accuracies, mean loss and validation accuracy, parameters and training time;
    `runs_label` names its rows in the chapter's runs table."""
    acc = np.array([r.test_accuracy for r in runs])
    mean, low, high = mean_ci(acc)
    first = runs[0]
    return {"runs_label": runs_label,
            "recipe": headline(first.net, first.recipe, [r.seed for r in runs]),
            "epochs": first.recipe.epochs, "images_seen": first.images_seen,
            "batch_size": first.recipe.batch_size, "seeds": len(runs),
            "test_accuracy_mean": mean, "ci95": [low, high],
            "test_accuracy_per_seed": acc.tolist(),
            "test_loss_mean": float(np.mean([r.test_loss for r in runs])),
            "val_accuracy_mean": float(np.mean([r.val_accuracy for r in runs])),
            "n_params": first.n_params,
            "train_seconds_mean": float(np.mean([r.train_seconds for r in runs]))}


def climb_record(climb, gains: Mapping[tuple[int, str], Any], order: Sequence[str],
                 seeds: int) -> dict[str, dict[str, Any]]:
    """The climb's rows for the results file, keyed "row | N epochs": the means of `climb`
    (indexed by epochs and model) and, past the first row, the paired gains on validation and
    test with their intervals."""
    record = {}
    for epochs, name in climb.index:
        entry = {"epochs": int(epochs), "seeds": seeds,
                 **{k: float(v) for k, v in climb.loc[(epochs, name)].items()}}
        if name != order[0]:
            entry |= {f"{m.split('_')[0]}_gain_ci95": [float(v) for v in
                                                        gains[(epochs, m)].loc[name]]
                      for m in ("val_accuracy", "test_accuracy")}
        record[f"{name} | {epochs} epochs"] = entry
    return record
