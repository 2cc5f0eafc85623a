"""The earlier search (mnist_report/search.py): the programs it screens, their recipes, the
ranking by distance to the student's numbers and the confirmation verdicts, on fake runs."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import helpers
from mnist_report import search

TARGETS = {128: (0.1263, 2.3577), 2048: (0.9206, 0.2843)}


def test_the_screen_crosses_programs_activations_inputs_and_optimizers():
    full = search.screened_programs()
    assert len(full) == (1 + 2) * 2 * len(search.OPTIMIZERS)  # 36 programs
    assert not full.duplicated().any() and list(full.columns) == search.CONFIG
    assert len(search.screened_programs(smoke=True)) == 4


def test_a_program_is_the_example_at_keras_defaults_on_all_training_images():
    row = SimpleNamespace(program="TF 2 quickstart", activation="sigmoid", inputs="raw",
                          optimizer="Adadelta (Keras 2)")
    net, recipe = search.program(row, 2048, 5, (1, 2, 5))
    assert net.kwargs == {"hidden": (128,), "dropout": 0.2, "activation": "sigmoid"}
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size, recipe.epochs) == (
        "adadelta", 1.0, 2048, 5)
    assert recipe.all_train and not recipe.scale and recipe.snapshots == (1, 2, 5)


def _fake_run(row, bs, seed, epochs):
    acc = 0.9 if row.optimizer == "Adam" else 0.12
    noise = np.random.default_rng(seed).normal(0, 0.005, 2)
    loss = 2.3 - 2 * (acc - 0.12) + noise[1]
    snaps = {e: {"test_accuracy": acc + noise[0], "test_loss": loss, "seconds": e}
             for e in epochs}
    return SimpleNamespace(snapshots=snaps, diverged_at=None, test_accuracy=acc + noise[0],
                           test_loss=loss, train_seconds=1.0)


def test_runs_are_ranked_by_distance_and_confirmed_with_prediction_intervals(monkeypatch):
    rows = search.screened_programs(smoke=True)
    calls = []

    def fake_train_many(specs, desc=""):
        calls.append(desc)
        out = []
        for _, recipe, seed in specs:
            row = SimpleNamespace(optimizer="Adam" if recipe.optimizer == "adam" else "SGD")
            epochs = recipe.snapshots or (recipe.epochs,)
            out.append(_fake_run(row, recipe.batch_size, seed, epochs))
        return out

    monkeypatch.setattr("mnist_report.training.train_many", fake_train_many)
    screen = search.run_programs(rows, [0, 1], (128, 2048), (1, 2))
    assert len(screen) == len(rows) * 2 * 2 * 2  # programs x batch sizes x seeds x snapshots
    means = search.with_distance(screen.groupby(search.CONFIG + ["batch_size", "epochs"],
                                                as_index=False)[["test_accuracy",
                                                                 "test_loss"]].mean(), TARGETS)
    top = search.closest(means, 2048, 1).iloc[0]
    assert top.optimizer == "Adam"
    assert top.distance == means[means.batch_size == 2048].distance.min()
    assert search.closest(means, 128, 1).iloc[0].optimizer == "SGD"
    pair = search.closest_pairs(means, (128, 2048), 1).iloc[0]
    assert pair[2048] >= 0 and pair["pair"] == max(pair[128], pair[2048])
    # a program without a distance at one batch size (it diverged there) ranks last
    broken = means.copy()
    broken.loc[(broken.optimizer == pair.optimizer) & (broken.batch_size == 2048),
               "distance"] = np.nan
    pairs = search.closest_pairs(broken, (128, 2048), 4)
    assert pairs.iloc[-1].optimizer == pair.optimizer and np.isnan(pairs.iloc[-1]["pair"])

    low = search.closest(means, 128, 1).iloc[0]
    todo = pd.DataFrame([{**top[search.CONFIG].to_dict(), "batch_size": 2048, "epochs": 2},
                         {**low[search.CONFIG].to_dict(), "batch_size": 128, "epochs": 1}])
    keys, runs, confirmed = search.confirm(todo, range(10))
    assert len(runs) == 20 and calls[-1] == "confirmations"
    verdicts = search.verdict_rows(confirmed, TARGETS)
    assert list(verdicts.batch_size) == [128, 2048]
    row = verdicts[verdicts.batch_size == 2048].iloc[0]
    assert row.accuracy_low < row.test_accuracy < row.accuracy_high and 0 <= row.p <= 1
    assert not row.consistent  # about 90 % against 92.06 %: outside the prediction interval
    assert 0 < row.p < 0.05
    assert search.verdict_of(verdicts, row, 2048).equals(row)
    record = search.record(row)
    assert record["configuration"]["epochs"] == 2 and record["seeds"] == 10
    mine = search.runs_of(keys, runs, row)
    assert len(mine) == 10 and all(key.optimizer == "Adam" for key, _ in mine)


def test_estimate_text_gives_both_intervals():
    row = SimpleNamespace(test_accuracy=0.9204, accuracy_low=0.9154, accuracy_high=0.9254,
                          test_loss=0.2828, loss_low=0.27, loss_high=0.2955)
    assert helpers.estimate_text(row) == (
        "92.04 % [91.54 %, 92.54 %], loss 0.2828 [0.2700, 0.2955]")


def test_extend_until_bracketed_steps_out_by_a_factor_three():
    peak = 0.01

    def train(rates):
        return {lr: [SimpleNamespace(val_accuracy=1 - abs(np.log(lr / peak)))] * 2
                for lr in rates}

    results = helpers.extend_until_bracketed(train, [1e-3, 3e-3])
    assert sorted(results) == [1e-3, 3e-3, 9e-3, 3e-2]
    assert sorted(helpers.extend_until_bracketed(train, [1e-3, 3e-3], extend=False)) == [
        1e-3, 3e-3]
    assert max(results, key=lambda lr: results[lr][0].val_accuracy) == pytest.approx(9e-3)
