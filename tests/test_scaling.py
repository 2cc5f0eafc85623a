"""Batch-size scaling analyses (mnist_report/scaling.py), on runs and tables built by hand."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import helpers


def _run(curve, snapshots=None, diverged_at=None):
    return SimpleNamespace(curve=curve, snapshots=snapshots or {}, diverged_at=diverged_at)


def test_steps_to_interpolates_the_first_crossing_in_log_steps():
    curve = [{"step": 10, "val_accuracy": 0.5, "seconds": 1.0},
             {"step": 40, "val_accuracy": 0.9, "seconds": 4.0},
             {"step": 160, "val_accuracy": 0.95, "seconds": 16.0}]
    assert helpers.steps_to(curve, 0.7) == pytest.approx(20.0)  # halfway in log(step)
    assert helpers.steps_to(curve, 0.7, key="seconds") == pytest.approx(2.0)
    assert helpers.steps_to(curve, 0.4) == 10.0  # already there at the first point
    assert np.isnan(helpers.steps_to(curve, 0.99))


def test_the_steps_model_fit_recovers_its_parameters():
    batches = np.array([16, 64, 256, 1024, 4096], float)
    steps = helpers.steps_model(batches, 120.0, 700.0)
    assert helpers.fit_steps_model(batches, steps) == pytest.approx((120.0, 700.0), rel=1e-4)
    assert all(np.isnan(helpers.fit_steps_model(batches[:2], steps[:2])))


def test_two_regimes_finds_the_break_between_linear_scaling_and_a_constant_rate():
    batches = [2**k for k in range(4, 14)]
    best = [0.01 * min(b, 512) / 16 for b in batches]  # doubles with the batch to 512, then flat
    fit = helpers.two_regimes(batches, best)
    assert fit["break"] == 512
    assert (fit["small"], fit["large"]) == pytest.approx((1.0, 0.0), abs=1e-9)
    assert np.isnan(helpers.two_regimes(batches[:4], best[:4])["break"])


def test_next_learning_rates_extend_an_edge_and_split_towards_a_diverged_neighbour():
    assert helpers.next_learning_rates({0.01: 0.8, 0.04: 0.9}, bad=()) == [0.16]
    assert helpers.next_learning_rates({0.01: 0.9, 0.04: 0.8}, bad=()) == [0.0025]
    assert helpers.next_learning_rates({0.01: 0.8, 0.04: 0.9, 0.16: 0.1}, bad={0.16}) == [0.08]
    assert helpers.next_learning_rates({0.01: 0.8, 0.04: 0.9, 0.16: 0.85}, bad=()) == []


def test_optimum_reads_the_best_rate_and_whether_it_is_bracketed():
    table = pd.DataFrame({"learning_rate": [0.01, 0.01, 0.04, 0.04, 0.16, 0.16],
                          "val_accuracy": [0.90, 0.92, 0.95, 0.96, 0.93, 0.94],
                          "diverged": [False, False, False, False, False, True]})
    best = helpers.optimum(table)
    assert (best["best_lr"], best["low"], best["high"]) == (0.04, 0.01, 0.16)
    assert best["bracketed"] is False  # a seed diverged at the upper neighbour
    assert helpers.optimum(table.assign(diverged=False))["bracketed"] is True


def test_a_run_diverges_by_a_non_finite_loss_an_explosion_or_a_worse_validation_loss():
    curve = [{"step": 1, "train_loss": 2.3}, {"step": 8, "train_loss": 1.0}]
    fine = _run(curve, {8: {"val_loss": 0.9}})
    assert not helpers.diverged(fine, 8, initial_loss=2.3)
    assert helpers.diverged(_run(curve, {8: {"val_loss": 0.9}}, diverged_at=5), 8, 2.3)
    exploding = _run([{"step": 2, "train_loss": 4.0}], {8: {"val_loss": 0.9}})
    assert helpers.diverged(exploding, 8, 2.3) and not helpers.diverged(exploding, 8, 2.3, 2.0)
    assert helpers.diverged(_run(curve, {8: {"val_loss": 2.5}}), 8, 2.3)


def test_seconds_per_epoch_from_the_curve():
    run = _run([{"step": 10, "seconds": 1.0}, {"step": 110, "seconds": 11.0}])
    assert helpers.seconds_per_epoch(run, n_train=1000, batch_size=10) == pytest.approx(10.0)
    assert np.isnan(helpers.seconds_per_epoch(_run(run.curve, diverged_at=50), 1000, 10))


def test_grid_around_takes_the_nearest_value_and_its_neighbours():
    grid = [1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2]
    assert helpers.grid_around(grid, 1.2e-3) == {3.16e-4, 1e-3, 3.16e-3}
    assert helpers.grid_around(grid, 1e-5) == {1e-4, 3.16e-4}  # at the edge: one side only


def test_tune_until_bracketed_extends_the_grid_past_an_edge_holding_the_best():
    grid = [0.001, 0.003, 0.01, 0.03, 0.1]
    best = {128: 0.03, 2048: 0.003}  # validation accuracy peaks here, per batch size
    calls = []

    def train(todo):
        calls.append(list(todo))
        return [SimpleNamespace(val_accuracy=1 - abs(np.log(lr / best[bs]))) for bs, lr in todo]

    tuning = helpers.tune_until_bracketed(train, {128: {0.003, 0.01}, 2048: {0.003, 0.01}}, grid)
    assert sorted(lr for bs, lr in tuning if bs == 128) == [0.003, 0.01, 0.03, 0.1]
    assert sorted(lr for bs, lr in tuning if bs == 2048) == [0.001, 0.003, 0.01]
    assert calls[0] == [(128, 0.003), (128, 0.01), (2048, 0.003), (2048, 0.01)]
    scores = {lr: r.val_accuracy for (bs, lr), r in tuning.items() if bs == 128}
    assert helpers.strictly_bracketed(scores, 0.03)
    assert not helpers.strictly_bracketed(scores, 0.1) and not helpers.strictly_bracketed(
        {0.01: 0.9, 0.03: 0.95, 0.1: 0.95}, 0.03)  # a tie is not strictly worse
    fixed = helpers.tune_until_bracketed(train, {128: {0.003, 0.01}}, grid, extend=False)
    assert sorted(lr for _, lr in fixed) == [0.003, 0.01]


def test_a_rate_tied_for_best_at_an_edge_extends_the_grid_and_the_smaller_is_chosen():
    grid = [0.001, 0.003, 0.01, 0.03, 0.1]
    scores = {0.001: 0.90, 0.003: 0.95, 0.01: 0.95, 0.03: 0.93, 0.1: 0.80}

    def train(todo):
        return [SimpleNamespace(val_accuracy=scores[lr]) for _, lr in todo]

    tuning = helpers.tune_until_bracketed(train, {16: {0.003, 0.01}}, grid)
    assert sorted(lr for _, lr in tuning) == [0.001, 0.003, 0.01, 0.03]  # both edges extended
    assert helpers.best_rate({lr: r.val_accuracy for (_, lr), r in tuning.items()}) == 0.003
    assert not helpers.strictly_bracketed({lr: scores[lr] for lr in (0.001, 0.003, 0.01)}, 0.003)



def test_tune_until_bracketed_with_seeds_judges_each_rate_by_its_mean_over_seeds():
    grid = [0.001, 0.003, 0.01, 0.03]
    calls = []

    def train(todo):  # seed 0 prefers 0.01 alone; the mean over two seeds prefers 0.003
        calls.append(list(todo))
        return [SimpleNamespace(val_accuracy={0.001: 0.90, 0.003: 0.95, 0.01: 0.96 if s == 0
                                              else 0.90, 0.03: 0.80}[lr], epochs_run=10 + s)
                for _, lr, s in todo]

    tuning = helpers.tune_until_bracketed(train, {16: {0.003, 0.01}}, grid, seeds=[0, 1])
    assert calls[0] == [(16, 0.003, 0), (16, 0.003, 1), (16, 0.01, 0), (16, 0.01, 1)]
    assert calls[1] == [(16, 0.001, 0), (16, 0.001, 1)]  # 0.003 at the lower edge: extended
    assert len(calls) == 2 and all(len(runs) == 2 for runs in tuning.values())
    table = helpers.tuning_table(tuning).set_index("learning_rate")
    assert table.val_accuracy.to_dict() == pytest.approx({0.001: 0.90, 0.003: 0.95, 0.01: 0.93})
    assert table.seeds.tolist() == [2, 2, 2] and table.epochs_run.tolist() == [10.5] * 3
    assert helpers.best_rate(table.val_accuracy.to_dict()) == 0.003
    with pytest.raises(ValueError, match="runs for"):
        helpers.tune_until_bracketed(lambda todo: train(todo)[:1], {16: {0.01}}, grid, seeds=[0, 1])

def _sweep_run(bs, lr, seed, steps):
    """A fake sweep run: validation accuracy peaks at lr = bs / 1000; above 4x that it diverges."""
    acc = max(0.0, 0.95 - 0.1 * abs(np.log2(lr * 1000 / bs)))
    snaps = {s: {"val_accuracy": acc, "val_loss": 0.2 if lr < 4 * bs / 1000 else 9.0,
                 "train_accuracy": acc, "test_accuracy": acc, "train_loss": 0.2,
                 "test_loss": 0.2, "seconds": 0.01 * s} for s in steps}
    return SimpleNamespace(seed=seed, snapshots=snaps, diverged_at=None,
                           curve=[{"step": s, "train_loss": 0.2} for s in steps])


def test_refine_sweep_adds_rates_until_each_optimum_is_bracketed_and_tables_its_budgets():
    budgets = {"epochs": lambda bs: 4096 // bs, "steps": lambda bs: 16}
    recipe = helpers.Recipe(batch_size=16, steps=16, optimizer="sgd")
    specs = helpers.budget_specs("net", recipe, [(64, 0.1, 0)], budgets)
    assert specs[0][1].snapshots == (16, 64) and specs[0][1].steps == 64  # sorted by Recipe
    assert (specs[0][1].batch_size, specs[0][1].learning_rate, specs[0][2]) == (64, 0.1, 0)

    def train(todo):
        return [_sweep_run(bs, lr, seed, (budgets["epochs"](bs), 16)) for bs, lr, seed in todo]

    initial = {0: 2.3, 1: 2.3}
    sweep = helpers.refine_sweep(train, [64, 256], [0.0625, 1.0], [0, 1], budgets, initial,
                                 rounds=4)
    for bs in (64, 256):
        rates = sorted({lr for b, lr, _ in sweep if b == bs})
        best = max(rates, key=lambda lr: sweep[bs, lr, 0].snapshots[16]["val_accuracy"])
        assert rates[0] < best < rates[-1]  # bracketed on both sides
    assert {s for _, _, s in sweep} == {0, 1}
    table = helpers.budget_table(sweep, budgets, 4096, initial)
    assert len(table) == 2 * len(sweep) and set(table.budget) == {"epochs", "steps"}
    row = table[(table.budget == "epochs") & (table.batch_size == 256)].iloc[0]
    assert (row.steps, row.images, row.epochs) == (16, 4096, 1.0)
    diverging = table.learning_rate >= 4 * table.batch_size / 1000
    assert diverging.any() and table[diverging].diverged.all()  # 1.0 diverges at batch 64
    assert not table[~diverging].diverged.any()
    none = helpers.refine_sweep(train, [64], [0.0625], [0], budgets, initial, rounds=0)
    assert len(none) == 1


def test_convergence_tables_give_the_best_epoch_and_the_cost_to_reach_it():
    def run(bs, seed, best_epoch, epochs_run):
        history = {"val_accuracy": [0.9] * epochs_run}
        history["val_accuracy"][best_epoch - 1] = 0.95
        return SimpleNamespace(recipe=SimpleNamespace(batch_size=bs, learning_rate=bs / 1e5),
                               seed=seed, test_accuracy=0.97 + 0.001 * seed, test_loss=0.1,
                               history=history, epochs_run=epochs_run,
                               images_seen=1000 * epochs_run, train_seconds=2.0 * epochs_run)

    conv = helpers.convergence_runs([run(128, s, 5, 15) for s in range(3)]
                                    + [run(2048, s, 20, 100) for s in range(3)], max_epochs=100)
    assert list(conv.images_to_best[:1]) == [5000] and conv.seconds_to_best.iloc[0] == 10.0
    assert conv.stopped_early.tolist() == [True] * 3 + [False] * 3
    summary = helpers.convergence_summary(conv)
    assert summary.loc[128, "test_accuracy"] == pytest.approx(0.971)
    low, high = summary.loc[128, ["ci_low", "ci_high"]]
    assert low < 0.971 < high and summary.loc[2048, "stopped_early"] == 0
    assert summary.loc[2048, "best_epoch"] == 20 and summary.loc[2048, "learning_rate"] == 0.02048


def test_budget_tables_choose_on_validation_and_find_the_rate_cap():
    rows = [{"budget": b, "batch_size": bs, "learning_rate": lr, "seed": s,
             "val_accuracy": 0.9 - abs(np.log2(lr / min(bs / 1000, 0.5))) / 10 + 0.001 * s,
             "test_accuracy": 0.9 + 0.001 * s, "diverged": False}
            for b in ("epochs", "steps") for bs in (16, 64, 256, 1024, 4096, 16384)
            for lr in (0.004, 0.016, 0.064, 0.25, 0.5, 1.0, 4.0) for s in range(2)]
    table = pd.DataFrame(rows)
    chosen = helpers.chosen_runs(table)
    assert len(chosen) == 2 * 6 * 2  # one rate per budget and batch size, every seed
    best = helpers.best_per_budget(chosen)
    assert best.loc[("epochs", 64), "learning_rate"] == 0.064 and best.seeds.eq(2).all()
    assert best.loc[("epochs", 64), "test_accuracy"] == pytest.approx(0.9005)
    rule, regimes = helpers.learning_rate_rule(table)
    assert rule.loc[("epochs", 256), "best_lr"] == 0.25 and set(regimes) == {"epochs", "steps"}
    cap, cap_from = helpers.rate_cap(rule.loc["epochs"].best_lr, {"break": 1024})
    assert (cap, cap_from) == (0.5, 1024)
    rates = pd.Series([0.1, 0.5, 1.0, 0.25, 0.25], index=[256, 1024, 2048, 4096, 8192])
    # four rates past the break: the lower median 0.25 (a tried rate), not 0.375
    assert helpers.rate_cap(rates, {"break": 1024}) == (0.25, 1024)
    cap_all, _ = helpers.rate_cap(rule.loc["epochs"].best_lr, {"break": float("nan")})
    best_lrs = np.sort(rule.loc["epochs"].best_lr.to_numpy())
    assert cap_all == best_lrs[(len(best_lrs) - 1) // 2]  # no break: every batch size counts


def test_fastest_to_target_needs_every_seed_to_get_there():
    def run(steps_to_95):
        curve = [{"step": s, "val_accuracy": 0.95 if s >= steps_to_95 else 0.5, "seconds": s / 10}
                 for s in (10, 20, 40, 80, 160)]
        return SimpleNamespace(curve=curve)

    sweep = {(64, 0.1, 0): run(40), (64, 0.1, 1): run(40), (64, 0.4, 0): run(20),
             (64, 0.4, 1): run(1000)}  # 0.4 is faster for seed 0 but seed 1 never arrives
    table = helpers.fastest_to_target(sweep, 0.9)
    assert table.loc[64, "learning_rate"] == 0.1
    assert 20 < table.loc[64, "steps_mean"] < 40  # interpolated in log steps
    assert table.loc[64, "seconds_mean"] == pytest.approx(table.loc[64, "steps_mean"] / 10)
