"""Project-level promises: one pinned dependency list, and committed notebooks that are one
clean, full-profile, top-to-bottom run."""

import re
from pathlib import Path

import nbformat
import pytest

import helpers

NOTEBOOKS = sorted((helpers.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BYTES = 5 * 1024 * 1024


def test_every_requirement_is_pinned_exactly():
    lines = [line.split("#")[0].strip() for line in
             (helpers.ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line]
    assert reqs, "requirements.txt is empty"
    for req in reqs:
        assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==[0-9][^ ;]*( *;.*)?$", req), req


def test_conda_environment_uses_the_same_list():
    text = (helpers.ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "-r requirements.txt" in text


def test_there_are_committed_notebooks():
    assert [p.name for p in NOTEBOOKS][:1] == ["01_data_exploration.ipynb"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    path: Path = request.param
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return path, nb


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_executed_top_to_bottom_without_gaps(notebook):
    path, nb = notebook
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: {counts}"


def test_no_error_outputs(notebook):
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} code cell {i + 1}: {out.get('ename')}"
            assert "Traceback (most recent call last)" not in out.get("text", "")


def test_executed_in_the_full_profile(notebook):
    path, nb = notebook
    texts = ["".join(o.get("text", "")) for c in code_cells(nb) for o in c.outputs]
    profile_lines = [t for t in texts if "Profile: " in t]
    assert profile_lines, f"{path.name}: no 'Profile:' line (call helpers.setup_notebook())"
    assert all("Profile: full" in t for t in profile_lines), f"{path.name}: {profile_lines}"


def test_outputs_store_no_progress_bar_path_repr_or_cache_chatter(notebook):
    """What a reader should never see in a committed notebook: a stored progress bar (tqdm's
    "it/s" or its widget), a path's repr, or a training log's "(cached)"."""
    path, nb = notebook
    for i, cell in enumerate(code_cells(nb)):
        for out in cell.outputs:
            data = out.get("data", {})
            text = "".join(out.get("text", "")) + "".join(
                "".join(v) if isinstance(v, list) else str(v) for k, v in data.items()
                if k.startswith("text/"))
            where = f"{path.name} code cell {i + 1}"
            assert "application/vnd.jupyter.widget-view+json" not in data, f"{where}: a widget"
            assert not re.search(r"\d\s*it/s|s/it\b", text), f"{where}: a progress bar"
            assert "PosixPath(" not in text and "WindowsPath(" not in text, f"{where}: a path"
            assert "(cached)" not in text, f"{where}: cache chatter"


def test_file_size_under_limit(notebook):
    path, _ = notebook
    assert path.stat().st_size < MAX_BYTES


def test_saved_figures_are_committed_and_named_after_the_chapter(notebook):
    path, nb = notebook
    names = re.findall(r"save_fig\(\s*[\"'](\d\d_[a-z0-9_]+)", "\n".join(
        c.source for c in code_cells(nb)))
    for name in names:
        assert name[:2] == path.name[:2], f"{name} saved by {path.name}"
        assert (helpers.ROOT / "figures" / f"{name}.png").exists(), f"figures/{name}.png missing"


def test_readme_quotes_the_students_numbers_as_helpers_records_them():
    readme = (helpers.ROOT / "README.md").read_text()
    for run in helpers.STUDENT.values():
        assert f"{100 * run['accuracy']:.2f} %" in readme
    assert f"test loss {helpers.STUDENT['cnn']['loss']}" in readme


def committed_results(name):
    import json

    return json.loads((helpers.COMMITTED_RESULTS / f"{name}.json").read_text())["results"]


def pct_interval(low, high):
    return f"{100 * low:.2f}–{100 * high:.2f} %"


def test_readme_quotes_chapter_02_as_its_results_record_them():
    readme = " ".join((helpers.ROOT / "README.md").read_text().split())
    r = committed_results("02_dense_network")
    for model in ("softmax_regression", "mlp"):
        assert helpers.fmt_pct(r[model]["test_accuracy_mean"]) in readme, model
        assert pct_interval(*r[model]["ci95"]) in readme, model
        assert f"{r[model]['seeds']} seeds" in readme
    assert f"about {r['mlp']['train_seconds_mean']:.0f} s of training per run" in readme
    rep = r["reproduction"]
    assert f"{rep['screen']['programs']} plausible programs" in readme
    for bs in (128, 2048):
        closest = rep[f"closest_batch{bs}"]
        verdict = "reproduced" if closest["reproduced"] else "not reproduced"
        assert (f"{helpers.fmt_pct(closest['test_accuracy_mean'])} "
                f"[{pct_interval(*closest['accuracy_central95'])}]") in readme, bs
        assert f"{verdict} at batch {bs}" in readme, bs
        assert helpers.fmt_pct(r["student_setting"][f"batch{bs}"]["test_accuracy"]) in readme
    assert ("No program gives both" if not rep["pair_reproduced"]
            else "One program gives both") in readme


def test_readme_quotes_chapter_03_as_its_results_record_them():
    readme = " ".join((helpers.ROOT / "README.md").read_text().split())
    r = committed_results("03_batch_size_sweep")
    collapse, conv, sweep = r["collapse"], r["convergence"], r["sweep"]
    assert f"{collapse['seeds']} seeds per cell" in readme
    fisher = ", ".join(f"{p:.2g}" for p in collapse["fisher_p_128_vs_2048"].values())
    assert f"Fisher's exact test p = {fisher}" in readme
    gap = conv["gap_128_minus_2048"]
    assert (f"{100 * gap['mean']:+.2f} points over seeds (95 % CI {100 * gap['ci95'][0]:+.2f} to "
            f"{100 * gap['ci95'][1]:+.2f})") in readme
    for row in conv["per_batch"]:
        assert helpers.fmt_pct(row["test_accuracy"]) in readme, row["batch_size"]
    assert f"fixed {sweep['epoch_budget']} epochs" in readme
    assert f"fixed {sweep['step_budget']} steps" in readme
    assert f"steps to {sweep['target']:.0%} validation accuracy" in readme
    assert f"{sweep['runs']} runs" in readme
    best = {(b["budget"], b["batch_size"]): b for b in sweep["best"]}
    for budget in ("epochs", "steps"):
        for bs in (min(sweep["batch_sizes"]), max(sweep["batch_sizes"])):
            b = best[budget, bs]
            assert helpers.fmt_pct(b["test_accuracy"]) in readme, (budget, bs)
            assert pct_interval(b["ci_low"], b["ci_high"]) in readme, (budget, bs)
    regimes, cap = sweep["lr_regimes"]["epochs"], sweep["lr_cap"]
    assert (f"B^{regimes['small']:.2f} up to batch {regimes['break']} and then levels off at "
            f"about {cap['value']:.2g}") in readme
    assert f"critical batch size of about {sweep['b_crit']:.0f}" in readme


def test_readme_quotes_chapter_04_as_its_results_record_them():
    readme = " ".join((helpers.ROOT / "README.md").read_text().split())
    r = committed_results("04_cnn")
    for name, p in r["reproduction"]["programs"].items():  # every program, with its verdict
        verdict = "reproduced" if p["reproduced"] else "not reproduced"
        assert (f"{name}: {helpers.fmt_pct(p['test_accuracy'])} "
                f"[{pct_interval(p['accuracy_low'], p['accuracy_high'])}], loss "
                f"{p['test_loss']:.4f} [{p['loss_low']:.4f}–{p['loss_high']:.4f}], "
                f"{verdict}") in readme, name
    best = r["best_single"]
    assert (f"**{helpers.fmt_pct(best['test_accuracy_mean'])}** (95 % CI over seeds "
            f"{pct_interval(*best['ci95'])}, {best['seeds']} seeds") in readme
    ensemble = r["ensemble"]
    assert (f"({ensemble['members']} members) {helpers.fmt_pct(ensemble['test_accuracy'])} "
            f"({ensemble['errors']} errors") in readme
    fast = r["fast_to_99"]
    assert f"{helpers.fmt_pct(fast['test_accuracy_mean'])} in {fast['train_seconds_mean']:.0f} s" \
        in readme

    def pts(ci):
        return f"{100 * ci[0]:+.2f} points [{100 * ci[1]:+.2f}, {100 * ci[2]:+.2f}]"

    paired = r["permutation_paired"]
    assert f"costs the MLP {pts(paired['mlp_drop'])} and the CNN {pts(paired['cnn_drop'])}" \
        in readme
    aug = {v["epochs"]: v for k, v in r["climb"].items() if "augmentation" in k}
    assert f"by {pts(aug[max(aug)]['val_gain_ci95'])} after {max(aug)}" in readme


def readme_results_table(models):
    """The README's results table, as it must read for results/05_models.csv (`models`)."""
    lines = ["| model | test accuracy (95 % interval) | seeds | parameters | MACs per image "
             "| training time per model |", "| --- | --- | --- | --- | --- | --- |"]
    for row in models.itertuples():
        lines.append(f"| {row.model} | {helpers.fmt_pct(row.accuracy)} "
                     f"({pct_interval(row.ci_low, row.ci_high)}) | {row.seeds} | "
                     f"{row.params:,} | {row.macs:,} | {row.train_seconds:.0f} s |")
    return "\n".join(lines)


def test_readme_results_table_and_verdict_match_chapter_05():
    import pandas as pd

    readme = (helpers.ROOT / "README.md").read_text()
    models = pd.read_csv(helpers.COMMITTED_RESULTS / "05_models.csv")
    assert readme_results_table(models) in readme
    flat = " ".join(readme.split())
    for item in committed_results("05_comparison")["verdict"]:
        assert f"**{item['claim']}** {item['verdict']}" in flat, item["claim"]


def test_readme_quotes_chapter_05_as_its_results_record_them():
    import pandas as pd

    readme = " ".join((helpers.ROOT / "README.md").read_text().split())
    r, cnn = committed_results("05_comparison"), committed_results("04_cnn")
    models = pd.read_csv(helpers.COMMITTED_RESULTS / "05_models.csv").set_index("model")
    gap = models.loc["best CNN", "accuracy"] - models.loc["chosen MLP", "accuracy"]
    student = helpers.STUDENT
    student_gap = student["cnn"]["accuracy"] - student["dense_batch2048"]["accuracy"]
    assert f"by {100 * gap:.2f} points" in readme and f"the {100 * student_gap:.2f} the" in readme
    perm = {k: v["mean"] for k, v in cnn["permuted"].items()}
    for model in ("CNN", "MLP"):
        assert f"the {model} {100 * (perm[f'{model} original'] - perm[f'{model} permuted']):.2f}" \
            in readme, model
    assert f"{100 * cnn['best_single']['gain_over_student_ci95'][0]:+.2f} points" in readme
    significant = sum(t["pairs with p < 0.05"] == t["seed pairs"] for t in r["mcnemar"])
    assert f"{significant} of the {len(r['mcnemar'])} steps" in readme
    assert f"p up to {max(t['largest p'] for t in r['mcnemar']):.2f}" in readme
    assert f"{r['missed_by_all']} test digits" in readme
    for model in ("chosen MLP", "best CNN"):
        assert f"ECE {models.loc[model, 'ece']:.4f}" in readme, model
    best, mlp = models.loc["best CNN"], models.loc["chosen MLP"]
    assert best.params < mlp.params
    assert f"{best.macs / mlp.macs:.1f}× its compute per image" in readme
    assert f"{best.train_seconds / mlp.train_seconds:.1f}× its training time" in readme
    for key in ("rotation/chosen MLP/30", "rotation/best CNN/30", "noise/student-level CNN/0.3",
                "noise/chosen MLP/0.3", "noise/best CNN/0.3"):
        assert helpers.fmt_pct(r["robustness"][key]) in readme, key
