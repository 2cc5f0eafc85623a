"""mnist_report.collapse: failure counts, Fisher comparisons, and grid cells consistent with a
recorded number (chapters 02 and 03)."""

import numpy as np
import pandas as pd
import pytest

import helpers


def _grid():
    """Two learning rates x two batch sizes, 20 runs a cell: at 0.01 batch 128 collapses 12 times
    and 2048 diverges 11 times; at 0.001 nothing fails."""
    rng = np.random.default_rng(0)
    rows = []
    for lr in (0.001, 0.01):
        for bs in (128, 2048):
            failures = {(0.01, 128): ["collapsed"] * 12,
                        (0.01, 2048): ["diverged"] * 11}.get((lr, bs), [])
            outcomes = failures + ["trained"] * (20 - len(failures))
            for seed, outcome in enumerate(outcomes):
                trained = outcome == "trained"
                rows.append({"learning_rate": lr, "batch_size": bs, "seed": seed,
                             "outcome": outcome,
                             "test_accuracy": (0.9 + 0.01 * rng.standard_normal()) if trained
                             else 0.1135,
                             "test_loss": (0.3 + 0.01 * rng.standard_normal()) if trained else (
                                 np.inf if outcome == "diverged" else 2.30)})
    return pd.DataFrame(rows)


def test_failure_counts_give_kinds_shares_exact_intervals_and_medians():
    counts = helpers.failure_counts(_grid(), ["learning_rate", "batch_size"]).set_index(
        ["learning_rate", "batch_size"])
    row = counts.loc[(0.01, 128)]
    assert (row.collapsed, row.diverged, row.failed, row.runs) == (12, 0, 12, 20)
    assert (row.share_low, row.share_high) == pytest.approx(helpers.clopper_pearson(12, 20))
    assert counts.loc[(0.01, 2048), "diverged"] == 11
    clean = counts.loc[(0.001, 2048)]
    assert clean.share_low == 0 and 0.1 < clean.share_high < 0.2
    assert counts.loc[(0.001, 128), "median_accuracy"] == pytest.approx(0.9, abs=0.01)
    # without accuracies (chapter 02's outcomes table) there is no median column
    no_acc = helpers.failure_counts(_grid().drop(columns="test_accuracy"), ["batch_size"])
    assert "median_accuracy" not in no_acc and list(no_acc.failed) == [12, 11]


def test_compare_failures_gives_fisher_p_and_the_detectable_difference():
    counts = helpers.failure_counts(_grid(), ["learning_rate", "batch_size"])
    table = helpers.compare_failures(counts, 128, 2048)
    assert list(table.index) == [0.001, 0.01]
    assert table.loc[0.01, "batch 128"] == "12/20" and table.loc[0.01, "batch 2048"] == "11/20"
    assert table.loc[0.01, "Fisher p"] == pytest.approx(helpers.fisher_exact(12, 20, 11, 20))
    assert table.loc[0.001, "Fisher p"] == 1
    assert table.loc[0.01, "detectable"] == pytest.approx(helpers.fisher_detectable(0.6, 20, 20))
    widest = helpers.widest_difference(counts, 0.01)
    assert (widest["worst"], widest["best"]) == (128, 2048)
    assert widest["p"] == pytest.approx(table.loc[0.01, "Fisher p"])
    # every batch size failing alike: no worst and no best
    assert helpers.widest_difference(counts, 0.001) == {"worst": None, "best": None, "p": 1.0}


def test_consistent_cells_skip_cells_with_diverged_runs():
    runs = _grid()
    at_128 = runs[runs.batch_size == 128]
    # a cell whose seeds split between collapsing and training has intervals spanning both, so
    # a trained run's numbers pass it too: the rule has no power there (chapter 03 says so)
    assert helpers.consistent_cells(at_128, 0.9, 0.3) == [0.001, 0.01]
    assert helpers.consistent_cells(at_128[at_128.outcome == "trained"], 0.1135, 2.3) == []
    at_2048 = runs[runs.batch_size == 2048]
    # a cell with a diverged run gets no verdict: it is neither consistent nor inconsistent
    assert helpers.consistent_cells(at_2048, 0.9, 0.3) == [0.001]
    assert helpers.consistent_cells(at_2048, 0.5, 5.0) == []
    assert helpers.untested_cells(at_2048) == [0.01] and helpers.untested_cells(at_128) == []
    from mnist_report.collapse import cell_consistent
    assert cell_consistent(at_2048[at_2048.learning_rate == 0.01], 0.9, 0.3) is None
    assert cell_consistent(at_2048[at_2048.learning_rate == 0.001], 0.5, 5.0) is False
    assert cell_consistent(at_128.head(1), 0.9, 0.3) is None  # one run predicts nothing


def test_closest_cell_reports_its_intervals_and_non_finite_losses():
    runs = _grid()
    at_2048 = runs[runs.batch_size == 2048]
    near = helpers.closest_cell(at_2048, 0.9, 0.3)
    assert near["learning_rate"] == 0.001 and near["consistent"] and near["seeds"] == 20
    low, high = near["accuracy_range"]
    assert low < 0.9 < high and near["non_finite_losses"] == 0
    far = helpers.closest_cell(at_2048[at_2048.learning_rate == 0.01], 0.9, 0.3)
    assert far["non_finite_losses"] == 11 and far["consistent"] is None  # no verdict
