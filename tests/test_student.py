"""The student's programs as recipes (mnist_report/student.py)."""

import pytest

import helpers
from mnist_report import student


def test_the_recorded_numbers_are_the_write_ups_rounded():
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
