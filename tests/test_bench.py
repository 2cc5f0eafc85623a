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


def committed(name):
    return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]


def test_readme_shows_the_committed_bench_table():
    table = bench.markdown_table(committed("bench"), committed("bench_baseline"))
    assert table in (helpers.ROOT / "README.md").read_text()


def test_report_table_gives_before_after_and_their_ratio():
    def run(total, chapter):
        return {"make_report_seconds": total, "notebook_seconds": {"01_a": chapter, "02_b": 10}}

    before = {"notebooks": {"cold": run(1000, 400), "warm": run(100, 40)}}
    after = {"notebooks": {"cold": run(500, 100), "warm": run(100, 50)}}
    lines = bench.report_table(after, before).splitlines()
    assert lines[0] == "| cache |  | make report | chapter 01 | chapter 02 |"
    assert lines[2:5] == ["| cold | before | 1,000 s | 400 s | 10 s |",
                          "|  | after | 500 s | 100 s | 10 s |",
                          "|  | after ÷ before | 0.50 | 0.25 | 1.00 |"]
    assert lines[-1] == "|  | after ÷ before | 1.00 | 1.25 | 1.00 |"


def test_readme_shows_make_report_before_and_after():
    table = bench.report_table(committed("bench"), committed("bench_baseline"))
    assert table in (helpers.ROOT / "README.md").read_text()
