"""Plots: one style for every figure, figures saved as figures/NN_name.png at a fixed size."""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import check_writable, settings
from .stats import confusion_matrix, fmt_pct

FIG_DPI = 150
FIG_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


def set_style() -> None:
    """The report's single plotting theme."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": FIG_DPI, "axes.titlesize": "medium",
                         "figure.autolayout": False})


_NUMBERS: dict[str, int] = {}  # figure name -> its number in its chapter, in order of first save


def figure_number(name: str) -> str:
    """"03-4": the chapter (the name's NN) and the figure's place among the chapter's figures
    saved so far in this process. A figure saved again keeps its number, so rerunning a cell
    does not renumber anything."""
    chapter = name[:2]
    if name not in _NUMBERS:
        _NUMBERS[name] = 1 + sum(other[:2] == chapter for other in _NUMBERS)
    return f"{chapter}-{_NUMBERS[name]}"


def save_fig(name: str, fig=None, caption: str | None = None) -> Path:
    """Save a figure as `<figures>/<name>.png` (figures/, or the smoke folder); `name` is
    `NN_short_name` (NN = chapter). With a `caption`, also show "Figure NN-k. caption" under it
    (k: its place in the chapter, `figure_number`), so prose can cite "Figure 03-4"."""
    import matplotlib.pyplot as plt

    name = name.removesuffix(".png")
    if not FIG_NAME.match(name):
        raise ValueError(f"figure name {name!r} must look like '01_class_balance' (NN_short_name)")
    path = check_writable(settings().figures / f"{name}.png")
    (fig or plt.gcf()).savefig(path, dpi=FIG_DPI, bbox_inches="tight")
    if caption:
        from IPython.display import Markdown, display

        display(Markdown(f"**Figure {figure_number(name)}.** {caption}"))
    return path


# ------------------------------------------------------------------------------------------------
# House formatters: one percent style ("99.20 %"), legends outside the data, batch-size axes
# ------------------------------------------------------------------------------------------------


def percent_axis(ax, axis: str = "y", digits: int = 0):
    """Tick labels of a proportion axis in the house style: 0.992 -> "99.2 %" (digits=1)."""
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _: f"{100 * value:.{digits}f} %")
    for which in axis:
        getattr(ax, f"{which}axis").set_major_formatter(formatter)
    return ax


def legend_outside(ax, where: str = "right", title: str | None = None, **kwargs):
    """The legend beside the axes ("right") or under them ("below"), never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if where == "below":  # clear of the axis label, lower still under rotated tick labels
        ticks = ax.get_xticklabels()
        drop = -0.32 if ticks and ticks[0].get_rotation() else -0.18
        return ax.legend(handles, labels, title=title, loc="upper center",
                         bbox_to_anchor=(0.5, drop), ncols=min(len(labels), 4), frameon=False,
                         **kwargs)
    if where != "right":
        raise ValueError(f"where must be 'right' or 'below', not {where!r}")
    return ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.02, 1),
                     frameon=False, **kwargs)


def batch_size_axis(ax, batches: Sequence[int], axis: str = "x"):
    """A log2 axis with one labelled tick per batch size (16, 128, 2048, ...), no minor ticks."""
    from matplotlib.ticker import FixedLocator, NullLocator

    target = getattr(ax, f"{axis}axis")
    getattr(ax, f"set_{axis}scale")("log", base=2)
    target.set_major_locator(FixedLocator(list(batches)))
    target.set_major_formatter(lambda value, _: f"{value:,.0f}")
    target.set_minor_locator(NullLocator())
    if axis == "x" and len(batches) > 6:  # "1,024 2,048 4,096" would run together
        ax.tick_params(axis="x", labelrotation=45)
    getattr(ax, f"set_{axis}label")("batch size")
    return ax


def _axes(ax, figsize=(6.5, 4.0)):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _seed_bands(data, x: str, y: str, hue: str | None, band: str):
    """Per (hue, x): mean of y over the rows (seeds) and a band: "ci" (95 % t interval of the
    mean) or "range" (min to max)."""
    from .stats import mean_ci

    keys = [k for k in (hue, x) if k]
    rows = []
    for key, group in data.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        values = group[y].to_numpy(float)
        if band == "ci":
            mean, low, high = mean_ci(values)
            low, high = (mean, mean) if np.isnan(low) else (low, high)
        elif band == "range":
            mean, low, high = values.mean(), values.min(), values.max()
        else:
            raise ValueError(f"band must be 'ci' or 'range', not {band!r}")
        rows.append({**dict(zip(keys, key, strict=True)), "mean": mean, "low": low, "high": high})
    import pandas as pd

    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# One function per recurring kind of figure, each on a tidy DataFrame (one row per run)
