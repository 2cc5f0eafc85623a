"""The headline tables and the README's generated blocks, held to the committed results."""

import json

import pandas as pd
import pytest

import helpers
from mnist_report import summary

README = helpers.ROOT / "README.md"


def committed(name):
    return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]


def test_the_readme_blocks_are_what_the_committed_results_give():
    readme = README.read_text()
    names = [m.group(2) for m in summary.BLOCK.finditer(readme)]
    assert sorted(names) == ["models", "reproduction", "verdicts"]
    assert summary.render(readme, summary.fragments()) == readme, \
        "stale README: run `python -m mnist_report.summary`"


def test_the_readme_fits_on_a_screen_and_links_its_pages():
    readme = README.read_text()
    assert len(readme.splitlines()) <= 120
    for page in ("user-guide", "results", "performance", "developing"):
        assert f"(docs/{page}.md)" in readme and (helpers.ROOT / "docs" / f"{page}.md").exists()


def test_render_fills_known_blocks_and_refuses_unknown_ones():
    text = "a\n<!-- generated: x -->\nold\n<!-- /generated -->\nb\n"
    assert summary.render(text, {"x": "new"}) == \
        "a\n<!-- generated: x -->\nnew\n<!-- /generated -->\nb\n"
    with pytest.raises(KeyError, match="x"):
        summary.render(text, {})


def test_the_reproduction_table_applies_the_rule_to_the_chapters_numbers():
    table = summary.reproduction_table(committed("02_dense_network"), committed("04_cnn"))
    assert list(table.student) == ["dense_batch128", "dense_batch128", "dense_batch2048",
                                   "dense_batch2048", "cnn", "cnn"]
    assert list(table.source[-2:]) == ["the student's program",
                                       "closest Keras example (chapter 04)"]
    assert list(table.source[:2]) == ["the student's program", "searched (ranked on test numbers)"]
    for row in table.itertuples():
        student = helpers.STUDENT[row.student]
        inside = (row.accuracy_range[0] <= student["accuracy"] <= row.accuracy_range[1]
                  and row.loss_range[0] <= student["loss"] <= row.loss_range[1])
        assert inside == row.reproduced, row.student
        assert row.accuracy_range[0] <= row.accuracy <= row.accuracy_range[1]
    markdown = summary.reproduction_markdown(committed("02_dense_network"), committed("04_cnn"))
    for row in table.itertuples():
        assert row.configuration in markdown and helpers.fmt_pct(row.accuracy) in markdown


def test_the_models_table_marks_single_runs_and_keeps_the_two_intervals_apart():
    models = pd.DataFrame([
        {"model": "a", "budget": "converged", "seeds": 5, "accuracy": 0.99, "seed_ci_low": 0.989,
         "seed_ci_high": 0.991, "test_ci_low": 0.988, "test_ci_high": 0.992,
         "images_seen": 1e6, "macs": 1e6, "train_seconds": 100.0},
        {"model": "b", "budget": "converged", "seeds": 1, "accuracy": 0.995,
         "seed_ci_low": float("nan"), "seed_ci_high": float("nan"), "test_ci_low": 0.9935,
         "test_ci_high": 0.9963, "images_seen": 5e6, "macs": 5e6, "train_seconds": 500.0}])
    rows = summary.models_markdown(models, "machine X").splitlines()
    assert "| 98.90–99.10 % | 98.80–99.20 % |" in rows[2]
    assert "| single run | 99.35–99.63 % |" in rows[3]
    assert "machine X" in rows[-1]


def test_the_verdicts_quote_the_results_they_rest_on():
    verdicts = committed("05_comparison")["verdict"]
    assert len(verdicts) == 4 and all(v["evidence"] for v in verdicts)
    gap = committed("03_batch_size_sweep")["convergence"]["gap_128_minus_2048"]
    assert f"{100 * gap['mean']:+.2f} points" in verdicts[0]["evidence"]
    drop = committed("04_cnn")["permutation_paired"]["cnn_drop"]
    assert f"{100 * drop[0]:+.2f} points" in verdicts[2]["evidence"]


def test_the_cnn_gets_the_students_own_row_once_chapter_04_records_it():
    dense, cnn = committed("02_dense_network"), dict(committed("04_cnn"))
    before = summary.reproduction_table(dense, cnn)
    assert (before.student == "cnn").sum() == 1 + ("student_program" in cnn)
    match = {"program": "mnistcnn.py", "edit": "fit() active", "epoch": 12, "runs": 5,
             "test_accuracy": 0.9930, "accuracy_interval": [0.9910, 0.9950],
             "test_loss": 0.025, "loss_interval": [0.020, 0.030], "p": 0.3, "consistent": True}
    cnn["student_program"] = {"best_match": match, "seeds": 5, "epochs": 100,
                              "final_accuracy": 0.994, "final_loss": 0.023}
    rows = summary.reproduction_table(dense, cnn)
    own = rows[(rows.student == "cnn") & (rows.source == "the student's program")].iloc[0]
    assert own.configuration == "mnistcnn.py with fit() active, 12 epochs"
    assert own.reproduced and own.p == 0.3
    assert rows.student.tolist()[-2:] == ["cnn", "cnn"]  # the student's program, then the example


def _compared(**extra):
    """What chapter 05 hands summary.verdicts, rebuilt from its committed results."""
    results = committed("05_comparison")
    holm = {r["comparison"]: r["p (Holm)"] for r in results["welch"]}
    return {"gaps": {"best CNN": results["best_gap"], "student-level CNN": results["level_gap"]},
            "holm_p": {"best CNN": holm["best CNN − chosen MLP"],
                       "student-level CNN": holm["student-level CNN − chosen MLP"]},
            "shift4": results["shift_4"]} | extra


def _verdicts(compared):
    return summary.verdicts(*(helpers.records.of(name, committed(name)) for name in (
        "02_dense_network", "03_batch_size_sweep", "04_cnn")), compared)


def test_verdict_two_reads_the_two_by_two_when_chapter_05_gives_it():
    assert _verdicts(_compared())[1] == committed("05_comparison")["verdict"][1]
    arch = {"CNN − MLP, plain": (0.008, 0.006, 0.010), "CNN − MLP, augmented": (0.003, 0.001,
                                                                            0.005),
            "augmentation, MLP": (0.006, 0.004, 0.008), "augmentation, CNN": (0.001, 0.0, 0.002)}
    two = _verdicts(_compared(arch_recipe=arch, arch_seeds=5,
                              mlp_augmented=(0.9912, 0.9905, 0.9919)))[1]
    assert two["verdict"] == "Yes, on equal terms, with and without augmentation."
    assert "+0.80 points [+0.60, +1.00] without augmentation" in two["evidence"]
    assert "+0.30 points [+0.10, +0.50] with it (paired by seed over 5 seeds" in two["evidence"]
    assert "to 99.12 % [99.05 %, 99.19 %]" in two["evidence"]
    tied = arch | {"CNN − MLP, augmented": (0.001, -0.001, 0.003)}
    assert _verdicts(_compared(arch_recipe=tied, arch_seeds=5, mlp_augmented=(0.99, 0.98, 1.0)))[
        1]["verdict"] == "Yes on plain digits; with augmentation the lead is not shown."
