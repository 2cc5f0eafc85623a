"""Chapter 04's analyses (mnist_report/climb.py) on fake runs whose answers are worked by hand."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mnist_report import climb, stats


def run(seed=0, acc=0.99, loss=0.03, val=0.988, proba=None, predictions=None, **extra):
    return SimpleNamespace(seed=seed, test_accuracy=acc, test_loss=loss, val_accuracy=val,
                           n_params=100, images_seen=1000, train_seconds=2.0 + seed,
                           epochs_run=1, test_proba=proba, test_predictions=predictions,
                           snapshots=extra.pop("snapshots", {}), **extra)


def test_reproduction_table_uses_the_calibrated_rule_and_sorts_by_distance():
    near = [run(s, 0.9935 + 0.0002 * (s - 2), 0.022 + 0.0004 * (s - 2)) for s in range(5)]
    far = [run(s, 0.990 + 0.0001 * s, 0.030 + 0.0002 * s) for s in range(5)]
    table = climb.reproduction_table({"far": far, "near": near}, 0.9936, 0.0219)
    assert list(table.index) == ["near", "far"]
    expected = stats.reproduction_test([r.test_accuracy for r in near],
                                       [r.test_loss for r in near], 0.9936, 0.0219)
    assert table.loc["near", "p"] == pytest.approx(expected["p"])
    assert table.loc["near", "reproduced"] and not table.loc["far", "reproduced"]
    assert table.loc["near", "accuracy_low"] == pytest.approx(expected["accuracy_interval"][0])
    assert table.loc["far", "train_seconds"] == pytest.approx(4.0)


def test_snapshot_table_and_loss_turns():
    runs = {"a": [run(s, snapshots={1: {"test_loss": 0.05}, 2: {"test_loss": 0.03 + s * 0.002},
                                    3: {"test_loss": 0.04}}) for s in range(2)]}
    curves = climb.snapshot_table(runs)
    assert len(curves) == 6 and set(curves.columns) == {"program", "seed", "epoch", "test_loss"}
    turns = climb.loss_turns(curves)
    assert turns["a"]["best_epoch"] == 2
    assert turns["a"]["rise"] == pytest.approx(0.04 - 0.031)


def test_climb_configs_applies_each_change_to_the_row_above():
    class Thing(dict):
        def replace(self, **changes):
            return Thing({**self, **changes})

    configs = climb.climb_configs(Thing(a=1), Thing(lr=1), [
        ("base", {}, {}), ("+ b", {"b": 2}, {}), ("+ schedule", {}, {"lr": 3})])
    assert configs["+ schedule"] == (Thing(a=1, b=2), Thing(lr=3))
    assert configs["base"] == (Thing(a=1), Thing(lr=1))


def test_paired_gains_pair_each_row_with_the_row_above_by_seed():
    runs = pd.DataFrame([{"model": m, "seed": s, "val_accuracy": base + s * 0.01 + d}
                         for s in range(3) for m, base, d in
                         (("r0", 0.9, 0), ("r1", 0.9, 0.01 + 0.001 * s), ("r2", 0.95, 0))])
    gains = climb.paired_gains(runs, "val_accuracy", ["r0", "r1", "r2"])
    assert list(gains.index) == ["r1", "r2"]
    assert gains.loc["r1"].tolist() == pytest.approx(list(stats.mean_ci([0.01, 0.011, 0.012])))
    assert gains.loc["r2", "gain"] == pytest.approx(0.05 - 0.011)
    assert climb.reading(*gains.loc["r1", ["low", "high"]]) == "a gain"
    assert climb.reading(-0.2, -0.1) == "a loss" and climb.reading(-0.1, 0.1) == (
        "within seed noise")


def test_ensembles_average_probabilities_and_cover_every_subset():
    labels = np.array([0, 1, 1])
    a = run(0, proba=np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]))
    b = run(1, proba=np.array([[0.6, 0.4], [0.3, 0.7], [0.45, 0.55]]))
    draws = climb.subset_ensembles([a, b], labels)
    assert draws.groupby("members").size().to_dict() == {1: 2, 2: 1}
    assert draws.test_accuracy.tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    summary = climb.ensemble_summary({"one": [a], "both": [a, b]}, None, None, labels,
                                     lambda runs, x, y: len(runs) / 10)
    assert summary["name"] == "both" and summary["accuracy"] == 1.0
    assert summary["ci"] == pytest.approx(stats.clopper_pearson(3, 3))


def test_budget_outlook_extrapolates_a_power_law_through_the_last_two_budgets():
    by_budget = pd.Series({1: 0.98, 15: 0.995, 30: 0.996})  # error 0.5 % -> 0.4 %
    out = climb.budget_outlook(by_budget, 0.997)
    k = np.log(0.005 / 0.004) / np.log(2)
    assert out["k"] == pytest.approx(k)
    assert out["needed"] == pytest.approx(30 * (0.004 / 0.003) ** (1 / k))
    assert out["status"] == "extrapolated"
    assert climb.budget_outlook(by_budget, 0.995)["status"] == "reached"
    assert climb.budget_outlook(pd.Series({1: 0.9, 2: 0.99, 4: 0.98}), 0.999)["status"] == (
        "stalled")


class Recipe(dict):
    def replace(self, **changes):
        return Recipe({**self, **changes})


def fake_train(scores):
    """A train(net, recipe, seed) whose validation accuracy is looked up by (net, batch, epochs)."""
    calls = []

    def train(net, recipe, seed):
        calls.append((net, recipe["batch_size"], recipe["epochs"], seed))
        val = scores[(net, recipe["batch_size"], recipe["epochs"])] - 0.001 * seed
        return SimpleNamespace(val_accuracy=val, test_accuracy=val + 0.002,
                               train_seconds=recipe["epochs"] * recipe["batch_size"] / 256,
                               images_seen=recipe["epochs"] * 100)
    return train, calls


def test_screen_then_first_confirmed_trains_only_up_to_the_first_confirmed_candidate():
    scores = {("n", 256, 1): 0.9905, ("n", 256, 2): 0.992, ("n", 512, 1): 0.95,
              ("n", 512, 2): 0.97}
    train, calls = fake_train(scores)
    grid = [("n", b, 1e-2, e) for b in (256, 512) for e in (1, 2)]
    screen = climb.screen_configs(train, {"n": "n"}, Recipe(batch_size=0, epochs=0), grid, 0)
    assert screen.val_accuracy.tolist() == pytest.approx([0.9905, 0.992, 0.95, 0.97])
    assert climb.best_per_group(screen).batch.tolist() == [256]  # best at the longest budget
    calls.clear()
    row, runs, confirmed = climb.first_confirmed(screen, train, {"n": "n"}, Recipe(), [0, 1, 2],
                                                 0.99)
    # 256 x 1 epoch is quickest but its seeds average 0.9895 < 0.99; 256 x 2 is confirmed
    assert (row.batch, row.epochs, confirmed) == (256, 2, True)
    assert len(calls) == 6 and len(runs) == 3
    with pytest.raises(ValueError, match="no screened configuration"):
        climb.first_confirmed(screen, train, {"n": "n"}, Recipe(), [0, 1, 2], 0.999)
    row, runs, confirmed = climb.first_confirmed(screen, train, {"n": "n"}, Recipe(), [0],
                                                 0.999, fallback=True)
    assert (row.batch, row.epochs, confirmed) == (256, 2, False)


def test_permutation_effects_are_paired_by_seed():
    acc = {("MLP", "original"): [0.98, 0.981, 0.982], ("MLP", "permuted"): [0.98, 0.98, 0.983],
           ("CNN", "original"): [0.99, 0.991, 0.989], ("CNN", "permuted"): [0.96, 0.962, 0.961]}
    table = pd.DataFrame([{"model": m, "pixels": p, "seed": s, "test_accuracy": a}
                          for (m, p), values in acc.items() for s, a in enumerate(values)])
    effects = climb.permutation_effects(table)
    drop_cnn = np.subtract(acc["CNN", "original"], acc["CNN", "permuted"])
    drop_mlp = np.subtract(acc["MLP", "original"], acc["MLP", "permuted"])
    assert effects["drop_CNN"] == pytest.approx(stats.mean_ci(drop_cnn))
    assert effects["difference"] == pytest.approx(stats.mean_ci(drop_cnn - drop_mlp))
    assert effects["permuted_gap"][0] == pytest.approx(np.mean(
        np.subtract(acc["CNN", "permuted"], acc["MLP", "permuted"])))


def test_group_and_level_tables_have_one_row_per_run_and_level():
    groups = {("MLP", "original"): [run(0), run(1)], ("CNN", "original"): [run(0)]}
    table = climb.group_table(groups)
    assert len(table) == 3 and table.model.tolist() == ["MLP", "MLP", "CNN"]
    levels = climb.level_table({"m": [run(0), run(1)]}, lambda r, label: [0.9, 0.8 - r.seed],
                               (0, 2), "shift")
    assert table.columns[:2].tolist() == ["model", "pixels"]
    assert levels[levels.seed == 1].test_accuracy.tolist() == pytest.approx([0.9, -0.2])


def test_missed_by_all_and_the_headline_record():
    labels = np.array([0, 1, 2])
    runs = [run(0, predictions=np.array([1, 1, 2])), run(1, predictions=np.array([1, 0, 2]))]
    assert climb.missed_by_all(runs, labels).tolist() == [True, False, False]
    runs = [run(s, acc=a, net="net", recipe=SimpleNamespace(epochs=3, batch_size=64))
            for s, a in enumerate((0.99, 0.992, 0.991))]
    record = climb.seeds_record(runs, "best", lambda net, recipe, seeds: {"seeds": seeds})
    assert record["recipe"] == {"seeds": [0, 1, 2]} and record["seeds"] == 3
    assert [record["test_accuracy_mean"], *record["ci95"]] == pytest.approx(
        list(stats.mean_ci([0.99, 0.992, 0.991])))
    assert (record["epochs"], record["batch_size"]) == (3, 64)


def test_climb_record_keys_rows_by_budget_and_gives_gains_past_the_first_row():
    climb_means = pd.DataFrame({"val_accuracy": [0.99, 0.995, 0.98, 0.985]},
                               index=pd.MultiIndex.from_tuples(
                                   [(15, "r0"), (15, "r1"), (1, "r0"), (1, "r1")],
                                   names=["epochs", "model"]))
    gain = pd.DataFrame({"gain": [0.005], "low": [0.001], "high": [0.009]}, index=["r1"])
    gains = {(e, m): gain for e in (15, 1) for m in ("val_accuracy", "test_accuracy")}
    record = climb.climb_record(climb_means, gains, ["r0", "r1"], 3)
    assert list(record) == ["r0 | 15 epochs", "r1 | 15 epochs", "r0 | 1 epochs",
                            "r1 | 1 epochs"]
    assert "val_gain_ci95" not in record["r0 | 15 epochs"]
    assert record["r1 | 1 epochs"]["test_gain_ci95"] == [0.005, 0.001, 0.009]
    assert record["r1 | 15 epochs"]["val_accuracy"] == 0.995


def test_the_published_table_reads_the_last_epoch_and_where_a_log_shows_test_the_best():
    def run(curve):
        snaps = {e: {"test_accuracy": a} for e, a in enumerate(curve, 1)}
        return SimpleNamespace(test_accuracy=curve[-1], snapshots=snaps,
                               recipe=SimpleNamespace(epochs=len(curve)))

    runs = [run([0.98, 0.992 + d, 0.990 + d]) for d in (0.0, 0.0004, 0.0008, 0.0002, 0.0006)]
    table = climb.published_table({"a": runs, "b": runs}, {"a": 0.9922, "b": 0.9922},
                                  log_reports_test=["a"])
    a, b = table.loc["a"], table.loc["b"]
    assert a.final == pytest.approx(0.9904) and a.best_epoch == pytest.approx(0.9924)
    assert a.epochs == 3 and a.seeds == 5 and a.final_low < a.final < a.final_high
    assert a.final_p < 0.05 < a.best_epoch_p  # 99.22 % is no last epoch's, but a best epoch's
    assert np.isnan(b.best_epoch) and np.isnan(b.best_epoch_p) and b.final_p == a.final_p