# ------------------------------------------------------------------------------------------------


def plot_intervals(data, label: str, mean: str, low: str, high: str, ax=None,
                   percent: bool = True, xlabel: str = "test accuracy", reference=None,
                   hue: str | None = None, legend_title: str | None = None, digits: int = 1):
    """Models with intervals: one row per model (`label`), its `mean` as a point and the interval
    from `low` to `high` as a bar, top to bottom in the order of first appearance; an optional
    `reference` value drawn as a dotted line (a goal, a published number, zero). With `hue`, one
    dodged series per value (e.g. two budgets), the legend beside the axes."""
    rows = list(dict.fromkeys(data[label]))
    groups = [(None, data)] if hue is None else list(data.groupby(hue, sort=False))
    ax = _axes(ax, (6.5, 0.45 * len(rows) * max(1, len(groups) / 1.5) + 1.2))
    y_of = {row: len(rows) - 1 - i for i, row in enumerate(rows)}
    for i, (value, part) in enumerate(groups):
        offset = 0.3 * (i - (len(groups) - 1) / 2) / max(1, len(groups) - 1)
        y = np.array([y_of[row] for row in part[label]]) - offset
        ax.errorbar(part[mean], y, xerr=[part[mean] - part[low], part[high] - part[mean]],
                    fmt="o", capsize=3, color=f"C{i}", label=value)
    ax.set_yticks([y_of[row] for row in rows], rows)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    if reference is not None:
        ax.axvline(reference, color="0.3", ls=":", lw=1)
    if hue is not None:
        legend_outside(ax, title=legend_title)
    return percent_axis(ax, "x", digits) if percent else ax


def reference_lines(ax, lines: Mapping[str, float], axis: str = "y", styles: Sequence[str] = (
        ":", "--", "-.")):
    """Labelled horizontal (axis "y") or vertical ("x") lines at given values: a student's
    number, a goal, a published result. Returns the axes."""
    draw = ax.axhline if axis == "y" else ax.axvline
    for (name, value), style in zip(lines.items(), styles * len(lines), strict=False):
        draw(value, color="0.35", ls=style, lw=1.2, label=name)
    return ax


def plot_bands(data, x: str, y: str, hue: str | None = None, band: str = "ci", ax=None,
               percent: bool = False, batch_axis: bool = False, ylabel: str | None = None,
               legend: str = "right", palette=None, clip: tuple[float, float] | None = None):
    """Curves over x with seed bands: the mean of `y` over rows (seeds) per x and `hue`, with a
    95 % t interval ("ci") or the min-max range ("range") as a band, cut to `clip` (a t interval
    over few seeds can reach past what `y` can be, e.g. (0, 1) for an accuracy). `batch_axis`: x
    is a batch size (log2, one tick each). For curves over batch size, budgets, epochs or
    levels."""
    import seaborn as sns

    ax = _axes(ax)
    bands = _seed_bands(data, x, y, hue, band)
    groups = [(None, bands)] if hue is None else list(bands.groupby(hue, sort=False))
    colours = palette or sns.color_palette("colorblind", len(groups))
    for colour, (name, group) in zip(colours, groups, strict=False):
        group = group.sort_values(x)
        ax.plot(group[x], group["mean"], "o-", ms=3, color=colour, label=name)
        low, high = (group["low"], group["high"]) if clip is None else (
            group["low"].clip(*clip), group["high"].clip(*clip))
        ax.fill_between(group[x], low, high, color=colour, alpha=0.2, lw=0)
    if batch_axis:
        batch_size_axis(ax, sorted(data[x].unique()))
    else:
        ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " ") if ylabel is None else ylabel)
    if percent:
        percent_axis(ax)
    if hue is not None:
        legend_outside(ax, legend, title=hue.replace("_", " "))
    return ax


