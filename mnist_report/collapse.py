"""Runs that collapse or diverge (chapters 02 and 03): how often, per group, with exact
intervals; two groups compared by Fisher's exact test, beside the difference the test could
detect; and the cells of a grid that a recorded number is consistent with.

A run's outcome ("trained", "collapsed" or "diverged") is `probes.outcome`; the tables here
take one row per run with columns `outcome`, `test_accuracy` and `test_loss` (where needed)
and the grouping columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .stats import (
    clopper_pearson,
    distance,
    fisher_detectable,
    fisher_exact,
    prediction_interval,
    reproduction_test,
)

FAILED = ("collapsed", "diverged")


def failure_counts(runs, by: Sequence[str], confidence: float = 0.95):
    """Per group of `runs`: how many collapsed, diverged and failed (either) of how many, the
    share failed with an exact (Clopper-Pearson) interval, and (where the table has test
    accuracies) the group's median test accuracy."""
    import pandas as pd

    by = list(by)
    rows = []
    for keys, part in runs.groupby(by, sort=True):
        counts = {kind: int((part.outcome == kind).sum()) for kind in FAILED}
        failed = sum(counts.values())
        low, high = clopper_pearson(failed, len(part), confidence)
        row = {**dict(zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)),
               **counts, "failed": failed, "runs": len(part), "share": failed / len(part),
               "share_low": low, "share_high": high}
        if "test_accuracy" in part:
            row["median_accuracy"] = float(part.test_accuracy.median())
        rows.append(row)
    return pd.DataFrame(rows)


def compare_failures(counts, a: Any, b: Any, by: str = "learning_rate",
                     level: str = "batch_size", label: str = "batch {}", alpha: float = 0.05,
                     power: float = 0.8):
    """For each value of `by` in a failure_counts table, groups `level` = a and b compared:
    failed/runs of each (columns `label` filled with a and b), Fisher's exact p, and the
    smallest difference in the failed share that the test detects with `power` at the share of
    a (`detectable`, stats.fisher_detectable)."""
    import pandas as pd

    rows = []
    for value, part in counts.groupby(by, sort=True):
        part = part.set_index(level)
        ga, gb = part.loc[a], part.loc[b]
        rows.append({by: value, label.format(a): f"{int(ga.failed)}/{int(ga.runs)}",
                     label.format(b): f"{int(gb.failed)}/{int(gb.runs)}",
                     "Fisher p": fisher_exact(int(ga.failed), int(ga.runs), int(gb.failed),
                                              int(gb.runs)),
                     "detectable": fisher_detectable(float(ga.share), int(ga.runs),
                                                     int(gb.runs), alpha, power)})
    return pd.DataFrame(rows).set_index(by)


def widest_difference(counts, value: Any, by: str = "learning_rate",
                      level: str = "batch_size") -> dict[str, Any]:
    """Within one value of `by`: the group (of `level`) that fails most and the one that fails
    least, and Fisher's exact p between them (None and p = 1 when every group fails alike).
    Picked after the fact, so the p-value is optimistic."""
    part = counts[counts[by] == value].set_index(level)
    if part.share.max() == part.share.min():  # no group fails more than another
        return {"worst": None, "best": None, "p": 1.0}
    worst, best = part.share.idxmax(), part.share.idxmin()  # ties: the first in `level` order
    return {"worst": worst, "best": best,
            "p": fisher_exact(int(part.failed[worst]), int(part.runs[worst]),
                              int(part.failed[best]), int(part.runs[best]))}


def cell_consistent(cell, accuracy: float, loss: float) -> bool | None:
    """Whether a recorded (accuracy, loss) passes the calibrated rule (stats.reproduction_test)
    against the runs of one cell; None when the cell gets no verdict: some of its runs diverged
    (a non-finite loss), so it is not one distribution, or it has fewer than two runs, which
    predict nothing about the next."""
    if len(cell) < 2 or not np.isfinite(cell.test_loss).all():
        return None
    return bool(reproduction_test(cell.test_accuracy, cell.test_loss, accuracy,
                                  loss)["reproduced"])


def consistent_cells(runs, accuracy: float, loss: float, by: str = "learning_rate") -> list:
    """The values of `by` whose cell the recorded (accuracy, loss) is consistent with (tested
    cells only: see untested_cells)."""
    return [value for value, cell in runs.groupby(by, sort=True)
            if cell_consistent(cell, accuracy, loss)]


def untested_cells(runs, by: str = "learning_rate") -> list:
    """The values of `by` whose cell gets no verdict (cell_consistent returns None)."""
    return [value for value, cell in runs.groupby(by, sort=True)
            if cell_consistent(cell, 0.5, 1.0) is None]


def closest_cell(runs, accuracy: float, loss: float, by: str = "learning_rate"
                 ) -> dict[str, Any]:
    """The cell (value of `by`) whose median accuracy and median loss lie closest to the recorded
    pair (stats.distance; a non-finite loss counts as 1e9), with its mean accuracy, 97.5 %
    prediction intervals for accuracy and for its finite losses, how many losses are not
    finite, and whether the pair is consistent with the cell (None: no verdict)."""
    finite_loss = runs.test_loss.where(np.isfinite(runs.test_loss), 1e9)
    dist = {value: distance(cell.test_accuracy.median(), finite_loss[cell.index].median(),
                            accuracy, loss) for value, cell in runs.groupby(by, sort=True)}
    value = min(dist, key=dist.get)
    cell = runs[runs[by] == value]
    finite = cell.test_loss[np.isfinite(cell.test_loss)]
    return {by: value, "accuracy": float(cell.test_accuracy.mean()), "seeds": len(cell),
            "accuracy_range": prediction_interval(cell.test_accuracy, 0.975),
            "loss_range": (prediction_interval(finite, 0.975) if len(finite) > 1
                           else (np.nan, np.nan)),
            "non_finite_losses": int(len(cell) - len(finite)),
            "consistent": cell_consistent(cell, accuracy, loss)}
