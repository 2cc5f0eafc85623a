"""The comparison's analyses (chapter 05): the fairness checks (each model's learning rate against
its grid neighbours and its budget doubled), one row per model (accuracy with its two kinds of
interval, loss, size, multiply-accumulates, training and inference cost, calibration), the
families of tests between models, where the models' errors overlap, robustness tables, and the
Pareto fronts of accuracy against cost.

Models come in as chapters 02 and 04 recorded them (training.from_headline records) and as their
saved test probabilities, so this module never declares a model again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .stats import (
    calibration,
    converged,
    diff_ci,
    fmt_pct,
    holm,
    interval_text,
    mcnemar,
    mean_ci,
    minimum_detectable_effect,
    paired_ci,
    pareto_front,
    signed,
    test_sampling_interval,
    welch_p,
)
from .training import from_headline

FIELDS = {"learning rate": "learning_rate", "epochs": "epochs"}

# ------------------------------------------------------------------------------------------------
# Is the comparison fair? Learning-rate neighbours and doubled budgets
# ------------------------------------------------------------------------------------------------


def fairness_checks(headlines: Mapping[str, Mapping[str, Any]],
                    neighbours: Mapping[str, Sequence[float]],
                    first: str | None = None) -> list[tuple[str, str, float]]:
    """The checks (model, setting changed, value tried): each model's learning-rate neighbours
    (`neighbours`), then every model's budget doubled (its recorded epochs x 2; `headlines`:
    model -> how its chapter trained it, `helpers.headline`'s record); the checks of the model
    `first` (the longest runs) go first, the order kept otherwise."""
    checks = [(label, "learning rate", lr) for label, lrs in neighbours.items() for lr in lrs]
    checks += [(label, "epochs", 2 * from_headline(headline)[1].epochs)
               for label, headline in headlines.items()]
    return sorted(checks, key=lambda c: c[0] != first) if first else checks


def check_spec(headline: Mapping[str, Any], changed: str, value: float, seed: int) -> tuple:
    """(net, recipe, seed) of one check: the model as its chapter recorded it (`headline`), with
    one setting (`changed`: "learning rate" or "epochs") set to `value`."""
    net, recipe, _ = from_headline(headline)
    return net, recipe.replace(**{FIELDS[changed]: value}), seed


def mean_by_change(runs: Sequence, seeds: int) -> list[float]:
    """Mean validation accuracy of each change, from its runs listed change by change, `seeds`
    consecutive runs each."""
    return [float(np.mean([r.val_accuracy for r in runs[i:i + seeds]]))
            for i in range(0, len(runs), seeds)]


def fairness_table(changes: Sequence[tuple[str, str, float]], tried: Sequence[float],
                   headlines: Mapping[str, Mapping[str, Any]], chosen_val: Mapping[str, float],
                   seed_sd: Mapping[str, float]):
    """One row per check: the model, the setting changed, its chosen and tried values, the
    validation accuracy of each (the chosen setting's on the same seeds), their difference and
    the model's seed SD of validation accuracy, in points."""
    import pandas as pd

    return pd.DataFrame([{
        "model": label, "setting changed": changed,
        "chosen": getattr(from_headline(headlines[label])[1], FIELDS[changed]),
        "tried": value, "validation accuracy, tried": val,
        "validation accuracy, chosen": chosen_val[label],
        "difference (points)": 100 * (val - chosen_val[label]),
        "seed SD (points)": 100 * seed_sd[label]}
        for (label, changed, value), val in zip(changes, tried, strict=True)])


def beaten_checks(fair):
    """The checks whose tried setting beat the chosen one by more than the model's seed SD."""
    return fair[fair["difference (points)"] > fair["seed SD (points)"]]


def budget_text(beaten, label: str, convergence: Mapping[str, Any] | None = None) -> str:
    """A model's budget verdict for the table: "unbeaten by its checks", or the settings that
    beat it ("beaten by lr 0.01 (+0.12), 60 epochs (+0.08)"). With the model's convergence test
    (`convergence_test`), its verdict replaces the doubled-budget check ("converged at 30 -> 60
    epochs (+0.05); beaten by lr 0.01 (+0.12)")."""
    lost = beaten[beaten.model == label]
    parts = []
    if convergence is not None:
        lost = lost[lost["setting changed"] != "epochs"]
        parts.append(f"{convergence['verdict']} at {convergence['epochs']} → "
                     f"{2 * convergence['epochs']} epochs "
                     f"({signed(100 * convergence['difference'])})")
    if not lost.empty:
        parts.append("beaten by " + ", ".join(
            f"{'lr ' if r['setting changed'] == 'learning rate' else ''}{r.tried:g}"
            f"{' epochs' if r['setting changed'] == 'epochs' else ''} "
            f"({signed(r['difference (points)'])})" for _, r in lost.iterrows()))
    elif convergence is None:
        parts.append("unbeaten by its checks")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------
# One row per model
# ------------------------------------------------------------------------------------------------


def convergence_test(chosen: Sequence, doubled: Sequence, margin: float) -> dict[str, Any]:
    """The report's convergence test (`stats.converged`) of one model from its runs: `chosen` at
    its budget and `doubled` at twice it, paired by seed (the same seeds at both, >= 3). Adds the
    chosen budget in epochs and the change in mean test accuracy, which is reported only."""
    by_seed = {r.seed: r for r in chosen}
    twice = {r.seed: r for r in doubled}
    if set(by_seed) != set(twice) or len(by_seed) != len(chosen) or len(twice) != len(doubled):
        raise ValueError(f"the convergence test pairs the same seeds once each at both budgets: "
                         f"{sorted(by_seed)} against {sorted(twice)}")
    seeds = sorted(by_seed)
    if any(twice[s].recipe.epochs != 2 * by_seed[s].recipe.epochs for s in seeds):
        raise ValueError("the doubled runs must train twice the chosen runs' epochs")
    verdict = converged([by_seed[s].val_accuracy for s in seeds],
                        [twice[s].val_accuracy for s in seeds], margin)
    return verdict | {"epochs": by_seed[seeds[0]].recipe.epochs,
                      "test_change": float(np.mean([twice[s].test_accuracy for s in seeds])
                                           - np.mean([by_seed[s].test_accuracy for s in seeds]))}


def convergence_table(tests: Mapping[str, Mapping[str, Any]]):
    """One row per model from its convergence test (`convergence_test`, or a chapter's record of
    one): the budgets, the seeds, the paired change in validation accuracy with its interval,
    the margin and the verdict, in points."""
    import pandas as pd

    return pd.DataFrame([{
        "model": label, "epochs": f"{t['epochs']} → {2 * t['epochs']}", "seeds": t["seeds"],
        "validation change (points)": signed(100 * t["difference"]),
        "95 % interval": f"[{signed(100 * t['low'])}, {signed(100 * t['high'])}]",
        "margin (points)": f"±{100 * t['margin']:.2f}", "verdict": t["verdict"]}
        for label, t in tests.items()])


def correct_matrix(probas: Sequence[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(runs, images): whether each run's top class is right on each test image."""
    return np.array([p.argmax(1) == labels for p in probas])


def mean_test_loss(probas: Sequence[np.ndarray], labels: np.ndarray, floor: float = 1e-7
                   ) -> float:
    """Mean over runs of the cross-entropy of their test probabilities (floored at `floor`)."""
    rows = np.arange(len(labels))
    return float(np.mean([-np.log(np.maximum(p[rows, labels], floor)).mean() for p in probas]))


def model_row(label: str, budget: str, model, probas: Sequence[np.ndarray], labels: np.ndarray,
              images_seen: float, seconds_per_image: float, speed: Mapping[str, float],
              macs: int) -> dict[str, Any]:
    """One model of the comparison table: its accuracy over runs with the interval over seeds
    (Student t) and over test images (bootstrap), test loss, errors, size, multiply-accumulates,
    training images and time (images x the seconds per image `make bench` measured), inference
    latency and throughput (`speed`, measured here), and the mean ECE over runs."""
    correct = correct_matrix(probas, labels)
    accuracy = correct.mean(axis=1)
    return {"model": label, "budget": budget, "seeds": len(accuracy),
            "accuracy": float(accuracy.mean()), "seed_ci": mean_ci(accuracy)[1:],
            "test_ci": test_sampling_interval(correct), "test_loss": mean_test_loss(probas, labels),
            "errors": len(labels) * (1 - accuracy.mean()), "params": model.count_params(),
            "macs": macs, "images_seen": images_seen,
            "train_seconds": images_seen * seconds_per_image,
            "latency_ms": speed["latency_ms"], "throughput": speed["throughput"],
            "ece": float(np.mean([calibration(p, labels)[1] for p in probas]))}


def display_table(table):
    """The comparison table as a reader sees it: formatted columns, in reading order."""
    return table.assign(**{
        "test accuracy": table.accuracy.map(fmt_pct),
        "spread over seeds (95 % t)": ["single run" if n == 1 else interval_text(*c)
                                       for c, n in zip(table.seed_ci, table.seeds, strict=True)],
        "test-set sampling (95 % bootstrap)": [interval_text(*c) for c in table.test_ci],
        "test loss": table.test_loss.map("{:.4f}".format),
        "parameters": table.params.map("{:,}".format),
        "MACs per image": table.macs.map(lambda m: f"{m / 1e6:.2f} M"),
        "training images": table.images_seen.map("{:,.0f}".format),
        "training time": table.train_seconds.map("{:,.0f} s".format),
        "latency, 1 image": table.latency_ms.map("{:.1f} ms".format),
        "ECE": table.ece.map(fmt_pct),
    })[["budget", "seeds", "test accuracy", "spread over seeds (95 % t)",
        "test-set sampling (95 % bootstrap)", "test loss", "parameters", "MACs per image",
        "training images", "training time", "latency, 1 image", "ECE"]]


def table_record(table) -> dict[str, dict[str, Any]]:
    """The comparison table for the results file, one record per model."""
    return {label: {"budget": r.budget, "seeds": int(r.seeds), "test_accuracy": r.accuracy,
                    "seed_ci95": list(r.seed_ci), "test_sampling_ci95": list(r.test_ci),
                    "test_loss": r.test_loss, "errors": r.errors, "params": int(r.params),
                    "macs": int(r.macs), "train_seconds": r.train_seconds,
                    "images_seen": r.images_seen, "latency_ms": r.latency_ms,
                    "throughput": r.throughput, "ece": r.ece}
            for label, r in table.iterrows()}


def flat_table(table):
    """The comparison table with its intervals in columns (for results/05_models.csv)."""
    return table.drop(columns=["seed_ci", "test_ci"]).assign(
        seed_ci_low=[c[0] for c in table.seed_ci], seed_ci_high=[c[1] for c in table.seed_ci],
        test_ci_low=[c[0] for c in table.test_ci], test_ci_high=[c[1] for c in table.test_ci],
    ).reset_index()


# ------------------------------------------------------------------------------------------------
# Tests between models, overlapping errors, calibration
# ------------------------------------------------------------------------------------------------


def welch_family(accuracy_of: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]]):
    """Each pair (a, b) as one row: b - a in points with its 95 % Welch interval (over seeds), the
    Welch p-value, the Holm-adjusted p over the family, and the smallest difference the pair's
    seeds detect with 80 % power at the 5 % level (two groups, their pooled SD, the smaller n;
    before Holm's adjustment, so an optimistic floor)."""
    import pandas as pd

    table = pd.DataFrame([{"comparison": f"{b} − {a}", "difference (points)": 100 * d[0],
                           "95 % interval": d[1:],
                           "p (Welch)": welch_p(accuracy_of[b], accuracy_of[a])}
                          for a, b in pairs for d in [diff_ci(accuracy_of[b], accuracy_of[a])]])
    table["p (Holm)"] = holm(table["p (Welch)"])
    table["detectable (points)"] = [100 * minimum_detectable_effect(
        np.sqrt((np.var(accuracy_of[a], ddof=1) + np.var(accuracy_of[b], ddof=1)) / 2),
        min(len(accuracy_of[a]), len(accuracy_of[b])), paired=False) for a, b in pairs]
    return table


def versus_members(ensemble_correct: np.ndarray, members_correct: Sequence[np.ndarray]):
    """McNemar's exact test of an ensemble against each member on the same test images, Holm-
    adjusted over the members."""
    import pandas as pd

    table = pd.DataFrame([{"member": f"seed {i}", **mcnemar(ensemble_correct, c)}
                          for i, c in enumerate(members_correct)])
    table["p (Holm)"] = holm(table.p_value)
    return table


def missed_by_most(correct: Mapping[str, np.ndarray]):
    """Per model (column) and test image (row): missed by most of the model's runs."""
    import pandas as pd

    return pd.DataFrame({label: (~c).mean(axis=0) > 0.5 for label, c in correct.items()})


def _ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = np.bincount(which, confidence - correct, minlength=bins)
    return float(np.abs(gap).sum() / len(confidence))


def ece_interval(probas: Sequence[np.ndarray], labels: np.ndarray, bins: int = 15,
                 confidence: float = 0.95, resamples: int = 1000, seed: int = 0
                 ) -> dict[str, float]:
    """The mean ECE over runs (stats.calibration's, 15 equal-width bins) with a percentile
    bootstrap interval over test images: each resample draws the same images for every run, so
    the interval is that of the mean over these runs under test-set sampling."""
    top = [np.asarray(p).max(1) for p in probas]
    hits = [(np.asarray(p).argmax(1) == labels).astype(float) for p in probas]
    rng = np.random.default_rng(seed)
    draws = [np.mean([_ece(c[pick], h[pick], bins) for c, h in zip(top, hits, strict=True)])
             for pick in (rng.integers(0, len(labels), len(labels)) for _ in range(resamples))]
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    mean = np.mean([_ece(c, h, bins) for c, h in zip(top, hits, strict=True)])
    return {"ece": float(mean), "low": float(low), "high": float(high)}


def overconfidence(probas: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """Mean over runs of (mean top-class confidence - accuracy): > 0 is overconfident."""
    return float(np.mean([p.max(1).mean() - (p.argmax(1) == labels).mean() for p in probas]))


def calibration_table(runs: Mapping[str, Sequence[Mapping[str, float]]]):
    """Each model's calibration (one stats.temperature_calibration record per run, e.g. from
    analyses.calibration_of), the mean over its runs: the temperature, the error rate, the
    overconfidence and its ratio to the error rate (NaN without errors), and the ECE, NLL and
    Brier score before and after temperature scaling (`_scaled`)."""
    import pandas as pd

    rows = []
    for label, records in runs.items():
        mean = pd.DataFrame(list(records)).mean()
        rows.append({"model": label, "runs": len(records), **mean.to_dict(),
                     "over_per_error": mean.overconfidence / mean.error if mean.error > 0
                     else np.nan})
    return pd.DataFrame(rows).set_index("model")


# ------------------------------------------------------------------------------------------------
# Robustness and cost
# ------------------------------------------------------------------------------------------------


def perturbation_table(models: Mapping[str, Sequence], score: Callable,
                       kinds: Mapping[str, Sequence[float]]):
    """Accuracy under each perturbation and level, one row per model, seed, perturbation and
    level: `score(run, kind, levels)` gives a run's accuracies (a cached probe). Built from
    climb.level_table, one perturbation at a time."""
    import pandas as pd

    from .climb import level_table

    return pd.concat([level_table(models, lambda r, _, k=kind, v=levels: score(r, k, v), levels,
                                  "level").assign(perturbation=kind)
                      for kind, levels in kinds.items()], ignore_index=True)[
        ["model", "perturbation", "level", "seed", "test_accuracy"]]


def fronts(table, costs: Sequence[str], accuracy: str = "accuracy") -> dict[str, list[str]]:
    """Per cost column, the models on the Pareto front of test error against that cost."""
    error = 1 - table[accuracy]
    return {cost: list(table.index[pareto_front(table[cost], error)]) for cost in costs}


# ------------------------------------------------------------------------------------------------
# Architecture against recipe (issue 28): a 2 x 2 on one recipe
# ------------------------------------------------------------------------------------------------


def tune_peak(train: Callable[[float, int], Any], grid: Sequence[float], seeds: Sequence[int],
              start: Sequence[float]) -> dict[str, Any]:
    """A learning rate tuned on validation until bracketed: train every rate of `start` with each
    seed (`train(rate, seed)`), then, while the best mean validation accuracy sits at an edge of
    the rates tried, add `grid`'s next rate beyond that edge (until the grid ends). Returns the
    chosen rate, each rate's mean validation accuracy, whether the choice is bracketed, and the
    runs {(rate, seed): run}."""
    grid = sorted(grid)
    runs = {(lr, s): train(lr, s) for lr in sorted(start) for s in seeds}

    def scores():
        return {lr: float(np.mean([runs[(lr, s)].val_accuracy for s in seeds]))
                for lr in sorted({lr for lr, _ in runs})}

    while True:
        score = scores()
        best = max(score, key=score.get)
        tried = sorted(score)
        step = 1 if best == tried[-1] else -1 if best == tried[0] else 0
        i = grid.index(best) + step
        if step == 0 or not 0 <= i < len(grid) or grid[i] in score:
            break
        runs |= {(grid[i], s): train(grid[i], s) for s in seeds}
    return {"rate": best, "scores": score, "bracketed": step == 0, "runs": runs}


def factorial_table(groups: Mapping[tuple[str, str], Sequence]):
    """Runs in a two-way design ({(architecture, recipe): runs}) as one row per cell: the mean
    test and validation accuracy over seeds with the test accuracy's 95 % t-interval, the seeds,
    and the training images seen."""
    import pandas as pd

    rows = []
    for (arch, recipe), runs in groups.items():
        test = [r.test_accuracy for r in runs]
        mean, low, high = mean_ci(test)
        rows.append({"architecture": arch, "recipe": recipe, "seeds": len(runs),
                     "test_accuracy": mean, "test_low": low, "test_high": high,
                     "val_accuracy": float(np.mean([r.val_accuracy for r in runs])),
                     "images_seen": runs[0].images_seen})
    return pd.DataFrame(rows)


def paired_effects(groups: Mapping[tuple[str, str], Sequence],
                   contrasts: Mapping[str, tuple[tuple[str, str], tuple[str, str]]],
                   metric: str = "test_accuracy"):
    """Each contrast {name: (cell a, cell b)} as b - a in `metric`, paired by seed (the seeds both
    cells ran), with its 95 % t-interval, the seeds paired and the smallest difference they detect
    (80 % power, paired): e.g. CNN - MLP with and without augmentation."""
    import pandas as pd

    rows = []
    for name, (a, b) in contrasts.items():
        by_a = {r.seed: getattr(r, metric) for r in groups[a]}
        by_b = {r.seed: getattr(r, metric) for r in groups[b]}
        seeds = sorted(set(by_a) & set(by_b))
        diff, low, high = paired_ci([by_a[s] for s in seeds], [by_b[s] for s in seeds])
        sd = float(np.std([by_b[s] - by_a[s] for s in seeds], ddof=1))
        rows.append({"contrast": name, "difference": diff, "low": low, "high": high,
                     "seeds": len(seeds),
                     "detectable": minimum_detectable_effect(sd, len(seeds))})
    return pd.DataFrame(rows).set_index("contrast")