def plot_errorbars(data, x: str, y: str, low: str, high: str, hue: str | None = None, ax=None,
                   batch_axis: bool = True, dodge: float = 1.0, percent: bool = False,
                   digits: int = 0, logy: bool = False, labels: Mapping[Any, str] | None = None,
                   legend: str = "right", legend_title: str | None = None, line: str = "-"):
    """Points with intervals over x (one row per point: `y` with `low`..`high`, e.g. a mean and
    its 95 % interval over seeds), one series per `hue` (named by `labels`, else by the value),
    dodged by a factor `dodge` on a log x axis so the bars do not overlap; `line` "none" for
    points alone. For accuracies, learning rates, steps or seconds over batch size."""
    ax = _axes(ax, (7, 4))
    groups = [(None, data)] if hue is None else list(data.groupby(hue, sort=True))
    for i, (value, part) in enumerate(groups):
        part = part.sort_values(x)
        offset = dodge ** (i - (len(groups) - 1) / 2)
        label = None if hue is None else (labels or {}).get(value, value)
        ax.errorbar(part[x].to_numpy(float) * offset, part[y],
                    yerr=[part[y] - part[low], part[high] - part[y]], marker="o", capsize=3,
                    ls=line, label=label)
    if batch_axis:
        batch_size_axis(ax, sorted(data[x].unique()))
    if logy:
        ax.set_yscale("log")
    if percent:
        percent_axis(ax, digits=digits)
    if hue is not None:
        legend_outside(ax, legend, title=legend_title, fontsize=8)
    return ax


def plot_shares(data, x: str, hue: str | None = None, share: str = "share",
                low: str = "share_low", high: str = "share_high", ax=None,
                batch_axis: bool = True, dodge: float = 1.06,
                legend_title: str | None = "95 % Clopper-Pearson"):
    """Proportions with their exact intervals over x (as collapse.failure_counts gives them),
    one series per `hue` ("learning rate 0.01"), on a 0-100 % axis."""
    labels = None if hue is None else {
        v: f"{hue.replace('_', ' ')} {v:g}" if isinstance(v, numbers.Real) else str(v)
        for v in data[hue].unique()}
    ax = plot_errorbars(data, x, share, low, high, hue=hue, ax=_axes(ax, (8, 4)),
                        batch_axis=batch_axis, dodge=dodge, percent=True, labels=labels,
                        legend_title=legend_title)
    ax.set_ylim(-0.03, 1.03)
    return ax


def plot_trajectories(data, recorded: Mapping[Any, tuple[float, float]], hue: str = "batch_size",
                      band: str = "range", axes=None, loss_scale: str = "log"):
    """Test accuracy and test loss over epochs, with seed bands per `hue` (one row per run and
    epoch, as student.runs_table gives), and each recorded (accuracy, loss) drawn as a dotted line
    in its hue's colour: where a recorded number falls on a program's trajectory."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(12, 4))[1]
    hues = list(dict.fromkeys(data[hue]))
    colours = dict(zip(hues, sns.color_palette("colorblind", len(hues)), strict=True))
    for ax, (metric, index) in zip(axes, (("test_accuracy", 0), ("test_loss", 1)), strict=True):
        plot_bands(data, "epoch", metric, hue=hue, band=band, ax=ax,
                   palette=[colours[h] for h in hues], percent=metric.endswith("accuracy"))
        for key, pair in recorded.items():
            ax.axhline(pair[index], color=colours.get(key, "0.3"), ls=":", lw=1.2)
        if ax is not axes[-1] and ax.get_legend():
            ax.get_legend().remove()
    axes[1].set_yscale(loss_scale)
    return axes


def plot_band_panels(data, panel: str, x: str, y: str, hue: str,
                     recorded: Mapping[Any, float] | None = None, band: str = "range",
                     ncols: int | None = None, percent: bool = True, size=(3.5, 3.0)):
    """Small multiples: one panel per value of `panel` (in order of appearance), each with seed
    bands of `y` over `x` per `hue` (plot_bands), a dotted line per `recorded` value in its hue's
    colour, shared axes and one legend beside the last column. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = list(dict.fromkeys(data[panel]))
    ncols = ncols or -(-len(names) // 2)
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             sharex=True, sharey=True, squeeze=False)
    hues = list(dict.fromkeys(data[hue]))
    colours = dict(zip(hues, sns.color_palette("colorblind", len(hues)), strict=True))
    for ax, name in zip(axes.flat, names, strict=False):
        plot_bands(data[data[panel] == name], x, y, hue=hue, band=band, ax=ax, percent=percent,
                   palette=[colours[h] for h in hues])
        for key, value in (recorded or {}).items():
            ax.axhline(value, color=colours.get(key, "0.3"), ls=":", lw=1.2)
        ax.set_title(name, fontsize=9)
        ax.get_legend().remove()
        ax.set(xlabel=x.replace("_", " ") if ax in axes[-1] else "",
               ylabel=y.replace("_", " ") if ax in axes[:, 0] else "")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), title=hue.replace("_", " "),
               loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    for ax in axes.flat[len(names):]:
        ax.remove()
    fig.tight_layout()
    return fig


