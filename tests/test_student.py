"""The student's programs as recipes (mnist_report/student.py)."""

import numpy as np
import pandas as pd
import pytest

import helpers
from mnist_report import student


def test_the_recorded_numbers_are_the_write_ups_rounded():
    assert set(student.RECORDED) == set(helpers.STUDENT)
    for key, recorded in student.RECORDED.items():
        assert round(recorded["accuracy"], 4) == helpers.STUDENT[key]["accuracy"]
        assert round(recorded["loss"], 4) == helpers.STUDENT[key]["loss"]


def test_the_programs_are_the_students_files():
    net, recipe = student.dense_program(batch_size=128)
    assert net.kwargs == {"hidden": (64,)} and net.make().count_params() == 50_890
    assert (recipe.optimizer, recipe.learning_rate, recipe.split) == ("rmsprop", 1e-3, "student")
    assert recipe.snapshots == tuple(range(101)) and recipe.batch_size == 128
    net, recipe = student.cnn_program()
    assert net.name == "student_cnn" and not recipe.flatten and recipe.batch_size == 2048
    assert student.dense_program(scale=False)[1].scale is False  # a candidate edit
    assert [row["file"] for row in student.provenance_rows()] == [
        "README.md", "mnist.py", "mnistcnn.py", "requirements.txt"]


@pytest.mark.parametrize("program", [student.dense_program, student.cnn_program])
def test_a_short_run_of_each_program_trains_on_the_students_split(program, tmp_path, configured):
    configured(cache=tmp_path / "cache")
    net, recipe = program(batch_size=64, epochs=2, n_train=256, n_eval=200)
    run = helpers.train(net, recipe, seed=0)
    assert sorted(run.snapshots) == [0, 1, 2] and run.images_seen == 2 * 256
    assert set(run.snapshots[2]) >= {"val_accuracy", "test_accuracy", "val_loss", "test_loss"}


def test_every_dense_edit_with_runs_builds_a_program_that_differs_from_the_committed_one():
    committed = student.dense_program(128)
    for edit in student.DENSE_EDITS[1:]:
        if edit.runs:
            net, recipe = student.dense_edit(edit.name, 128)
            assert (net, recipe) != committed and recipe.batch_size == 128, edit.name
        else:
            with pytest.raises(ValueError, match="needs no runs"):
                student.dense_edit(edit.name, 128)
    net, recipe = student.dense_edit("Dense(256) active", 2048)
    assert net.kwargs["hidden"] == (256, 64) and recipe.batch_size == 2048
    assert student.dense_edit("test pixels unscaled", 128)[1].raw_pixels == ("test",)


def test_snapshot_0_is_the_untrained_network_and_raw_pixels_reach_only_their_part(
        tmp_path, configured):
    configured(cache=tmp_path / "cache")
    net, recipe = student.dense_program(batch_size=64, epochs=1, n_train=128, n_eval=100)
    run = helpers.train(net, recipe, seed=3)
    helpers.set_seed(3)  # the same seed gives the same initial weights
    untrained = net.make()
    split = helpers.mnist_split(flatten=True, split="student", n_train=128, n_eval=100)
    proba = untrained.predict(split["test"][0], verbose=0)
    assert run.snapshots[0]["test_accuracy"] == pytest.approx(
        (proba.argmax(1) == split["test"][1]).mean())
    raw = helpers.mnist_split(scale=("train", "val"), flatten=True, split="student", n_eval=100)
    assert raw["train"][0].max() == 1.0 and raw["test"][0].max() == 255.0


def _fake_run(accuracies, losses):
    from types import SimpleNamespace

    return SimpleNamespace(snapshots={e: {"val_accuracy": a, "val_loss": loss,
                                          "test_accuracy": a, "test_loss": loss} for e, (a, loss)
                                      in enumerate(zip(accuracies, losses, strict=True))})


def _noisy_runs(rng, programs, seeds=range(8)):
    """Fake runs per seed: programs map (edit, batch) to per-epoch means and SDs of accuracy and
    loss, (acc, acc_sd, loss, loss_sd); draws in the order seed, program, accuracy, loss."""
    runs = {}
    for seed in seeds:
        for (edit, batch), (acc, acc_sd, loss, loss_sd) in programs.items():
            runs[(edit, batch, seed)] = _fake_run(
                [m + rng.normal(0, sd) for m, sd in zip(acc, acc_sd, strict=True)],
                [m + rng.normal(0, sd) for m, sd in zip(loss, loss_sd, strict=True)])
    return runs


def test_runs_table_has_a_row_per_run_and_epoch():
    runs = {("as committed", 128, seed): _fake_run([0.1, 0.9], [2.3, 0.3]) for seed in range(3)}
    table = student.runs_table(runs)
    assert len(table) == 6 and list(table.columns[:6]) == list(student.RUN_COLUMNS)
    assert set(table.epoch) == {0, 1} and set(table.program) == {"mnist.py"}


