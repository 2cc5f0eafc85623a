"""bench.py: its summaries, its notebook timings, and tiny versions of its comparisons."""

import json

import pytest

import bench
import helpers
from helpers import Net, Recipe

TINY_DENSE = {"softmax": (Net(helpers.dense_net, hidden=()), Recipe(batch_size=128, epochs=3))}
TINY_CNN = (Net(helpers.conv_net, filters=(4, 8), batch_norm=True, dense=8),
            Recipe(batch_size=64, epochs=3, flatten=False, schedule="onecycle"))


def test_summary_gives_median_and_range():
    s = bench._summary([3.0, 1.0, 2.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": [3.0, 1.0, 2.0]}


def test_alternated_rotates_the_order_of_the_variants():
    calls = []
    runs = bench._alternated({"a": lambda: calls.append("a") or 1.0,
                              "b": lambda: calls.append("b") or 2.0}, repeats=3)
    assert calls == ["a", "b", "b", "a", "a", "b"] and runs == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_notebook_times_come_from_the_cells_execution_stamps(tmp_path, monkeypatch):
    cell = {"cell_type": "code", "metadata": {"execution": {
        "iopub.execute_input": "2026-01-01T10:00:00.000Z",
        "shell.execute_reply": "2026-01-01T10:01:30.500Z"}}, "source": "", "outputs": []}
    (tmp_path / "01_demo.ipynb").write_text(json.dumps({"cells": [cell]}))
    (tmp_path / "02_blank.ipynb").write_text(json.dumps({"cells": []}))
    monkeypatch.setattr(helpers, "chapter_notebooks", lambda: sorted(tmp_path.glob("*.ipynb")))
    assert bench.notebooks() == {"01_demo": pytest.approx(90.5), "02_blank": None}


def test_training_compares_the_helper_with_plain_fit():
    (row,) = bench.training(TINY_DENSE, repeats=2)
    assert row["images"] == bench.N_IMAGES["dense"] and row["macs_per_image"] == 7840
    assert len(row["helper"]["images_per_s"]["runs"]) == 2
    assert len(row["plain_fit_images_per_s"]["runs"]) == 2
    ips, spm = row["helper"]["images_per_s"]["median"], row["helper"][
        "seconds_per_million_images"]["median"]
    assert spm == pytest.approx(1e6 / ips, rel=0.5) and row["helper_gflops"] > 0
    assert row["net"] == {"builder": "dense_net", "arch": {"hidden": []}}
    assert "| softmax | 128 | 7,840 |" in bench.markdown_table({"training": [row]})


def test_batch_norm_compares_fused_keras_and_no_normalisation():
    out = bench.batch_norm(*TINY_CNN, repeats=2)
    assert {"fused", "keras", "plain"} <= set(out)
    paired = [f / p for f, p in zip(out["fused"]["images_per_s"]["runs"],
                                    out["plain"]["images_per_s"]["runs"], strict=True)]
    assert out["fused_vs_plain"]["runs"] == pytest.approx(paired)  # repeat by repeat
    table = bench.batch_norm_table({"batch_norm": out})
    assert "| fused ÷ Keras |" in table and "goal ≥ 1.4" in table


def committed(name):
    return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]


def test_the_performance_page_is_written_from_the_committed_bench_results():
    page = (helpers.ROOT / "docs" / "performance.md").read_text()
    payload = json.loads((helpers.COMMITTED_RESULTS / "bench.json").read_text())
    assert page == bench.performance_page(payload["results"], payload["environment"])
    for table in (bench.markdown_table, bench.batch_norm_table, bench.notebook_table):
        assert table(payload["results"]) in page