def plot_scatter_panels(data, panel: str, x: str, y: str, targets: Mapping[Any, tuple],
                        hue: str, style: str, size: str, size_order: Sequence, titles: str = "",
                        logy: bool = True, target_label: str = "target",
                        xlabel: str | None = None, ylabel: str | None = None):
    """One scatter panel per value of `panel` (e.g. a batch size): every configuration's (x, y)
    coloured by `hue`, shaped by `style`, sized by `size`, with that panel's target (x, y) as an
    open star; x is a proportion (percent axis), y on a log scale by default. `titles` is a
    format string for each panel's title ("batch {}"); the star's legend entry is
    `target_label`. Returns the axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    names = list(dict.fromkeys(data[panel]))
    axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.6), sharey=True)[1]
    for ax, name in zip(axes, names, strict=True):
        sns.scatterplot(data[data[panel] == name], x=x, y=y, hue=hue, style=style, size=size,
                        sizes=(12, 90), size_order=list(size_order), alpha=0.75, palette="tab10",
                        ax=ax, legend="full" if name == names[-1] else False)
        ax.plot(*targets[name], marker="*", markerfacecolor="none", markeredgecolor="k",
                markeredgewidth=1.5, ms=18, ls="none", label=target_label)
        ax.set(yscale="log" if logy else "linear", title=titles.format(name),
               xlabel=xlabel or x.replace("_", " "),
               ylabel=ylabel or y.replace("_", " ") + (" (log)" if logy else ""))
        percent_axis(ax, "x")
    legend_outside(axes[-1], fontsize=8)
    return axes


def plot_size_curves(data, x: str, metrics: Sequence[str], hue: str, chosen: float | None = None,
                     titles: Sequence[str] = (), xlabel: str | None = None):
    """Accuracy against model size, one panel per metric: a line per `hue` through the mean,
    bars spanning the seeds, every run as a grey dot, x on a log scale, a grey band at the
    `chosen` size. Returns the axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), sharey=True)[1]
    for ax, metric, title in zip(axes, metrics, list(titles) + [""] * len(metrics), strict=False):
        sns.lineplot(data, x=x, y=metric, hue=hue, style=hue, markers=True,
                     errorbar=("pi", 100), err_style="bars", palette="colorblind", ax=ax)
        sns.scatterplot(data, x=x, y=metric, color="0.3", s=12, ax=ax, legend=False)
        ax.set(xscale="log", xlabel=xlabel or f"{x.replace('_', ' ')} (log scale)",
               ylabel=metric.replace("_", " "), title=title)
        if chosen is not None:
            ax.axvline(chosen, color="0.5", lw=2, alpha=0.4)
        percent_axis(ax)
    for ax in axes[:-1]:
        ax.get_legend().remove()
    legend_outside(axes[-1], title=hue.replace("_", " "))
    return axes


def plot_learning_curves_bands(data, metric: str = "val_accuracy", hue: str = "model",
                               x: str = "epoch", ax=None, band: str = "range"):
    """Learning curves with seed bands from a tidy table (one row per run and epoch)."""
    ax = plot_bands(data, x, metric, hue=hue, band=band, ax=ax,
                    percent=metric.endswith("accuracy"))
    ax.set_ylabel(metric.replace("val_", "validation ").replace("_", " "))
    return ax


