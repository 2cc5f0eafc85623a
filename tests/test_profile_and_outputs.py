"""The profile switch, output folders, save_fig and the results files."""

import json
import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

import helpers

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run_python(code, **env):
    """Run code in a fresh interpreter at the project root with extra environment variables."""
    return subprocess.run([sys.executable, "-c", code], cwd=helpers.ROOT, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


def test_profile_defaults_to_full(monkeypatch):
    monkeypatch.delenv("MNIST_PROFILE", raising=False)
    assert helpers.get_profile() == "full"


@pytest.mark.parametrize("value, expected", [("full", "full"), ("smoke", "smoke"),
                                             (" Smoke ", "smoke")])
def test_profile_accepts_known_values(value, expected):
    assert helpers.get_profile(value) == expected


@pytest.mark.parametrize("value", ["", "fast", "ful", "test"])
def test_unknown_profile_is_an_error(value):
    with pytest.raises(helpers.ProfileError, match="not a known profile.*'full'.*'smoke'"):
        helpers.get_profile(value)


def test_unknown_profile_fails_at_import_with_a_clear_message():
    done = run_python("import helpers", MNIST_PROFILE="quick")
    assert done.returncode != 0
    assert "ProfileError: MNIST_PROFILE='quick' is not a known profile" in done.stderr


def test_tests_run_in_the_smoke_profile():
    assert helpers.PROFILE == "smoke" and helpers.SMOKE
    assert helpers.pick(full=3000, smoke=300) == 300


def test_smoke_outputs_are_outside_the_project(monkeypatch, tmp_path):
    figures, results = helpers.output_dirs("full")
    assert (figures, results) == (helpers.ROOT / "figures", helpers.ROOT / "results")
    monkeypatch.delenv("MNIST_SMOKE_DIR", raising=False)
    for path in helpers.output_dirs("smoke"):
        assert not path.is_relative_to(helpers.ROOT)
    monkeypatch.setenv("MNIST_SMOKE_DIR", str(tmp_path))
    assert helpers.output_dirs("smoke") == (tmp_path / "figures", tmp_path / "results")


def test_save_fig_in_smoke_profile_never_touches_figures(tmp_path):
    committed = helpers.ROOT / "figures"
    before = sorted(p.name for p in committed.glob("*")) if committed.exists() else []
    code = ("import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "import helpers; plt.plot([0, 1]); print(helpers.save_fig('99_smoke_probe'))")
    done = run_python(code, MNIST_PROFILE="smoke", MNIST_SMOKE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "figures" / "99_smoke_probe.png")
    assert (tmp_path / "figures" / "99_smoke_probe.png").stat().st_size > 1000
    after = sorted(p.name for p in committed.glob("*")) if committed.exists() else []
    assert after == before and "99_smoke_probe.png" not in after


def test_save_fig_writes_named_png(configured, tmp_path):
    configured(figures=tmp_path / "figs")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = helpers.save_fig("01_test_figure.png", fig)
    plt.close(fig)
    assert path == tmp_path / "figs" / "01_test_figure.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["class_balance", "1_x", "01-class", "01_Class", "../01_x"])
def test_save_fig_rejects_bad_names(name):
    with pytest.raises(ValueError, match="NN_short_name"):
        helpers.save_fig(name)


def test_smoke_profile_refuses_to_write_committed_folders(configured):
    configured(figures=helpers.COMMITTED_FIGURES, results=helpers.COMMITTED_RESULTS)
    with pytest.raises(RuntimeError, match="smoke profile must not write"):
        helpers.save_fig("01_should_not_exist")
    with pytest.raises(RuntimeError, match="smoke profile must not write"):
        helpers.save_json("01_should_not_exist", {"a": 1})
    assert not (helpers.COMMITTED_FIGURES / "01_should_not_exist.png").exists()


def test_save_json_records_results_and_environment(configured, tmp_path):
    configured(results=tmp_path)
    path = helpers.save_json("01_probe", {"accuracy": np.float32(0.5), "counts": np.arange(3)})
    payload = json.loads(path.read_text())
    assert payload["results"] == {"accuracy": 0.5, "counts": [0, 1, 2]}
    env = payload["environment"]
    assert env["profile"] == "smoke" and env["packages"]["numpy"] == np.__version__
    assert env["cpu_count"] >= 1 and env["python"].startswith("3.")
    assert env["git_dirty"] is None or isinstance(env["git_dirty"], list)
    assert "git_commit" in env
    assert helpers.load_json("01_probe") == payload["results"]


def test_git_dirty_names_code_that_differs_from_head_and_ignores_outputs(tmp_path, monkeypatch):
    import subprocess

    from mnist_report import results

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    def notebook(code, output):
        return json.dumps({"cells": [{"cell_type": "markdown", "source": ["# title"]},
                                     {"cell_type": "code", "source": [code],
                                      "outputs": [{"text": output}]}]})

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "helpers.py").write_text("A = 1\n")
    (tmp_path / "notebooks" / "01_a.ipynb").write_text(notebook("x = 1", "old"))
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    assert results.git_dirty() == []
    (tmp_path / "notebooks" / "01_a.ipynb").write_text(notebook("x = 1", "new outputs"))
    (tmp_path / "README.md").write_text("prose only\n")
    assert results.git_dirty() == []  # executed outputs and prose are not code
    (tmp_path / "notebooks" / "01_a.ipynb").write_text(notebook("x = 2", "new outputs"))
    (tmp_path / "helpers.py").write_text("A = 2\n")
    assert results.git_dirty() == ["helpers.py", "notebooks/01_a.ipynb"]
    monkeypatch.setattr(results, "ROOT", tmp_path / "notebooks" / "not_a_repo")
    assert results.git_dirty() is None


def test_image_grid_shows_every_image_once():
    images = np.random.default_rng(0).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    fig = helpers.image_grid(images, ncols=10, titles=range(23))
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 30 and len(shown) == 23
    np.testing.assert_array_equal(shown[22].images[0].get_array(), images[22])
    plt.close(fig)


def test_tables_and_predictions_round_trip(configured, tmp_path):
    import pandas as pd

    configured(results=tmp_path)
    table = pd.DataFrame({"model": ["mlp", "mlp"], "seed": [0, 1], "test_accuracy": [0.98, 0.99]})
    helpers.save_table("02_runs", table)
    pd.testing.assert_frame_equal(helpers.load_table("02_runs"), table)
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(10) * 0.1, size=10000).astype(np.float32)
    helpers.save_predictions("02_predictions", {"mlp/seed0": proba})
    back = helpers.load_predictions("02_predictions")
    assert list(back) == ["mlp/seed0"] and back["mlp/seed0"].dtype == np.float32
    np.testing.assert_allclose(back["mlp/seed0"], proba, atol=1e-3)
    with pytest.raises(ValueError, match=r"\(n_test, 10\)"):
        helpers.save_predictions("bad", {"x": proba[:, :5]})