def test_epoch_tests_find_the_epochs_whose_seed_distribution_holds_a_recorded_number():
    rng = np.random.default_rng(0)
    runs = {("as committed", 2048, seed): _fake_run(
        [0.10 + rng.normal(0, 0.01), 0.92 + rng.normal(0, 0.002), 0.97 + rng.normal(0, 0.002)],
        [2.30 + rng.normal(0, 0.01), 0.28 + rng.normal(0, 0.005), 0.10 + rng.normal(0, 0.005)])
        for seed in range(10)}
    tests = student.epoch_tests(student.runs_table(runs), {"accuracy": 0.92, "loss": 0.28})
    assert list(tests.epoch[tests.consistent]) == [1]
    assert (tests.runs == 10).all() and tests.p.between(0, 1).all()
    assert student.epoch_ranges(tests.epoch[tests.consistent]) == "1"
    assert student.epoch_ranges([]) == "none" and student.epoch_ranges([3, 4, 5, 8]) == "3–5, 8"


def test_outcome_tells_diverged_collapsed_and_trained_runs_apart():
    from types import SimpleNamespace

    labels = np.arange(100) % 10
    run = SimpleNamespace(diverged_at=None, test_loss=0.1, test_predictions=labels)
    assert helpers.outcome(run) == "trained"
    assert helpers.outcome(SimpleNamespace(**{**vars(run), "test_predictions": labels * 0})
                           ) == "collapsed"
    assert helpers.outcome(SimpleNamespace(**{**vars(run), "test_loss": float("nan")})
                           ) == "diverged"


def test_the_student_environment_pins_are_the_students_requirements():
    assert student.student_versions() == {"tensorflow-cpu": "2.17.0", "keras": "3.5.0",
                                          "numpy": "1.26.4", "scikit-learn": "1.5.1"}


def test_a_control_run_without_the_student_environment_says_how_to_build_it(
        tmp_path, configured, monkeypatch):
    configured(cache=tmp_path / "cache")
    monkeypatch.setattr(student, "STUDENT_VENV", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="make student-env"):
        student.control_run("dense", 2048, seed=0, environment="student", epochs=1)
    with pytest.raises(ValueError, match="environment"):
        student.control_run("dense", 2048, seed=0, environment="laptop")


def test_consistency_finds_the_epochs_for_each_number_and_for_both():
    runs = _noisy_runs(np.random.default_rng(1), {
        ("as committed", 128): ([0.13, 0.95], [0.01, 0.002], [2.36, 0.15], [0.01, 0.005]),
        ("as committed", 2048): ([0.10, 0.92], [0.01, 0.002], [2.30, 0.28], [0.01, 0.005])})
    recorded = {128: {"accuracy": 0.13, "loss": 2.36}, 2048: {"accuracy": 0.92, "loss": 0.28}}
    row = student.consistency(student.runs_table(runs), recorded).iloc[0]
    assert (row.epochs_128, row.epochs_2048, row.epochs_all) == ("0", "1", "none")
    assert row.best_epoch_128 == 0 and row.best_p_2048 > 0.05


def test_best_match_prefers_the_committed_program_and_falls_back_to_the_closest_edit():
    runs = _noisy_runs(np.random.default_rng(2), {
        ("as committed", 128): ([0.09, 0.95], [0.005, 0.002], [2.39, 0.15], [0.005, 0.005]),
        ("no pixel scaling", 128): ([0.90, 0.126], [0.01, 0.01], [0.35, 2.36], [0.01, 0.01])})
    table = student.runs_table(runs)
    match = student.best_match(table, {"accuracy": 0.1263, "loss": 2.3577}, 128)
    assert (match["edit"], match["epoch"], match["consistent"]) == ("no pixel scaling", 1, True)
    assert match["runs"] == 8 and match["candidates"] == 2 and match["epochs"] == "1"
    own = student.best_match(table, {"accuracy": 0.95, "loss": 0.15}, 128)
    assert (own["edit"], own["epoch"], own["consistent"]) == ("as committed", 1, True)


def test_the_untrained_signature_is_that_of_every_runs_epoch_0(tmp_path, configured):
    configured(cache=tmp_path / "cache")
    net, recipe = student.dense_program(batch_size=64, epochs=1, n_train=128, n_eval=100)
    run = helpers.train(net, recipe, seed=5)
    x, y = helpers.mnist_split(flatten=True, split="student", n_train=128, n_eval=100)["test"]
    signature = student.untrained_signature(5, x, y)
    assert signature["accuracy"] == pytest.approx(run.snapshots[0]["test_accuracy"])