def plot_grid_heatmap(data, row: str, col: str, value: str, marks: str | None = None, ax=None,
                      percent: bool = True, cbar_label: str | None = None, fmt: str = ".1f",
                      vmin: float | None = None, vmax: float | None = None,
                      descending: bool = False, row_format: str | None = None):
    """A grid of settings (e.g. learning rate x batch size) coloured by `value` (its mean over
    rows in each cell); a cell where the boolean column `marks` is true for any row (e.g. a
    diverged run) shows "✗" instead of its number, and empty cells stay white. `descending`
    puts the largest row value on top; `row_format` formats the row labels (".3g")."""
    import seaborn as sns
    from matplotlib.ticker import FuncFormatter

    ax = _axes(ax, (7.0, 4.5))
    table = data.pivot_table(index=row, columns=col, values=value, aggfunc="mean")
    table = table.sort_index(ascending=not descending)
    scale = 100 if percent else 1
    labels = table.map(lambda v: "" if np.isnan(v) else format(scale * v, fmt))
    if marks is not None:
        marked = data.pivot_table(index=row, columns=col, values=marks, aggfunc="any")
        marked = marked.reindex(index=table.index, columns=table.columns)
        labels = labels.where(~marked.fillna(False).astype(bool), "✗")
    colourbar = {"label": cbar_label or value.replace("_", " ")}
    if percent:
        colourbar["format"] = FuncFormatter(lambda v, _: f"{100 * v:g} %")
    sns.heatmap(table, annot=labels, fmt="", cmap="viridis", ax=ax, vmin=vmin, vmax=vmax,
                cbar_kws=colourbar, annot_kws={"fontsize": 7})
    if row_format:
        ax.set_yticks(np.arange(len(table.index)) + 0.5,
                      [format(v, row_format) for v in table.index], rotation=0)
    ax.set_xlabel(col.replace("_", " "))
    ax.set_ylabel(row.replace("_", " "))
    return ax


def plot_robustness(data, level: str = "level", accuracy: str = "test_accuracy",
                    model: str = "model", panel: str = "perturbation", units: dict | None = None,
                    band: str = "ci"):
    """Robustness curves: accuracy against perturbation level, one panel per perturbation, one
    colour per model across all panels (the same models in each), seed bands; returns the
    figure. `units` labels each panel's x axis (e.g. {"shift": "pixels"}); bands stop at 0 and
    100 %."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    panels = list(dict.fromkeys(data[panel]))
    models = list(dict.fromkeys(data[model]))
    colours = dict(zip(models, sns.color_palette("colorblind", len(models)), strict=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes[0], panels, strict=True):
        part = data[data[panel] == name]
        plot_bands(part, level, accuracy, hue=model, band=band, ax=ax, percent=True, clip=(0, 1),
                   palette=[colours[m] for m in dict.fromkeys(part[model])])
        ax.get_legend() and ax.get_legend().remove()
        ax.set_title(name)
        ax.set_xlabel(f"{name} ({(units or {}).get(name, 'level')})")
    axes[0, 0].set_ylabel("test accuracy")
    legend_outside(axes[0, -1], title="model")
    return fig


def plot_reliability(proba: np.ndarray, y_true: np.ndarray, label: str | None = None, ax=None,
                     bins: int = 15, counts: bool = False, ece: float | None = None):
    """Reliability diagram: accuracy against mean confidence per confidence bin (stats.
    calibration), the diagonal as perfect calibration, and the ECE in the legend (that of
    `proba`, or `ece` when given, e.g. a mean over seeds whose predictions `proba` pools).
    `counts` writes each bin's number of predictions beside its point."""
    from .stats import calibration

    ax = _axes(ax, (4.5, 4.5))
    table, pooled = calibration(proba, y_true, bins)
    ax.plot([0, 1], [0, 1], ":", color="0.4", lw=1)
    shown = pooled if ece is None else ece
    ax.plot(table.confidence, table.accuracy, "o-", ms=3,
            label=f"{label + ': ' if label else ''}ECE {fmt_pct(shown)}")
    if counts:
        for _, b in table.iterrows():
            ax.annotate(f"{b['count']:,.0f}", (b.confidence, b.accuracy), fontsize=6,
                        xytext=(3, -9), textcoords="offset points")
    ax.set(xlabel="confidence (top-class probability)", ylabel="accuracy")
    percent_axis(ax, "xy")
    legend_outside(ax, "below")
    return ax


