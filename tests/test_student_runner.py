"""The standalone runner of the student's programs (mnist_report/student_runner.py), in the
project's environment (`make student-env` runs it in the student's)."""

import json
import subprocess
import sys

import helpers
from mnist_report import student_runner


def test_the_runner_trains_the_students_dense_program_and_scores_every_epoch(tmp_path):
    helpers.load_mnist()  # data/mnist.npz, verified
    out = tmp_path / "run.json"
    code = subprocess.run([sys.executable, "-m", "mnist_report.student_runner", "dense",
                           "--batch", "256", "--epochs", "2", "--seed", "3", "--n-train", "2000",
                           "--out", str(out)], cwd=helpers.ROOT, capture_output=True, text=True)
    assert code.returncode == 0, code.stderr[-2000:]
    record = json.loads(out.read_text())
    assert (record["program"], record["batch_size"], record["seed"]) == ("dense", 256, 3)
    assert [e["epoch"] for e in record["per_epoch"]] == [1, 2]
    assert record["packages"]["keras"] == helpers.environment_record()["packages"]["keras"]
    last = record["per_epoch"][-1]
    assert 0.5 < last["test_accuracy"] < 1 and 0.5 < last["val_accuracy"] < 1


def test_the_runners_networks_are_the_students():
    dense, optimizer = student_runner.build("dense")
    assert optimizer == "rmsprop" and dense.count_params() == 784 * 64 + 64 + 650
    cnn, optimizer = student_runner.build("cnn")
    assert optimizer == "adam"
    assert cnn.count_params() == helpers.student_cnn().count_params()


def test_the_runner_is_seeded():
    runs = [student_runner.run("dense", 256, 1, 5, helpers.MNIST_CACHE, n_train=500)
            for _ in range(2)]
    assert runs[0]["per_epoch"] == runs[1]["per_epoch"]
