"""bench.py: its summaries, its notebook timings and one tiny training comparison."""

import json

import pytest

import bench
import helpers


def test_summary_gives_median_and_range():
    s = bench._summary([3.0, 1.0, 2.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": [3.0, 1.0, 2.0]}


def test_notebook_times_come_from_the_cells_execution_stamps(tmp_path, monkeypatch):
    cell = {"cell_type": "code", "metadata": {"execution": {
        "iopub.execute_input": "2026-01-01T10:00:00.000Z",
        "shell.execute_reply": "2026-01-01T10:01:30.500Z"}}, "source": "", "outputs": []}
    (tmp_path / "01_demo.ipynb").write_text(json.dumps({"cells": [cell]}))
    (tmp_path / "02_blank.ipynb").write_text(json.dumps({"cells": []}))
    monkeypatch.setattr(helpers, "chapter_notebooks", lambda: sorted(tmp_path.glob("*.ipynb")))
    assert bench.notebooks() == {"01_demo": pytest.approx(90.5), "02_blank": None}


def test_training_compares_the_helper_with_plain_fit(monkeypatch):
    monkeypatch.setattr(bench, "MODELS", {"softmax": bench.MODELS["softmax regression (02)"]})
    monkeypatch.setattr(bench, "N_IMAGES", {"dense": 1024, "conv": 256})
    (row,) = bench.training(repeats=2)
    assert row["images"] == 1024 and row["macs_per_image"] == 7840
    assert len(row["helper_images_per_s"]["runs"]) == 2
    assert len(row["plain_fit_images_per_s"]["runs"]) == 2
    assert row["ratio_helper_to_plain"]["median"] > 0 and row["helper_gflops"] > 0


def test_readme_shows_the_committed_bench_table():
    def committed(name):
        return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]

    table = bench.markdown_table(committed("bench"), committed("bench_baseline"))
    assert table in (helpers.ROOT / "README.md").read_text()