def test_missing_results_name_the_notebook_to_run(configured, tmp_path):
    configured(results=tmp_path)
    for load, name in ((helpers.load_json, "02_dense_network"), (helpers.load_table, "02_runs"),
                       (helpers.load_predictions, "02_predictions")):
        with pytest.raises(helpers.MissingResultsError,
                           match=r"notebooks/02_\*\.ipynb.*smoke profile.*make notebooks-test"):
            load(name)


def test_predictions_keep_every_predicted_label(configured, tmp_path):
    configured(results=tmp_path)
    near_tie = np.full((10000, 10), 0.0, np.float32)
    near_tie[:, 3], near_tie[:, 5] = 0.50003, 0.49997  # equal once rounded to float16
    helpers.save_predictions("02_predictions", {"tie": near_tie})
    assert (helpers.load_predictions("02_predictions")["tie"].argmax(1) == 3).all()


def test_require_results_names_every_notebook_to_run_first(configured, tmp_path):
    configured(results=tmp_path)
    (tmp_path / "03_batch_size_sweep.json").write_text("{}")
    names = ("02_dense_network.json", "03_batch_size_sweep.json", "04_cnn.json", "04_runs.csv")
    with pytest.raises(helpers.MissingResultsError, match=r"chapters 02, 04.*notebooks-test") as e:
        helpers.require_results(*names)
    configured(profile="full", results=tmp_path)  # the full profile: `make run` for each
    with pytest.raises(helpers.MissingResultsError, match=r"make run NB=02`, then `make run NB=04"):
        helpers.require_results(*names)
    # In a notebook, IPython shows the message alone instead of a traceback.
    assert e.value._render_traceback_() == [f"MissingResultsError: {e.value}"]
    helpers.require_results("03_batch_size_sweep.json")  # present: no error


def test_cpu_description_names_the_model_its_vector_unit_and_cores(monkeypatch):
    from mnist_report import results

    text = helpers.cpu_description()
    assert text.startswith(results._cpu_model())
    assert text.endswith(f"{len(os.sched_getaffinity(0))} cores")
    vector = ("AVX-512" if "avx512f" in results.cpu_flags() else
              "AVX2" if "avx2" in results.cpu_flags() else None)
    assert vector is None or f", {vector}," in text


def test_tables_are_shown_with_readable_headers():
    from mnist_report.notebook import readable

    assert readable("test_accuracy") == "test accuracy" and readable(3) == 3
    assert readable("mnist_cnn.py, Adam, 12 epochs") == "mnist_cnn.py, Adam, 12 epochs"
    assert readable("model") == "model" and readable("val_gain_low") == "val gain low"
