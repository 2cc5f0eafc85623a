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
    assert recipe.snapshots == tuple(range(1, 101)) and recipe.batch_size == 128
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
    assert sorted(run.snapshots) == [1, 2] and run.images_seen == 2 * 256
    assert set(run.snapshots[2]) >= {"val_accuracy", "test_accuracy", "val_loss", "test_loss"}
