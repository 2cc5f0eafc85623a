"""The figure layer (mnist_report/plots.py): house formatters and one function per kind of figure,
each rendered here on a small tidy table (a smoke test per function)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import helpers  # noqa: E402
from mnist_report import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def runs_over_batch():
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"batch_size": b, "seed": s, "model": m, "test_accuracy":
                          0.97 - 0.01 * np.log2(b / 16) / 8 + (m == "CNN") * 0.02
                          + rng.normal(0, 0.002)}
                         for b in (16, 128, 2048) for s in range(3) for m in ("MLP", "CNN")])


def test_percent_axis_uses_the_house_style():
    _, ax = plt.subplots()
    plots.percent_axis(ax, "y", digits=1)
    assert ax.yaxis.get_major_formatter()(0.992, 0) == "99.2 %"


def test_legend_outside_sits_beside_or_below_the_axes():
    _, ax = plt.subplots()
    ax.plot([0, 1], label="a")
    legend = plots.legend_outside(ax)
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1
    assert plots.legend_outside(ax, "below") is not None
    with pytest.raises(ValueError, match="right' or 'below"):
        plots.legend_outside(ax, "inside")


def test_batch_size_axis_labels_each_batch_size():
    _, ax = plt.subplots()
    ax.plot([16, 128, 2048], [1, 2, 3])
    plots.batch_size_axis(ax, [16, 128, 2048])
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [16, 128, 2048]
    assert ax.xaxis.get_major_formatter()(2048, 0) == "2,048"


def test_plot_bands_draws_a_mean_and_a_band_per_hue():
    ax = plots.plot_bands(runs_over_batch(), "batch_size", "test_accuracy", hue="model",
                          percent=True, batch_axis=True)
    assert [line.get_label() for line in ax.get_lines()] == ["MLP", "CNN"]
    assert len(ax.collections) == 2 and ax.get_legend() is not None
    mean_16 = runs_over_batch().query("batch_size == 16 and model == 'CNN'").test_accuracy.mean()
    assert ax.get_lines()[1].get_ydata()[0] == pytest.approx(mean_16)
    with pytest.raises(ValueError, match="band must be"):
        plots.plot_bands(runs_over_batch(), "batch_size", "test_accuracy", band="sd")


def test_plot_shares_dodges_each_series_and_keeps_the_intervals():
    shares = pd.DataFrame({"learning_rate": [0.01, 0.01, 0.1, 0.1], "batch_size": [128, 2048] * 2,
                           "share": [0.1, 0.2, 0.9, 1.0], "share_low": [0.0, 0.05, 0.7, 0.83],
                           "share_high": [0.3, 0.45, 0.99, 1.0]})
    ax = plots.plot_shares(shares, "batch_size", hue="learning_rate")
    series = [container.lines[0] for container in ax.containers]  # the points, not the caps
    low, high = series[0].get_xdata(), series[1].get_xdata()
    assert (low < [128, 2048]).all() and (high > [128, 2048]).all()  # dodged either side
    assert list(series[1].get_ydata()) == [0.9, 1.0]
    assert ax.get_ylim() == (-0.03, 1.03) and ax.yaxis.get_major_formatter()(0.5, 0) == "50 %"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "learning rate 0.01", "learning rate 0.1"]
    edits = shares.assign(edit=["as committed"] * 2 + ["no scaling"] * 2)
    ax = plots.plot_shares(edits, "batch_size", hue="edit")  # a text hue names itself
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["as committed", "no scaling"]


def test_plot_errorbars_names_series_by_label_and_can_drop_the_line():
    rates = pd.DataFrame({"budget": ["epochs", "epochs", "steps", "steps"],
                          "batch_size": [16, 256] * 2, "best_lr": [0.01, 0.1, 0.04, 0.4],
                          "low": [0.005, 0.05, 0.02, 0.2], "high": [0.02, 0.2, 0.08, 0.8]})
    ax = plots.plot_errorbars(rates, "batch_size", "best_lr", "low", "high", hue="budget",
                              logy=True, dodge=1.04, labels={"epochs": "2 epochs"}, line="none")
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["2 epochs", "steps"]
    points = ax.containers[0].lines[0]
    assert points.get_linestyle() == "None" and list(points.get_ydata()) == [0.01, 0.1]


def test_plot_intervals_draws_one_row_per_model():
    table = pd.DataFrame({"model": ["linear", "MLP", "CNN"], "mean": [0.92, 0.98, 0.99],
                          "low": [0.91, 0.975, 0.988], "high": [0.93, 0.985, 0.992]})
    ax = plots.plot_intervals(table, "model", "mean", "low", "high", reference=0.996)
    top_down = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in top_down] == ["linear", "MLP", "CNN"]  # the table's order


def test_plot_grid_heatmap_marks_diverged_cells_and_leaves_empty_ones_white():
    grid = pd.DataFrame({"batch_size": [16, 16, 128, 128], "learning_rate": [0.1, 1.0, 0.1, 1.0],
                         "val_accuracy": [0.97, 0.1, 0.96, np.nan],
                         "diverged": [False, True, False, False]})
    ax = plots.plot_grid_heatmap(grid, "learning_rate", "batch_size", "val_accuracy",
                                 marks="diverged", fmt=".0f", descending=True, row_format=".3g")
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("✗") == 1 and "97" in texts and "10" not in texts  # ✗ replaces 10
    assert len(texts) == 3  # the empty cell has no label
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "0.1"]  # largest on top


def test_plot_robustness_keeps_one_colour_per_model_across_panels():
    rows = [{"model": m, "perturbation": p, "level": k, "seed": s,
             "test_accuracy": 0.99 - 0.1 * k * (m == "MLP")}
            for m in ("MLP", "CNN") for p in ("shift", "noise") for k in (0, 1, 2)
            for s in range(2)]
    fig = plots.plot_robustness(pd.DataFrame(rows), units={"shift": "pixels"})
    left, right = fig.axes[:2]
    assert [line.get_color() for line in left.get_lines()] == [
        line.get_color() for line in right.get_lines()]
    assert left.get_xlabel() == "shift (pixels)"


def test_plot_reliability_and_learning_curves_render():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(10) * 0.2, size=500)
    ax = plots.plot_reliability(proba, proba.argmax(1), label="model")
    assert "ECE" in ax.get_legend().get_texts()[0].get_text()
    curves = pd.DataFrame([{"model": "MLP", "seed": s, "epoch": e, "val_accuracy": 0.9 + 0.01 * e}
                           for s in range(2) for e in range(1, 4)])
    ax = plots.plot_learning_curves_bands(curves)
    assert ax.get_ylabel() == "validation accuracy"


def test_save_fig_numbers_figures_within_their_chapter_and_keeps_numbers_on_rerun(
        configured, tmp_path, capsys):
    configured(figures=tmp_path)
    plots._NUMBERS.clear()
    for name in ("07_first", "07_second", "08_other", "07_first"):
        plt.figure()
        helpers.save_fig(name, caption="what it shows")
    assert plots.figure_number("07_second") == "07-2"
    assert plots.figure_number("07_first") == "07-1" and plots.figure_number("08_other") == "08-1"
    assert (tmp_path / "07_second.png").exists()


def test_plot_intervals_dodges_one_series_per_hue_and_keeps_row_order():
    table = pd.DataFrame({"row": ["a", "b", "a", "b"], "budget": ["15", "15", "1", "1"],
                          "gain": [0.1, 0.2, -0.1, 0.3], "low": [0.0, 0.1, -0.2, 0.2],
                          "high": [0.2, 0.3, 0.0, 0.4]})
    ax = plots.plot_intervals(table, "row", "gain", "low", "high", hue="budget", percent=False,
                              reference=0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["15", "1"]
    series = [container.lines[0] for container in ax.containers]  # one errorbar per hue
    ys = [tuple(line.get_ydata()) for line in series]
    assert len(ys) == 2 and ys[0] != ys[1]  # dodged apart
    assert list(series[1].get_xdata()) == [-0.1, 0.3]


def test_reference_lines_are_labelled():
    _, ax = plt.subplots()
    plots.reference_lines(ax, {"student": 0.9936, "goal": 0.996})
    assert [line.get_label() for line in ax.get_lines()] == ["student", "goal"]
    assert ax.get_lines()[1].get_ydata()[0] == 0.996


def test_filters_and_feature_maps_render_one_panel_each():
    kernels = np.random.default_rng(0).normal(size=(6, 3, 3))
    fig = plots.plot_filters(kernels, rows=2)
    assert sum(bool(ax.images) for ax in fig.axes) == 6
    maps = [np.ones((1, 28, 28, 8)), np.ones((1, 7, 7, 8))]
    fig = plots.plot_feature_maps(np.zeros((28, 28)), maps, channels=4)
    assert len(fig.axes) == 2 * 5 and fig.axes[1].get_title(loc="left") == "28x28"


def test_chapter_01_figures_render():
    rng = np.random.default_rng(0)
    shares = pd.DataFrame({"digit": list(range(3)) * 2, "split": ["train"] * 3 + ["test"] * 3,
                           "share": [0.3, 0.3, 0.4, 0.35, 0.3, 0.35]})
    ax = plots.plot_bars(shares, "digit", "share", hue="split", reference=1 / 3,
                         reference_label="uniform")
    assert len(ax.patches) >= 6 and ax.get_legend() is not None
    fig = plots.plot_pixel_maps({"std": (rng.random((28, 28)), "magma", "std"),
                                 "blank": (rng.random((28, 28)) > 0.5, "Greys", None)})
    assert len(fig.axes) == 3  # two maps and one colour bar
    ax = plots.plot_histogram(np.array([5, 0, 100]), np.arange(4))
    assert ax.get_yscale() == "log"
    ink = pd.DataFrame({"digit": rng.integers(0, 3, 200), "split": rng.choice(["a", "b"], 200),
                        "mass": rng.random(200), "width": rng.random(200)})
    fig = plots.plot_split_violins(ink, "digit", ["mass", "width"], "split")
    assert len(fig.axes) == 2
    xy, labels = rng.normal(size=(60, 2)), np.repeat(np.arange(3), 20)
    fig = plots.plot_embeddings({"PCA": (xy, labels), "t-SNE": (xy, labels)},
                                label_classes=["t-SNE"])
    assert len(fig.axes[0].texts) == 0 and len(fig.axes[1].texts) == 3


def test_band_panels_scatter_panels_and_size_curves_render():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame([{"edit": e, "batch_size": b, "seed": s, "epoch": t,
                          "test_accuracy": 0.5 + 0.04 * t + rng.normal(0, 0.01)}
                         for e in ("a", "b", "c") for b in (128, 2048) for s in (0, 1)
                         for t in range(5)])
    fig = plots.plot_band_panels(runs, "edit", "epoch", "test_accuracy", hue="batch_size",
                                 recorded={128: 0.6, 2048: 0.7})
    live = [ax for ax in fig.axes if ax.get_visible()]
    assert len(live) == 3 and [ax.get_title() for ax in live] == ["a", "b", "c"]
    assert all(len(ax.lines) == 4 for ax in live)  # two curves and two recorded lines
    screen = pd.DataFrame({"batch_size": [128] * 4 + [2048] * 4, "test_accuracy": rng.random(8),
                           "test_loss": rng.random(8) + 0.1, "optimizer": list("abab") * 2,
                           "inputs": ["raw", "raw", "scaled", "scaled"] * 2,
                           "epochs": [1, 2] * 4})
    axes = plots.plot_scatter_panels(screen, "batch_size", "test_accuracy", "test_loss",
                                     {128: (0.12, 2.3), 2048: (0.92, 0.28)}, hue="optimizer",
                                     style="inputs", size="epochs", size_order=[1, 2],
                                     titles="batch {}", target_label="student")
    assert [ax.get_title() for ax in axes] == ["batch 128", "batch 2048"]
    assert axes[0].get_yscale() == "log" and "student" in axes[-1].get_legend_handles_labels()[1]
    sizes = pd.DataFrame({"n_params": [100, 100, 1000, 1000], "depth": [1, 1, 2, 2],
                          "val_accuracy": [0.9, 0.91, 0.95, 0.96],
                          "test_accuracy": [0.9, 0.9, 0.95, 0.95]})
    axes = plots.plot_size_curves(sizes, "n_params", ["val_accuracy", "test_accuracy"],
                                  hue="depth", chosen=1000, titles=["validation", "test"])
    assert [ax.get_title() for ax in axes] == ["validation", "test"]
    assert axes[0].get_xscale() == "log" and axes[0].get_legend() is None
