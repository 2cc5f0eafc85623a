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
