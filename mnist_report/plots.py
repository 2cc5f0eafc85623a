"""Plots: one style for every figure, figures saved as figures/NN_name.png at a fixed size."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import check_writable, settings
from .stats import confusion_matrix

FIG_DPI = 150
FIG_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


def set_style() -> None:
    """The report's single plotting theme."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": FIG_DPI, "axes.titlesize": "medium",
                         "figure.autolayout": False})


def save_fig(name: str, fig=None) -> Path:
    """Save a figure as `<figures>/<name>.png` (figures/, or the smoke folder); `name` is
    `NN_short_name` (NN = chapter)."""
    import matplotlib.pyplot as plt

    name = name.removesuffix(".png")
    if not FIG_NAME.match(name):
        raise ValueError(f"figure name {name!r} must look like '01_class_balance' (NN_short_name)")
    path = check_writable(settings().figures / f"{name}.png")
    (fig or plt.gcf()).savefig(path, dpi=FIG_DPI, bbox_inches="tight")
    return path


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