def plot_pareto(data, cost: str, error: str, front: Sequence, ax=None, xlabel: str | None = None,
                cost_format: str = "{:g}"):
    """Error against cost on log scales, one marker per model (the DataFrame's index): filled
    when on the Pareto `front` (the models no other is both cheaper and more accurate than),
    joined by a line, hollow when beaten; the legend beside the axes."""
    import seaborn as sns
    from matplotlib.ticker import FixedLocator, NullLocator

    ax = _axes(ax, (6.5, 4.6))
    on = data.index.isin(list(front))
    line = data[on].sort_values(cost)
    ax.plot(line[cost], line[error], "-", color="0.6", zorder=1)
    colours = sns.color_palette(n_colors=len(data))
    for (label, row), filled, colour in zip(data.iterrows(), on, colours, strict=True):
        ax.scatter(row[cost], row[error], s=70, zorder=2, color=colour if filled else "white",
                   edgecolor=colour, linewidth=2, label=label)
    ax.set(xscale="log", yscale="log", xlabel=f"{xlabel or cost}, log scale",
           ylabel="test error (log scale)")
    ticks = [t for t in (0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
             if data[error].min() / 1.5 <= t <= data[error].max() * 1.5]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:g} %")
    ax.xaxis.set_major_formatter(lambda v, _: cost_format.format(v))
    return ax


def plot_bars(data, x: str, y: str, hue: str | None = None, reference: float | None = None,
              reference_label: str | None = None, percent: bool = True, ax=None, ylabel=None):
    """Bars of `y` per category `x` (one bar per `hue` side by side), an optional dashed reference
    line (a uniform share, a chance level), the legend beside the axes."""
    import seaborn as sns

    ax = _axes(ax, (7, 3.6))
    sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax)
    if reference is not None:
        ax.axhline(reference, color="grey", lw=1, ls="--", label=reference_label)
    if percent:
        percent_axis(ax)
    ax.set(ylabel=ylabel or y.replace("_", " "))
    legend_outside(ax, title=hue)
    return ax


def plot_pixel_maps(maps: Mapping[str, tuple[np.ndarray, str, str | None]], size: float = 4.5):
    """Images of per-pixel quantities side by side: {title: (28x28 array, colour map, colour-bar
    label or None)}; no ticks, no grid. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps), size * 0.85),
                             squeeze=False)
    for ax, (title, (image, cmap, label)) in zip(axes[0], maps.items(), strict=True):
        shown = ax.imshow(image, cmap=cmap)
        if label:
            fig.colorbar(shown, ax=ax, label=label)
        ax.set(xticks=[], yticks=[], title=title)
        ax.grid(False)
    return fig


def plot_histogram(counts: np.ndarray, edges: np.ndarray, log: bool = True, ax=None,
                   xlabel: str = "value", ylabel: str = "count"):
    """A histogram from its counts and bin edges (len(edges) == len(counts) + 1), filled
    steps, on a log count axis by default."""
    ax = _axes(ax, (7, 3))
    ax.stairs(counts, edges, fill=True)
    ax.set(xlabel=xlabel, ylabel=f"{ylabel} (log scale)" if log else ylabel,
           xlim=(edges[0] - 2, edges[-1]))
    if log:
        ax.set_yscale("log")
    return ax


def plot_split_violins(data, x: str, features: Sequence[str], hue: str):
    """One row of split violins per feature: its distribution per `x` category, the two `hue`
    values as the left and right halves (quartiles inside). Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(len(features), 1, figsize=(10, 3.25 * len(features)), sharex=True,
                             squeeze=False)
    for ax, feature in zip(axes[:, 0], features, strict=True):
        sns.violinplot(data=data, x=x, y=feature, hue=hue, split=True, inner="quart", cut=0,
                       density_norm="width", ax=ax, legend=ax is axes[0, 0])
    legend_outside(axes[0, 0], title=hue)
    return fig


def plot_embeddings(panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    label_classes: Sequence[str] = ()):
    """2-D embeddings side by side ({title: (points (n, 2), class labels)}), coloured by class,
    one legend for all; the panels named in `label_classes` also write each class at its
    median point. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 5.5), squeeze=False)
    for ax, (title, (xy, labels)) in zip(axes[0], panels.items(), strict=True):
        points = ax.scatter(*np.asarray(xy).T, c=labels, cmap="tab10", s=3, alpha=0.6,
                            rasterized=True)
        ax.set(xticks=[], yticks=[], title=title)
        if title in label_classes:
            for c in np.unique(labels):
                ax.text(*np.median(xy[labels == c], axis=0), str(c), fontsize=14,
                        weight="bold", ha="center", va="center")
    fig.legend(*points.legend_elements(), title="digit", loc="center right", markerscale=1.5)
    fig.subplots_adjust(right=0.9)
    return fig


def image_grid(images: np.ndarray, ncols: int = 10, titles: Sequence | None = None,
               cmap: str = "gray_r", size: float = 0.9, vmin=None, vmax=None,
               row_labels: Sequence | None = None, suptitle: str | None = None):
    """Show 28x28 images in a grid (ink dark on white by default); returns the figure."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.05),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i].reshape(28, 28), cmap=cmap, vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8, pad=2)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=10)
    if suptitle:  # anchored above the top row, so it never covers the images' titles
        fig.suptitle(suptitle, y=1.0, va="bottom")
    fig.subplots_adjust(wspace=0.05, hspace=0.3 if titles is not None else 0.05)
    return fig