def test_train_cnn_keys_its_runs_like_the_dense_ones(tmp_path, configured):
    configured(cache=tmp_path / "cache")
    runs = student.train_cnn([0], epochs=1, batch_size=64, n_train=128, n_eval=100)
    table = student.runs_table(runs, program="mnistcnn.py")
    assert list(runs) == [("fit() active", 64, 0)] and sorted(table.epoch) == [0, 1]
    assert set(table.program) == {"mnistcnn.py"}


def _control_record(environment, seed, accuracies, losses, batch=2048):
    return {"program": "cnn", "batch_size": batch, "seed": seed, "environment": environment,
            "per_epoch": [{"epoch": e, "val_accuracy": a, "val_loss": loss, "test_accuracy": a,
                           "test_loss": loss}
                          for e, (a, loss) in enumerate(zip(accuracies, losses, strict=True))]}


def test_environment_effect_pairs_the_environments_by_seed_and_epoch():
    controls = student.control_table(
        [_control_record("project", s, [0.1, 0.99], [2.3, 0.03]) for s in range(2)]
        + [_control_record("student", s, [0.1, 0.99 + 0.001 * (s + 1)], [2.3, 0.03])
           for s in range(2)])
    effect = student.environment_effect(controls)
    assert list(effect.compared) == ["student (runner) - project (runner)"]
    assert effect.seeds.iloc[0] == 2
    assert effect.final_accuracy_mean.iloc[0] == pytest.approx(0.0015)
    assert effect.final_accuracy_max.iloc[0] == pytest.approx(0.002)
    assert effect.final_loss_max.iloc[0] == pytest.approx(0.0)
    one = student.control_table([_control_record("project", 0, [0.1, 0.99], [2.3, 0.03])])
    assert student.environment_effect(one).empty  # one environment: nothing to pair


def test_runner_against_engine_reads_each_runner_run_as_one_new_engine_run():
    rng = np.random.default_rng(1)
    engine = student.runs_table({("fit() active", 2048, s): _fake_run(
        [0.1, 0.994 + rng.normal(0, 0.0005)], [2.3, 0.022 + rng.normal(0, 0.001)])
        for s in range(5)}, program="mnistcnn.py")
    controls = student.control_table([_control_record("student", 0, [0.1, 0.994], [2.3, 0.022]),
                                      _control_record("project", 0, [0.1, 0.90], [2.3, 0.30])])
    table = student.runner_against_engine(controls, engine, epoch=1)
    assert list(table.environment) == ["student (runner)", "project (runner)"]
    assert list(table.consistent) == [True, False] and (table.runs == 5).all()
    with pytest.raises(ValueError, match="at least two"):
        student.runner_against_engine(controls, engine[engine.seed == 0], epoch=1)
    with pytest.raises(ValueError, match="no scores after epoch 7"):
        student.runner_against_engine(controls, engine, epoch=7)
    with pytest.raises(ValueError, match="2 programs"):
        student.runner_against_engine(controls, pd.concat([engine, engine.assign(edit="other")]),
                                      epoch=1)


def test_the_cnn_record_is_what_chapter_04s_record_declares():
    from mnist_report import records

    rng = np.random.default_rng(2)
    engine = student.runs_table({("fit() active", 2048, s): _fake_run(
        [0.1, 0.994 + rng.normal(0, 0.0005)], [2.3, 0.022 + rng.normal(0, 0.001)])
        for s in range(3)}, program="mnistcnn.py")
    match = student.best_match(engine[engine.epoch > 0], {"accuracy": 0.9936, "loss": 0.0219},
                               2048, first="fit() active")
    controls = student.control_table([_control_record(e, 0, [0.1, 0.994], [2.3, 0.022])
                                      for e in ("project", "student")])
    record = student.cnn_record(engine, match, student.runner_against_engine(
        controls, engine, 1), student.environment_effect(controls))
    built = records.build(records.StudentCnn, record)
    assert built.seeds == 3 and built.epochs == 1 and len(built.runner) == 2
    assert built.versions_accuracy_max == pytest.approx(0.0)
    assert built.best_match.program == "mnistcnn.py"
    one = student.cnn_record(engine, match, student.runner_against_engine(
        controls[controls.environment == "project (runner)"], engine, 1),
        student.environment_effect(controls[controls.environment == "project (runner)"]))
    assert records.build(records.StudentCnn, one).versions_accuracy_max is None


def test_match_text_gives_the_means_and_their_intervals():
    match = {"test_accuracy": 0.994, "accuracy_interval": [0.9931, 0.9949], "test_loss": 0.023,
             "loss_interval": [0.019, 0.027]}
    assert student.match_text(match) == "99.40 % [99.31 %, 99.49 %], loss 0.0230 [0.0190, 0.0270]"