def plot_filters(kernels: np.ndarray, rows: int = 2, size: float = 0.35):
    """A layer's kernels (filters, height, width) as small images, red positive and blue
    negative on a symmetric scale per filter; returns the figure."""
    import matplotlib.pyplot as plt

    kernels = np.asarray(kernels)
    cols = -(-len(kernels) // rows)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size * 2, rows * size * 2 + 0.2),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(kernels):
            limit = np.abs(kernels[i]).max() or 1.0
            ax.imshow(kernels[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
    return fig


def plot_feature_maps(image: np.ndarray, maps: Sequence[np.ndarray], channels: int = 8):
    """One input image and the first `channels` channels of each layer's feature maps (one row
    per layer, deeper below; each row titled with its spatial size); returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(maps), channels + 1, figsize=((channels + 1) * 0.9,
                                                               len(maps) * 1.0), squeeze=False)
    for row, fmap in zip(axes, maps, strict=True):
        row[0].imshow(np.asarray(image).reshape(28, 28), cmap="gray_r")
        for c, ax in enumerate(row[1:]):
            ax.imshow(fmap[0, ..., c], cmap="viridis")
        for ax in row:
            ax.set_axis_off()
        row[1].set_title(f"{fmap.shape[1]}x{fmap.shape[2]}", fontsize=8, loc="left")
    return fig


def plot_learning_curves(histories: dict[str, dict], metrics: Sequence[str] = ("loss", "accuracy"),
                         axes=None, palette: Sequence | None = None):
    """Train (dashed) and validation (solid) curves per epoch, one colour per labelled history.

    `histories` maps a label to a Keras history dict (as `train()` returns it); a label that
    holds a list of histories (seeds) is drawn as its mean with a band from min to max.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if axes is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.8), squeeze=False)
        axes = axes[0]
    colours = palette or sns.color_palette("colorblind", len(histories))
    for colour, (label, hist) in zip(colours, histories.items(), strict=True):
        runs = hist if isinstance(hist, list) else [hist]
        for ax, metric in zip(axes, metrics, strict=True):
            for prefix, style in (("", "--"), ("val_", "-")):
                curves = np.array([h[prefix + metric] for h in runs])
                epochs = np.arange(1, curves.shape[1] + 1)
                ax.plot(epochs, curves.mean(0), style, color=colour,
                        label=f"{label} ({'validation' if prefix else 'train'})")
                if len(runs) > 1:
                    ax.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.2)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
    return axes


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, ax=None, title: str | None = None):
    """Row-normalised confusion matrix in percent (diagonal masked so the errors stand out)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cm = confusion_matrix(y_true, y_pred)
    pct = 100 * cm / cm.sum(axis=1, keepdims=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(pct, mask=np.eye(10, dtype=bool), annot=True, fmt=".1f", cmap="rocket_r",
                cbar_kws={"label": "% of the true class"}, ax=ax, annot_kws={"fontsize": 7})
    for i in range(10):
        ax.text(i + 0.5, i + 0.5, f"{pct[i, i]:.1f}", ha="center", va="center", fontsize=7,
                color="0.4")
    ax.grid(False)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    if title:
        ax.set_title(title)
    return ax


def misclassified_gallery(images: np.ndarray, y_true: np.ndarray, proba: np.ndarray,
                          n: int | None = 30, ncols: int = 10, suptitle: str | None = None,
                          marked: np.ndarray | None = None):
    """The n misclassified test images (n=None: all of them) the model was most confident about,
    titled 'true→pred confidence', with a '*' after the images where the boolean array `marked`
    is True; returns the figure (or None when nothing is misclassified)."""
    pred = proba.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    if not len(wrong):
        return None
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][:n]
    titles = [f"{y_true[i]}→{pred[i]} {100 * proba[i, pred[i]]:.0f}%"
              + ("*" if marked is not None and marked[i] else "") for i in wrong]
    return image_grid(images[wrong], ncols=ncols, titles=titles, suptitle=suptitle)
